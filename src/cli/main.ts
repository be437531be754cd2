// The command table. Each command is a function of (argv, io) returning an exit code,
// so the CLI is a thin layer that tests can drive without spawning processes.

import { check } from "./check.js";
import { Exit, type ExitCode, type Io, UsageError } from "./common.js";
import { demo } from "./demo.js";
import { exec } from "./exec.js";
import { fuzz } from "./fuzz.js";
import { bugs, profiles, scenario } from "./lists.js";
import { real } from "./real.js";
import { report } from "./report.js";
import { replay, run } from "./run.js";
import { shrinkCommand } from "./shrink.js";

type Command = (argv: readonly string[], io: Io) => ExitCode | Promise<ExitCode>;

const COMMANDS: Record<string, { readonly run: Command; readonly summary: string }> = {
  run: { run, summary: "run one seed's scenario and check it" },
  fuzz: { run: fuzz, summary: "run many seeds on a pool of workers; save the failing scenarios" },
  replay: {
    run: replay,
    summary: "run a scenario file (or a seed) again, optionally twice to prove determinism",
  },
  shrink: {
    run: shrinkCommand,
    summary: "shrink a failing scenario to a minimal one that fails the same way",
  },
  report: {
    run: report,
    summary: "run a scenario and write its failure report, one self-contained HTML page",
  },
  bugs: { run: bugs, summary: "list the planted historical bugs (--bug NAME)" },
  profiles: { run: profiles, summary: "list the profiles (--profile P) and fault cases (--case NAME)" },
  scenario: { run: scenario, summary: "print the scenario file of a seed (to edit, keep, or replay)" },
  check: {
    run: check,
    summary: "check a history file for linearizability (etcd-dst, Jepsen etcd, Porcupine KV)",
  },
  exec: {
    run: exec,
    summary: "run a script of etcd API requests, one at a time, on the model (or a real etcd: --real)",
  },
  real: {
    run: real,
    summary:
      "the etcd traffic against a real etcd cluster on 127.0.0.1 under kill, pause and partition faults, checked",
  },
  demo: { run: demo, summary: "the kernel's demo: a toy cluster under random faults, each seed run twice" },
};

/** Each command's synopsis, for `etcd-dst COMMAND --help`. */
const USAGES: Record<string, string> = {
  run: "etcd-dst run --seed N [--profile P] [--case NAME] [--bug NAME]... [--report FILE] [--out DIR] [--budget STEPS] [--json]",
  fuzz: "etcd-dst fuzz [--seeds COUNT] [--from FIRST] [--jobs J] [--profile P] [--case NAME] [--bug NAME]... [--stop-on-first] [--out DIR] [--shard I/N] [--seed-timeout DUR] [--budget STEPS] [--json]",
  replay:
    "etcd-dst replay FILE | --seed N [--profile P] [--case NAME] [--bug NAME]... [--no-bugs] [--check-determinism] [--report FILE] [--out DIR] [--budget STEPS] [--json]",
  shrink:
    "etcd-dst shrink FILE | --seed N [--profile P] [--bug NAME]... [--out FILE] [--jobs J] [--max-runs N] [--json]",
  report: "etcd-dst report FILE | --seed N [--profile P] [--bug NAME]... [--out FILE]",
  bugs: "etcd-dst bugs [--json]",
  profiles: "etcd-dst profiles [--json]",
  scenario: "etcd-dst scenario --seed N [--profile P] [--case NAME] [--bug NAME]...",
  check: "etcd-dst check FILE [--format jepsen-etcd|porcupine-kv|etcd-dst] [--budget STEPS] [--json]",
  exec: "etcd-dst exec FILE [--members N] [--real] [--json]",
  real: "etcd-dst real [--members N] [--duration DUR] [--profile P] [--faults kill,pause,partition] [--json]",
  demo: "etcd-dst demo [--seeds COUNT] [--from FIRST] [--ack-before-fsync] [--json]",
};

function usage(): string {
  const lines = ["usage: etcd-dst <command> [flags]", "", "commands:"];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)}${c.summary}`);
  return lines.join("\n");
}

export async function main(argv: readonly string[], io: Io): Promise<ExitCode> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    io.out(usage());
    return name === undefined ? Exit.Usage : Exit.Ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command && (rest.includes("--help") || rest.includes("-h"))) {
    io.out(
      `usage: ${USAGES[name] ?? `etcd-dst ${name} [flags]`}\n\n${command.summary}\n(flags, JSON and exit codes: docs/cli.md and ../shared/CLI.md)`,
    );
    return Exit.Ok;
  }
  try {
    if (!command)
      throw new UsageError(`unknown command '${name}' (try: ${Object.keys(COMMANDS).join(", ")})`);
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`etcd-dst: ${e.message}`);
      return Exit.Usage;
    }
    throw e;
  }
}
