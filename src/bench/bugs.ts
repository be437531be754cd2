// npm run bench:bugs [-- --json] [--bug NAME]... [--cap N] [--base N] [--jobs J] [--shrink-runs N] [--out DIR]
//
// For each planted bug: fuzz fresh seeds of its profile with the bug on, from a fixed base
// seed that no test uses, until a seed fails or the cap is reached; then shrink the first
// failing scenario on the property that caught it. Prints a table (or the JSON document of
// ../shared/CLI.md with --json) and keeps the first failure and its shrunk form in --out.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BUGS } from "../../models/bugs.js";
import { checkBugs, saveScenario } from "../cli/runs.js";
import { type Size, size } from "../cli/shrink.js";
import { defaultJobs, type Outcome, runCampaign, type SeedJob } from "../fuzz.js";
import { runScenario } from "../runner.js";
import { type Scenario, scenarioToJson } from "../scenario.js";
import { shrinkOnPool } from "../shrink.js";

const BASE_SEED = 7000;

interface Row {
  bug: string;
  profile: string;
  detected: boolean;
  seedsToFirst: number | null;
  firstSeed: number | null;
  wallMs: number;
  checker: string | null;
  shrunk: { faults: number; ops: number } | null;
  /** Not in CLI.md's minimum, kept for the docs: the shrink's cost and the files. */
  shrinkRuns?: number;
  shrinkWallMs?: number;
  before?: Size;
  after?: Size;
  file?: string;
}

function fail(msg: string): never {
  process.stderr.write(`bench:bugs: ${msg}\n`);
  process.exit(2);
}

function count(text: string | undefined, name: string, dflt: number): number {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text) || Number(text) < 1) fail(`${name} must be a positive integer, got '${text}'`);
  return Number(text);
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        json: { type: "boolean" },
        bug: { type: "string", multiple: true },
        cap: { type: "string" },
        base: { type: "string" },
        jobs: { type: "string" },
        "shrink-runs": { type: "string" },
        out: { type: "string" },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  const json = values.json === true;
  const cap = count(values.cap as string | undefined, "--cap", 2000);
  const base = count(values.base as string | undefined, "--base", BASE_SEED);
  const jobs = count(values.jobs as string | undefined, "--jobs", defaultJobs());
  const shrinkRuns = count(values["shrink-runs"] as string | undefined, "--shrink-runs", 200);
  const out = (values.out as string | undefined) ?? ".etcd-dst/bench-bugs";
  let names: string[];
  try {
    names = values.bug ? checkBugs(values.bug as string[]) : BUGS.map((b) => b.name);
  } catch (e) {
    fail((e as Error).message);
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const rows: Row[] = [];
  for (const name of names) {
    const bug = BUGS.find((b) => b.name === name)!;
    const started = performance.now();
    const seedJobs: SeedJob[] = [];
    for (let s = base; s < base + cap; s++)
      seedJobs.push({ kind: "seed", seed: s, profile: bug.profile, bugs: [name], timeoutMs: 120_000 });
    let done = 0;
    // a detection is a failure of a property the bug is known to break (models/bugs.ts);
    // a seed failing only another checker is counted apart and the search goes on
    const detects = (o: Outcome) =>
      o.verdict === "violation" && o.checkers.some((c) => bug.detectors.includes(c));
    const outcomes = await runCampaign(seedJobs, {
      jobs,
      stopOnFirst: true,
      stopsOn: detects,
      onOutcome: () => {
        done++;
        if (process.stderr.isTTY && done % 10 === 0) process.stderr.write(`\r${name}: ${done} seeds        `);
      },
    });
    if (process.stderr.isTTY) process.stderr.write("\r");
    const first: Outcome | undefined = outcomes.find(detects);
    const others = outcomes.filter((o) => o.verdict === "violation" && !detects(o));
    if (others.length > 0)
      log(
        `${name}: ${others.length} seed(s) failed other checkers first (${[...new Set(others.flatMap((o) => o.checkers))].join(", ")})`,
      );
    const wallMs = Math.round(performance.now() - started);
    const row: Row = {
      bug: name,
      profile: bug.profile,
      detected: first !== undefined,
      seedsToFirst: first ? first.seed - base + 1 : null,
      firstSeed: first?.seed ?? null,
      wallMs,
      checker: null,
      shrunk: null,
    };
    if (first?.scenario) {
      const file = saveScenario(out, first.scenario, first.checkers, "violation");
      // the property the reference notes name, when it is among those that failed
      const checker = first.checkers.find((c) => bug.detectors.includes(c)) as string;
      row.checker = checker;
      log(
        `${name}: seed ${first.seed} (${row.seedsToFirst} seeds, ${(wallMs / 1000).toFixed(1)}s) fails ${checker}`,
      );
      const shrinkStarted = performance.now();
      const input: Scenario = first.scenario;
      const result = await shrinkOnPool(input, checker, { jobs, maxRuns: shrinkRuns });
      const final = runScenario(result.scenario);
      const minFile = join(out, `${name}.min.json`);
      mkdirSync(out, { recursive: true });
      writeFileSync(
        minFile,
        scenarioToJson({ ...result.scenario, expect: { verdict: "violation", checkers: [checker] } }),
      );
      row.before = size(input, runScenario(input));
      row.after = size(result.scenario, final);
      row.shrunk = { faults: result.scenario.faults.length, ops: final.stats.ops };
      row.shrinkRuns = result.runs;
      row.shrinkWallMs = Math.round(performance.now() - shrinkStarted);
      row.file = file;
      log(
        `  shrunk in ${result.runs} runs to ${row.shrunk.faults} faults, ${row.shrunk.ops} ops: ${minFile}`,
      );
    } else log(`${name}: not detected in ${outcomes.length} seeds (${(wallMs / 1000).toFixed(1)}s)`);
    rows.push(row);
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
    return;
  }
  const head = [
    "bug",
    "profile",
    "detected",
    "seeds",
    "first seed",
    "wall s",
    "checker",
    "shrunk faults/ops",
  ];
  const table = rows.map((r) => [
    r.bug,
    r.profile,
    r.detected ? "yes" : "no",
    r.seedsToFirst === null ? `>${cap}` : String(r.seedsToFirst),
    r.firstSeed === null ? "-" : String(r.firstSeed),
    (r.wallMs / 1000).toFixed(1),
    r.checker ?? "-",
    r.shrunk ? `${r.shrunk.faults}/${r.shrunk.ops}` : "-",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  for (const line of [head, ...table]) console.log(line.map((c, i) => c.padEnd(widths[i]!)).join("  "));
  const found = rows.filter((r) => r.detected);
  const wall = found.map((r) => r.wallMs).sort((a, b) => a - b);
  const median = wall.length ? wall[Math.floor((wall.length - 1) / 2)]! : 0;
  console.log(
    `\n${found.length}/${rows.length} detected; median wall time to detection ${(median / 1000).toFixed(1)}s; within 1000 seeds: ${found.filter((r) => (r.seedsToFirst ?? Infinity) <= 1000).length}`,
  );
}

await main();
