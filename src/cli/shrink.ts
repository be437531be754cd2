// `etcd-dst shrink FILE | --seed N [--profile P] [--bug NAME]... [--out FILE] [--json]`
// Exit 0: a failing scenario was shrunk and written; 1: the input does not fail; 2: bad input.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { describeFault } from "../faults.js";
import { defaultJobs } from "../fuzz.js";
import { explainViolation } from "../report.js";
import { type RunResult, runScenario } from "../runner.js";
import { type Scenario, scenarioToJson } from "../scenario.js";
import { shrinkOnPool } from "../shrink.js";
import { Exit, type ExitCode, type Io, parseCount, parseFlags } from "./common.js";
import { chooseScenario, failedCheckers } from "./runs.js";

export interface Size {
  readonly faults: number;
  readonly ops: number;
  readonly clients: number;
  readonly members: number;
  readonly virtualMs: number;
  readonly events: number;
}

export function size(sc: Scenario, r: RunResult): Size {
  return {
    faults: sc.faults.length,
    ops: r.stats.ops,
    clients: sc.clients.length,
    members: sc.cluster.members,
    virtualMs: r.stats.virtualMs,
    events: r.stats.events,
  };
}

export function show(s: Size): string {
  return `${s.faults} faults, ${s.ops} operations, ${s.clients} clients, ${s.members} members, ${(s.virtualMs / 1000).toFixed(1)}s virtual, ${s.events} events`;
}

/** The minimal story: the faults in time order, then the violation explained. */
export function story(r: RunResult, checker: string): string[] {
  const lines = ["faults, in time order:"];
  for (const f of [...r.scenario.faults].sort((a, b) => a.atUs - b.atUs)) lines.push(`  ${describeFault(f)}`);
  if (r.scenario.faults.length === 0) lines.push("  (none: the workload alone)");
  const v = r.validation.violations.find((x) => x.checker === checker);
  if (v) lines.push(...explainViolation(r, v));
  return lines;
}

export async function shrinkCommand(argv: readonly string[], io: Io): Promise<ExitCode> {
  const { values, positionals } = parseFlags(
    argv,
    {
      seed: { type: "string" },
      profile: { type: "string" },
      bug: { type: "string", multiple: true },
      out: { type: "string" },
      jobs: { type: "string" },
      "max-runs": { type: "string" },
      json: { type: "boolean" },
    },
    1,
  );
  const file = positionals[0];
  const input = chooseScenario("shrink", file, values);
  const out =
    values.out ??
    (file !== undefined
      ? file.replace(/\.json$/, "") + ".min.json"
      : `.etcd-dst/shrunk/seed-${input.seed}.json`);
  const jobs = values.jobs === undefined ? defaultJobs() : parseCount(values.jobs, "--jobs");
  const maxRuns = values["max-runs"] === undefined ? 400 : parseCount(values["max-runs"], "--max-runs");
  const started = performance.now();

  const first = runScenario(input);
  const checker = failedCheckers(first.validation.violations)[0];
  if (!checker) {
    io.err(`the input does not fail (verdict ${first.validation.verdict}): nothing to shrink`);
    return Exit.Violation;
  }
  const before = size(input, first);
  let interrupted = false;
  const onInt = () => {
    interrupted = true;
  };
  process.once("SIGINT", onInt);
  const save = (sc: Scenario) => {
    mkdirSync(dirname(out), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    writeFileSync(tmp, scenarioToJson({ ...sc, expect: { verdict: "violation", checkers: [checker] } }));
    renameSync(tmp, out);
  };
  save(input);
  try {
    const result = await shrinkOnPool(input, checker, {
      jobs,
      maxRuns,
      interrupted: () => interrupted,
      onProgress: (best, runs, pass) => {
        save(best); // the smallest so far is always on disk
        if (io.progress)
          process.stderr.write(
            `\r${runs} runs: ${best.faults.length} faults, ${best.clients.length} clients, ${best.cluster.members} members (${pass})        `,
          );
      },
    });
    if (io.progress) process.stderr.write("\n");
    const final = runScenario(result.scenario);
    save(result.scenario);
    const after = size(result.scenario, final);
    const wallMs = Math.round(performance.now() - started);
    if (values.json) io.out(JSON.stringify({ checker, before, after, runs: result.runs, wallMs, file: out }));
    const text = [
      `shrunk ${checker} in ${result.runs} runs, ${(wallMs / 1000).toFixed(1)}s${result.complete ? "" : interrupted ? " (interrupted: the smallest so far)" : " (run cap reached: the smallest so far)"}`,
      `  before: ${show(before)}`,
      `  after:  ${show(after)}`,
      ...story(final, checker).map((l) => `  ${l}`),
      `  saved: ${out}`,
      `  replay: etcd-dst replay ${out}`,
    ].join("\n");
    if (values.json) io.err(text);
    else io.out(text);
    return Exit.Ok;
  } finally {
    process.off("SIGINT", onInt);
  }
}
