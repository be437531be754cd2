// What every command shares: exit codes, usage errors, argument parsing, durations,
// seeds and output conventions (../shared/CLI.md, "General").
import { type ParseArgsConfig, parseArgs } from "node:util";

/** Exit codes, in the contract's priority order: 2, then 1, then 3, then 0. */
export const Exit = { Ok: 0, Violation: 1, Usage: 2, Unknown: 3 } as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** Combines outcomes: the highest-priority exit code wins. */
export function worstExit(codes: readonly ExitCode[]): ExitCode {
  for (const c of [Exit.Usage, Exit.Violation, Exit.Unknown] as const) if (codes.includes(c)) return c;
  return Exit.Ok;
}

/** Bad usage or bad input: printed as one line on stderr, exit 2, never a stack trace. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** The parsed value of each declared flag (absent flags are undefined). */
export type Flags<O extends Options> = {
  [K in keyof O]?: O[K] extends { type: "boolean" }
    ? O[K] extends { multiple: true }
      ? boolean[]
      : boolean
    : O[K] extends { multiple: true }
      ? string[]
      : string;
};

/** Parses flags strictly: an unknown flag or a missing value is a UsageError. */
export function parseFlags<O extends Options>(
  argv: readonly string[],
  options: O,
  allowPositionals = 0,
): { values: Flags<O>; positionals: string[] } {
  let parsed: { values: unknown; positionals: string[] };
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, options),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError(
      ((e as Error).message.split("\n")[0] ?? "bad arguments").replace(/\. To specify a positional.*$/, ""),
    );
  }
  if (parsed.positionals.length > allowPositionals) {
    throw new UsageError(`unexpected argument '${parsed.positionals[allowPositionals]}'`);
  }
  return { values: parsed.values as Flags<O>, positionals: parsed.positionals };
}

/**
 * `--seeds -1` as `--seeds=-1`: node's parser takes a value that starts with a dash for
 * a flag ("argument is ambiguous"), so the flag's own check never said what was wrong.
 */
function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    const option = arg.startsWith("--") ? options[arg.slice(2)] : undefined;
    if (option?.type === "string" && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

const MAX_SEED = 2 ** 53 - 1;

/** A seed: a decimal integer from 0 to 2^53-1. */
export function parseSeed(text: string, flag = "--seed"): number {
  if (!/^\d+$/.test(text))
    throw new UsageError(`${flag} must be a decimal integer from 0 to 2^53-1, got '${text}'`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > MAX_SEED) throw new UsageError(`${flag} ${text} is above 2^53-1`);
  return n;
}

/** A positive count (seeds, jobs, budget steps...). */
export function parseCount(text: string, flag: string, min = 1): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) {
    throw new UsageError(`${flag} must be an integer >= ${min}, got '${text}'`);
  }
  return Number(text);
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1_000, s: 1_000_000, m: 60_000_000, h: 3_600_000_000 };

/** A duration with a unit (`500ms`, `20s`, `2m`) in integer microseconds. */
export function parseDurationUs(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new UsageError(`${flag} needs a duration with a unit (500ms, 20s, 2m), got '${text}'`);
  const us = Math.round(Number(m[1]) * (UNIT_US[m[2] as string] as number));
  if (us <= 0) throw new UsageError(`${flag} must be positive, got '${text}'`);
  return us;
}

/** Output streams, so that commands can be run from code and tests. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether progress may be drawn (stderr is a TTY). */
  readonly progress: boolean;
  readonly color: boolean;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith("\n") ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith("\n") ? t : `${t}\n`),
  progress: process.stderr.isTTY === true,
  color: process.stdout.isTTY === true && !("NO_COLOR" in process.env),
};

/** Milliseconds for JSON: virtual microseconds become a number of milliseconds. */
export function toMs(us: number): number {
  return Math.round(us / 1000);
}
