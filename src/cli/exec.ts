// `etcd-dst exec FILE [--members N] [--real] [--json]`: a sequential script of etcd API
// requests against the model (or, with --real, a real etcd on 127.0.0.1), one JSON answer
// per line. Exit 0 once every request was answered, 2 for a malformed script.
import { readFileSync } from "node:fs";
import { execOnModel, parseScript, ScriptError, type ScriptStep } from "../exec.js";
import { execOnReal, RealEtcdUnavailable } from "../real/etcd.js";
import { Exit, type ExitCode, type Io, parseCount, parseFlags, UsageError } from "./common.js";

export async function exec(argv: readonly string[], io: Io): Promise<ExitCode> {
  const { values, positionals } = parseFlags(
    argv,
    { members: { type: "string" }, real: { type: "boolean" }, json: { type: "boolean" } },
    1,
  );
  const file = positionals[0];
  if (file === undefined) throw new UsageError("exec needs a script FILE");
  const members = values.members === undefined ? 1 : parseCount(values.members, "--members");
  if (members > 7) throw new UsageError(`--members must be at most 7, got ${members}`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let steps: ScriptStep[];
  try {
    steps = parseScript(text);
  } catch (e) {
    if (e instanceof ScriptError) throw new UsageError(`${file}:${e.line}: ${e.message}`);
    throw e;
  }
  let answers: Record<string, unknown>[];
  try {
    answers = values.real ? await execOnReal(steps, members) : execOnModel(steps, members);
  } catch (e) {
    if (e instanceof RealEtcdUnavailable) throw new UsageError(`exec --real: ${e.message}`);
    throw e;
  }
  for (const a of answers) io.out(JSON.stringify(a));
  return Exit.Ok;
}
