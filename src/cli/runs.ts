// What `run`, `replay`, `fuzz` and `shrink` share: reading a scenario (from a seed or a
// file), the run's JSON document, the human summary, and saving a failing scenario.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { BUG_NAMES } from "../../models/bugs.js";
import { CASES } from "../cases.js";
import type { Violation } from "../check/artifacts.js";
import { describeFault } from "../faults.js";
import { generateScenario, PROFILE_NAMES } from "../profiles.js";
import type { RunResult } from "../runner.js";
import { parseScenario, type Scenario, ScenarioError, scenarioToJson } from "../scenario.js";
import { Exit, type ExitCode, UsageError } from "./common.js";

export function checkProfile(p: string | undefined): string {
  const profile = p ?? "mixed";
  if (!PROFILE_NAMES.includes(profile))
    throw new UsageError(`unknown profile '${profile}' (known: ${PROFILE_NAMES.join(", ")})`);
  return profile;
}

export function checkBugs(names: readonly string[] | undefined): string[] {
  const bugs = [...new Set(names ?? [])].sort();
  for (const b of bugs)
    if (!BUG_NAMES.includes(b)) throw new UsageError(`unknown bug '${b}' (known: ${BUG_NAMES.join(", ")})`);
  return bugs;
}

export function checkCase(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  if (!CASES.some((c) => c.name === name))
    throw new UsageError(`unknown case '${name}' (known: ${CASES.map((c) => c.name).join(", ")})`);
  return name;
}

/** A scenario from a file (exit 2 with the reason when it is not one). */
export function readScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return parseScenario(text);
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}

/** The scenario of a seed in a profile, with bugs switched on (they never change it). */
export function seedScenario(
  seed: number,
  profile: string,
  caseName: string | undefined,
  bugs: readonly string[],
): Scenario {
  return { ...generateScenario(seed, profile, caseName), bugs: [...bugs] };
}

export function exitOf(verdict: string): ExitCode {
  return verdict === "violation" ? Exit.Violation : verdict === "unknown" ? Exit.Unknown : Exit.Ok;
}

/** The JSON document of `run` and `replay` (../shared/CLI.md). */
export function runJson(r: RunResult, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const s = r.stats;
  return {
    seed: r.scenario.seed,
    profile: r.scenario.profile,
    ...(r.scenario.case ? { case: r.scenario.case } : {}),
    bugs: r.scenario.bugs,
    verdict: r.validation.verdict,
    violations: r.validation.violations.map((v) => ({ checker: v.checker, message: v.message })),
    traceHash: r.traceHash,
    stats: {
      events: s.events,
      virtualMs: s.virtualMs,
      wallMs: s.wallMs,
      ops: s.ops,
      faults: s.faults,
      leaderChanges: s.leaderChanges,
      unavailableMs: s.unavailableMs,
    },
    ...extra,
  };
}

/** The command that reproduces a scenario. */
export function reproduce(sc: Scenario, file: string | null): string {
  if (file) return `etcd-dst replay ${file}`;
  const bugs = sc.bugs.map((b) => ` --bug ${b}`).join("");
  return `etcd-dst run --seed ${sc.seed} --profile ${sc.profile}${sc.case ? ` --case ${sc.case}` : ""}${bugs}`;
}

/** A short account for people: which property, what, which faults were active, how to replay. */
export function humanSummary(r: RunResult, file: string | null): string {
  const v = r.validation;
  const s = r.stats;
  const lines = [
    `seed ${r.scenario.seed} (${r.scenario.profile}${r.scenario.bugs.length ? `, bugs: ${r.scenario.bugs.join(", ")}` : ""}): ${v.verdict}`,
    `  ${s.ops} operations, ${s.faults} faults, ${s.leaderChanges} leader changes, ${(s.unavailableMs / 1000).toFixed(1)}s without writes, ${(s.virtualMs / 1000).toFixed(1)}s virtual in ${s.wallMs}ms`,
  ];
  if (v.verdict === "unknown") lines.push("  the linearizability check ran out of budget before deciding");
  const shown = new Set<string>();
  for (const x of v.violations) {
    if (shown.has(x.checker) && shown.size > 0) continue;
    shown.add(x.checker);
    lines.push(`  ${x.checker}: ${x.message.split("\n")[0]}`);
    const active = activeFaults(r.scenario, x);
    if (active.length > 0) lines.push(`    faults active then: ${active.join("; ")}`);
  }
  if (v.violations.length > shown.size)
    lines.push(`  (${v.violations.length - shown.size} more violations of the same checkers)`);
  if (v.verdict !== "ok") lines.push(`  reproduce: ${reproduce(r.scenario, file)}`);
  return lines.join("\n");
}

function activeFaults(sc: Scenario, v: Violation): string[] {
  if (v.atUs === undefined) return [];
  const at = v.atUs;
  return sc.faults
    .filter((f) => f.atUs <= at && at <= f.atUs + Math.max(f.durationUs, 1_000_000))
    .map(describeFault)
    .slice(0, 5);
}

/**
 * Writes a failing scenario atomically (temp file, rename) under `dir`, with what it
 * failed, before anything else is reported. Returns the path.
 */
export function saveScenario(
  dir: string,
  sc: Scenario,
  checkers: readonly string[],
  verdict: string,
): string {
  mkdirSync(dir, { recursive: true });
  const name = `seed-${sc.seed}-${sc.profile}${sc.case ? `-${sc.case}` : ""}${sc.bugs.length ? `-${sc.bugs.join("+")}` : ""}.json`;
  const path = join(dir, name);
  const doc: Scenario = {
    ...sc,
    expect: { verdict: verdict as "violation", ...(checkers.length ? { checkers: [...checkers] } : {}) },
  };
  const tmp = join(dirname(path), `.${name}.${process.pid}.tmp`);
  writeFileSync(tmp, scenarioToJson(doc));
  renameSync(tmp, path);
  return path;
}

/** The sorted, distinct checker ids of violations. */
export function failedCheckers(vs: readonly Violation[]): string[] {
  return [...new Set(vs.map((v) => v.checker))].sort();
}
