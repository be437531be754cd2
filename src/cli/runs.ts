// What `run`, `replay`, `fuzz` and `shrink` share: reading a scenario (from a seed or a
// file), the run's JSON document, the human summary, and saving a failing scenario.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { BUG_NAMES } from "../../models/bugs.js";
import { CASES } from "../cases.js";
import type { Violation } from "../check/artifacts.js";
import { caseMismatch, generateScenario, PROFILE_NAMES } from "../profiles.js";
import type { RunResult } from "../runner.js";
import { parseScenario, type Scenario, ScenarioError, scenarioToJson } from "../scenario.js";
import { Exit, type ExitCode, parseSeed, UsageError } from "./common.js";

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

export function checkCase(name: string | undefined, profile: string): string | undefined {
  if (name === undefined) return undefined;
  if (!CASES.some((c) => c.name === name))
    throw new UsageError(`unknown case '${name}' (known: ${CASES.map((c) => c.name).join(", ")})`);
  const mismatch = caseMismatch(name, profile);
  if (mismatch) throw new UsageError(mismatch);
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

/**
 * The scenario a command runs: a scenario FILE (its bugs replaced by --bug when given) or
 * the seed's (--seed N with --profile, --case, --bug); exactly one of the two.
 */
export function chooseScenario(
  command: string,
  file: string | undefined,
  v: { seed?: string; profile?: string; case?: string; bug?: string[] },
): Scenario {
  if ((file === undefined) === (v.seed === undefined))
    throw new UsageError(`${command} needs a scenario FILE or --seed N (one of them)`);
  if (file === undefined)
    return seedScenario(
      parseSeed(v.seed as string),
      checkProfile(v.profile),
      checkCase(v.case, checkProfile(v.profile)),
      checkBugs(v.bug),
    );
  if (v.profile !== undefined || v.case !== undefined)
    throw new UsageError("--profile and --case go with --seed, not a file");
  const sc = readScenario(file);
  return v.bug ? { ...sc, bugs: checkBugs(v.bug) } : sc;
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
      ...(s.backup ? { backup: s.backup } : {}),
      ...(s.restore ? { restore: s.restore } : {}),
    },
    ...extra,
  };
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

/** Writes the HTML report of a run atomically; returns the path. */
export function writeReport(path: string, html: string): string {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, html);
  renameSync(tmp, path);
  return path;
}
