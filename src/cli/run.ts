// `etcd-dst run --seed N [--profile P] [--case NAME] [--bug NAME]... [--json]` and
// `etcd-dst replay FILE | --seed N [...] [--no-bugs] [--check-determinism] [--json]`.
// A failing run's scenario is saved under .etcd-dst/found/ before anything is printed.
import { describeRecord, firstDivergence } from "../../sim/index.js";
import { humanSummary } from "../report.js";
import { reportHtml } from "../report-page.js";
import { type RunResult, runScenario } from "../runner.js";
import type { Scenario } from "../scenario.js";
import { Exit, type ExitCode, type Io, parseCount, parseFlags, parseSeed, UsageError } from "./common.js";
import {
  checkBugs,
  checkCase,
  checkProfile,
  chooseScenario,
  exitOf,
  failedCheckers,
  runJson,
  saveScenario,
  seedScenario,
  writeReport,
} from "./runs.js";

const FLAGS = {
  out: { type: "string" },
  seed: { type: "string" },
  profile: { type: "string" },
  case: { type: "string" },
  bug: { type: "string", multiple: true },
  json: { type: "boolean" },
  budget: { type: "string" },
  report: { type: "string" },
} as const;

/** Writes the page when --report asked for one, and says where (stderr under --json). */
function maybeReport(
  r: RunResult,
  file: string | null,
  path: string | undefined,
  io: Io,
  json: boolean,
): void {
  if (path === undefined) return;
  const written = writeReport(path, reportHtml(r, file));
  if (json) io.err(`report: ${written}`);
  else io.out(`  report: ${written}`);
}

function execute(
  sc: Scenario,
  io: Io,
  json: boolean,
  budget: number | undefined,
  outDir: string | undefined,
  reportPath: string | undefined,
): ExitCode {
  const r = runScenario(sc, budget === undefined ? {} : { budgetSteps: budget });
  const checkers = failedCheckers(r.validation.violations);
  // never lose a failure: the scenario is on disk before anything is printed
  const file =
    r.validation.verdict === "ok"
      ? null
      : saveScenario(outDir ?? ".etcd-dst/found", sc, checkers, r.validation.verdict);
  if (json) {
    io.out(JSON.stringify(runJson(r, file ? { file } : {})));
    if (r.validation.verdict !== "ok") io.err(humanSummary(r, file));
  } else io.out(humanSummary(r, file));
  maybeReport(r, file, reportPath, io, json);
  return exitOf(r.validation.verdict);
}

export function run(argv: readonly string[], io: Io): ExitCode {
  const { values } = parseFlags(argv, FLAGS);
  if (values.seed === undefined) throw new UsageError("run needs --seed N");
  const seed = parseSeed(values.seed);
  const profile = checkProfile(values.profile);
  const sc = seedScenario(seed, profile, checkCase(values.case, profile), checkBugs(values.bug));
  const budget = values.budget === undefined ? undefined : parseCount(values.budget, "--budget");
  return execute(sc, io, values.json ?? false, budget, values.out, values.report);
}

export function replay(argv: readonly string[], io: Io): ExitCode {
  const { values, positionals } = parseFlags(
    argv,
    { ...FLAGS, "no-bugs": { type: "boolean" }, "check-determinism": { type: "boolean" } },
    1,
  );
  const file = positionals[0];
  if (values["no-bugs"] && values.bug) throw new UsageError("--bug and --no-bugs exclude each other");
  let sc = chooseScenario("replay", file, values);
  if (values["no-bugs"]) sc = { ...sc, bugs: [] };
  const budget = values.budget === undefined ? undefined : parseCount(values.budget, "--budget");
  const json = values.json ?? false;
  if (!values["check-determinism"]) return execute(sc, io, json, budget, values.out, values.report);
  // twice, traces captured: the hashes must match
  const opts = { captureTrace: true, ...(budget === undefined ? {} : { budgetSteps: budget }) };
  const a = runScenario(sc, opts);
  const b = runScenario(sc, opts);
  if (a.traceHash === b.traceHash) {
    if (json) io.out(JSON.stringify(runJson(a, { deterministic: true })));
    else io.out(`${humanSummary(a, file ?? null)}\n  deterministic: both runs gave trace ${a.traceHash}`);
    maybeReport(a, file ?? null, values.report, io, json);
    return exitOf(a.validation.verdict);
  }
  const d = firstDivergence(a.sim.trace.captured ?? [], b.sim.trace.captured ?? []);
  const message = `the two runs diverged at event ${d?.index ?? "?"}: ${describeRecord(d?.a)} versus ${describeRecord(d?.b)}`;
  if (json) {
    const doc = runJson(a, { deterministic: false });
    io.out(
      JSON.stringify({
        ...doc,
        verdict: "violation",
        violations: [{ checker: "determinism", message }, ...(doc.violations as unknown[])],
      }),
    );
  } else io.out(`seed ${sc.seed}: violation\n  determinism: ${message}`);
  return Exit.Violation;
}
