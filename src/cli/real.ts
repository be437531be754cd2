// `etcd-dst real [--members N] [--duration DUR] [--profile P] [--faults kill,pause,partition]
// [--json]`: the etcd traffic against a real cluster on 127.0.0.1 under process and peer
// network faults, checked like a simulated run. The JSON is `run`'s with "seed":null,
// "traceHash":null and "etcdVersion". A failing run keeps its directory (data, member
// logs, history.json) and says where.
import { RealEtcdUnavailable } from "../real/etcd.js";
import { REAL_FAULTS, type RealFault, runReal } from "../real/run.js";
import {
  Exit,
  type ExitCode,
  type Io,
  parseCount,
  parseDurationUs,
  parseFlags,
  UsageError,
} from "./common.js";
import { exitOf } from "./runs.js";

const FLAGS = {
  members: { type: "string" },
  duration: { type: "string" },
  profile: { type: "string" },
  faults: { type: "string" },
  json: { type: "boolean" },
} as const;

/** The profile whose traffic the real mode drives (the others need clients it lacks). */
const REAL_PROFILE = "etcd";

function parseFaults(text: string): RealFault[] {
  if (text === "" || text === "none") return [];
  const out: RealFault[] = [];
  for (const f of text.split(",")) {
    if (!(REAL_FAULTS as readonly string[]).includes(f))
      throw new UsageError(`--faults: unknown fault '${f}' (choose from ${REAL_FAULTS.join(", ")}, or none)`);
    if (!out.includes(f as RealFault)) out.push(f as RealFault);
  }
  return out;
}

export async function real(argv: readonly string[], io: Io): Promise<ExitCode> {
  const { values } = parseFlags(argv, FLAGS);
  const members = values.members === undefined ? 3 : parseCount(values.members, "--members");
  if (members > 7) throw new UsageError(`--members must be at most 7, got ${members}`);
  const durationMs = Math.round(parseDurationUs(values.duration ?? "20s", "--duration") / 1000);
  if (durationMs < 2_000) throw new UsageError("--duration must be at least 2s");
  const profile = values.profile ?? REAL_PROFILE;
  if (profile !== REAL_PROFILE)
    throw new UsageError(
      `--profile: real runs the '${REAL_PROFILE}' profile's traffic; '${profile}' needs clients the real mode does not have yet`,
    );
  const faults = parseFaults(values.faults ?? "kill,pause");
  if (faults.includes("partition") && members < 2)
    throw new UsageError("--faults partition needs 2 members or more");
  const json = values.json ?? false;
  const seed = `real-${Date.now()}`;
  let r: Awaited<ReturnType<typeof runReal>>;
  try {
    r = await runReal({
      members,
      durationMs,
      faults,
      seed,
      log: (line) => {
        if (!json) io.err(line);
      },
    });
  } catch (e) {
    if (e instanceof RealEtcdUnavailable) throw new UsageError(`real: ${e.message}`);
    throw e;
  }
  const v = r.validation;
  const s = r.stats;
  const kept = v.verdict === "ok" ? {} : { dir: r.dir, history: `${r.dir}/history.json` };
  if (json) {
    io.out(
      JSON.stringify({
        seed: null,
        profile,
        bugs: [],
        verdict: v.verdict,
        violations: v.violations.map((x) => ({ checker: x.checker, message: x.message })),
        traceHash: null,
        stats: {
          events: s.watchEvents,
          virtualMs: s.wallMs,
          wallMs: s.wallMs,
          ops: s.ops,
          faults: s.faults,
          leaderChanges: s.leaderChanges,
          unavailableMs: s.unavailableMs,
          watchEvents: s.watchEvents,
          checkMs: s.checkMs,
        },
        etcdVersion: r.etcdVersion,
        faultLog: r.faultLog,
        ...kept,
      }),
    );
    return exitOf(v.verdict);
  }
  const lin = v.linearizability;
  io.out(
    [
      `real etcd ${r.etcdVersion}, ${members} member(s), ${(s.wallMs / 1000).toFixed(1)}s: ${v.verdict}`,
      `  checked ${s.ops} operations (linearizability: ${lin.verdict}, ${lin.ops} ops), ${s.watchEvents} watch events on ${members} watches, ${s.faults} fault(s) (${faults.join(", ") || "none"})`,
      `  ${s.leaderChanges} leader change(s), ${s.unavailableMs} ms without a successful write, checking took ${s.checkMs} ms`,
      ...v.violations.map((x) => `  ${x.checker}: ${x.message}`),
      ...(v.verdict === "ok"
        ? []
        : [`  kept: ${r.dir} (data, member logs, history.json: etcd-dst check it)`]),
    ].join("\n"),
  );
  return v.verdict === "ok" ? Exit.Ok : exitOf(v.verdict);
}
