// `etcd-dst check FILE [--format jepsen-etcd|porcupine-kv|etcd-dst] [--budget STEPS] [--json]`
// Exit 0 linearizable, 1 not linearizable, 3 unknown (budget spent), 2 bad usage or input.
import { readFileSync } from "node:fs";
import {
  checkParsedHistory,
  HISTORY_FORMATS,
  type HistoryFormat,
  parseHistoryFile,
} from "../check/history-file.js";
import { HistoryFormatError } from "../history/errors.js";
import { Exit, type ExitCode, type Io, parseCount, parseFlags, UsageError } from "./common.js";

export function check(argv: readonly string[], io: Io): ExitCode {
  const { values, positionals } = parseFlags(
    argv,
    { format: { type: "string" }, budget: { type: "string" }, json: { type: "boolean" } },
    1,
  );
  const file = positionals[0];
  if (file === undefined) throw new UsageError("check needs a history FILE");
  const format = values.format as HistoryFormat | undefined;
  if (format !== undefined && !HISTORY_FORMATS.includes(format)) {
    throw new UsageError(`--format must be one of ${HISTORY_FORMATS.join(", ")}, got '${format}'`);
  }
  const budget = values.budget === undefined ? undefined : parseCount(values.budget, "--budget");
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let parsed: ReturnType<typeof parseHistoryFile>;
  try {
    parsed = parseHistoryFile(bytes, file, format);
  } catch (e) {
    if (e instanceof HistoryFormatError)
      throw new UsageError(
        `${file}${e.line > 0 ? `:${e.line}` : ""}: ${e.message.replace(/^line \d+: /, "")}`,
      );
    throw e;
  }
  const started = performance.now();
  const r = checkParsedHistory(parsed, budget);
  const wallMs = Math.round(performance.now() - started);
  const verdict = r.verdict;
  if (values.json) {
    io.out(
      JSON.stringify({
        verdict,
        ops: r.ops,
        wallMs,
        format: r.format,
        steps: r.steps,
        ...(r.path ? { path: r.path, settled: r.settled, dropped: r.dropped } : {}),
      }),
    );
    if (r.explanation.length > 0) io.err(r.explanation.join("\n"));
  } else {
    const what =
      verdict === "linearizable"
        ? "linearizable"
        : verdict === "not-linearizable"
          ? "NOT linearizable"
          : "unknown (the step budget ran out)";
    io.out(`${file}: ${what}`);
    io.out(
      `  ${r.ops} operations (${r.format}), ${r.steps} model steps, ${wallMs} ms${r.path ? `, ${r.path === "fast" ? "revision fast path" : "full search"}` : ""}`,
    );
    if (r.settled || r.dropped)
      io.out(`  unknown outcomes settled from revisions: ${r.settled} applied, ${r.dropped} left out`);
    for (const line of r.explanation) io.out(`  ${line}`);
  }
  return verdict === "linearizable"
    ? Exit.Ok
    : verdict === "not-linearizable"
      ? Exit.Violation
      : Exit.Unknown;
}
