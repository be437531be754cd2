// `etcd-dst fuzz [--seeds COUNT] [--from FIRST] [--jobs J] [--profile P] [--bug NAME]...
//                [--stop-on-first] [--out DIR] [--shard I/N] [--seed-timeout DUR] [--json]`
import { defaultJobs, type Outcome, runCampaign, type SeedJob } from "../fuzz.js";
import {
  Exit,
  type ExitCode,
  type Io,
  parseCount,
  parseDurationUs,
  parseFlags,
  parseSeed,
  UsageError,
  worstExit,
} from "./common.js";
import { checkBugs, checkCase, checkProfile, saveScenario, writeReport } from "./runs.js";

function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = m ? Number(m[1]) : -1;
  const count = m ? Number(m[2]) : 0;
  if (!m || count < 1 || index >= count)
    throw new UsageError(`--shard must be I/N with 0 <= I < N, got '${text}'`);
  return { index, count };
}

export async function fuzz(argv: readonly string[], io: Io): Promise<ExitCode> {
  const { values } = parseFlags(argv, {
    seeds: { type: "string" },
    from: { type: "string" },
    jobs: { type: "string" },
    profile: { type: "string" },
    case: { type: "string" },
    bug: { type: "string", multiple: true },
    "stop-on-first": { type: "boolean" },
    out: { type: "string" },
    shard: { type: "string" },
    "seed-timeout": { type: "string" },
    budget: { type: "string" },
    json: { type: "boolean" },
  });
  const count = values.seeds === undefined ? 200 : parseCount(values.seeds, "--seeds");
  const from = values.from === undefined ? 1 : parseSeed(values.from, "--from");
  if (from + count - 1 > Number.MAX_SAFE_INTEGER) throw new UsageError("--from + --seeds goes past 2^53-1");
  const jobs = values.jobs === undefined ? defaultJobs() : parseCount(values.jobs, "--jobs");
  const profile = checkProfile(values.profile);
  const caseName = checkCase(values.case, profile);
  const bugs = checkBugs(values.bug);
  const out = values.out ?? ".etcd-dst/found";
  const shard = values.shard === undefined ? { index: 0, count: 1 } : parseShard(values.shard);
  const timeoutMs = Math.round(
    (values["seed-timeout"] === undefined
      ? 60_000_000
      : parseDurationUs(values["seed-timeout"], "--seed-timeout")) / 1000,
  );
  const budget = values.budget === undefined ? undefined : parseCount(values.budget, "--budget");
  const json = values.json ?? false;

  const seedJobs: SeedJob[] = [];
  for (let s = from; s < from + count; s++) {
    if ((s - from) % shard.count !== shard.index) continue;
    seedJobs.push({
      kind: "seed",
      seed: s,
      profile,
      bugs,
      timeoutMs,
      report: true,
      ...(caseName ? { caseName } : {}),
      ...(budget === undefined ? {} : { budgetSteps: budget }),
    });
  }

  const started = performance.now();
  const files = new Map<number, string>();
  const reports = new Map<number, string>();
  let done = 0;
  let failures = 0;
  const draw = () => {
    if (!io.progress) return;
    const width = 30;
    const filled = Math.round((done / Math.max(1, seedJobs.length)) * width);
    const rate = done / Math.max(0.001, (performance.now() - started) / 1000);
    process.stderr.write(
      `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${seedJobs.length} seeds, ${failures} failing, ${rate.toFixed(1)} seeds/s `,
    );
  };
  draw();
  const outcomes = await runCampaign(seedJobs, {
    jobs,
    stopOnFirst: values["stop-on-first"] ?? false,
    onOutcome: (o: Outcome) => {
      done++;
      if (o.verdict === "violation" || o.verdict === "crashed") {
        failures++;
        // on disk before it is reported
        if (o.scenario)
          files.set(
            o.seed,
            saveScenario(out, o.scenario, o.checkers, o.verdict === "crashed" ? "violation" : o.verdict),
          );
        const file = files.get(o.seed);
        if (file && o.reportHtml) {
          reports.set(o.seed, writeReport(file.replace(/\.json$/, ".html"), o.reportHtml));
          if (json) io.err(`seed ${o.seed}: report ${reports.get(o.seed)}`);
        }
        if (!json) {
          if (io.progress) process.stderr.write("\n");
          const first = o.messages[0] ?? o.error?.split("\n")[0] ?? "";
          io.out(
            `seed ${o.seed}: ${o.verdict === "crashed" ? "crashed" : o.checkers.join(", ")}${first ? `\n  ${first}` : ""}\n  saved: ${files.get(o.seed) ?? "(no scenario)"}${reports.has(o.seed) ? `\n  report: ${reports.get(o.seed)}` : ""}`,
          );
        }
      }
      draw();
    },
  });
  if (io.progress) process.stderr.write("\n");
  const wallMs = Math.round(performance.now() - started);
  const failing = outcomes.filter((o) => o.verdict === "violation");
  const crashed = outcomes.filter((o) => o.verdict === "crashed");
  const unknown = outcomes.filter((o) => o.verdict === "unknown").map((o) => o.seed);
  const timeouts = outcomes.filter((o) => o.verdict === "timeout").map((o) => o.seed);
  const sum = (f: (o: Outcome) => number) => outcomes.reduce((a, o) => a + f(o), 0);
  if (json) {
    io.out(
      JSON.stringify({
        seeds: outcomes.length,
        from,
        profile,
        bugs,
        failures: failing.map((o) => ({
          seed: o.seed,
          checkers: o.checkers,
          file: files.get(o.seed) ?? null,
        })),
        unknown,
        timeouts,
        crashed: crashed.map((o) => ({ seed: o.seed, error: (o.error ?? "").split("\n")[0] })),
        wallMs,
        virtualMs: sum((o) => o.virtualMs),
        events: sum((o) => o.events),
        ops: sum((o) => o.ops),
      }),
    );
  } else {
    const rate = outcomes.length / Math.max(0.001, wallMs / 1000);
    io.out(
      `${outcomes.length} seeds (${profile}${bugs.length ? `, bugs: ${bugs.join(", ")}` : ""}) in ${(wallMs / 1000).toFixed(1)}s, ${rate.toFixed(1)} seeds/s, ${sum((o) => o.ops)} operations: ` +
        `${failing.length} failing, ${crashed.length} crashed, ${unknown.length} unknown, ${timeouts.length} timed out`,
    );
    if (failing.length + crashed.length > 0)
      io.out(`failing scenarios are in ${out}/; replay one with: etcd-dst replay FILE`);
  }
  return worstExit([
    failing.length + crashed.length > 0 ? Exit.Violation : Exit.Ok,
    unknown.length + timeouts.length > 0 ? Exit.Unknown : Exit.Ok,
  ]);
}
