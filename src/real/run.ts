// `etcd-dst real`: the etcd traffic of the robustness tests against a real cluster on
// 127.0.0.1, with process faults (SIGKILL and restart, SIGSTOP/SIGCONT) and peer-network
// faults through per-pair proxies, recorded in our history format with real timestamps
// and judged by the same checkers as a simulated run.
//
// The simulator records what every member applied; a real cluster does not say. The
// reference is rebuilt instead from one watch over every key from revision 2, opened
// after the faults healed: each revision's events replayed as one txn (etcd's robustness
// tests rebuild it from the WAL). So the workload does not compact (the history must stay
// whole) and does not use leases (events do not say which lease a revoke ended).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type {
  ErrorResponse,
  KvRequest,
  KvResponse,
  TxnOp,
  WatchEvent,
  WatchRequest,
} from "../../models/client/history.js";
import { prefixEnd } from "../../models/client/history.js";
import { HistoryRecorder } from "../../models/client/recorder.js";
import type { AppliedRecord, MemberRecord } from "../../models/etcd/cluster.js";
import type { MonitorReport } from "../../sim/monitor.js";
import { Random } from "../../sim/random.js";
import type { LivenessProbe, MemberEnd, RunArtifacts } from "../check/artifacts.js";
import { type Validation, validateRun } from "../check/validate.js";
import { historyToJson } from "../history/io.js";
import { writeGapsMs } from "../runner.js";
import { RealCluster, request, response } from "./etcd.js";
import { hashKv, WatchStream } from "./grpc.js";

export const REAL_FAULTS = ["kill", "pause", "partition"] as const;
export type RealFault = (typeof REAL_FAULTS)[number];

export interface RealOptions {
  readonly members: number;
  readonly durationMs: number;
  readonly faults: readonly RealFault[];
  /** Seeds the choice of operations and faults (a real run replays nothing: timing rules). */
  readonly seed: string;
  /** Progress lines, as the run goes. */
  readonly log?: (line: string) => void;
}

export interface RealStats {
  readonly ops: number;
  readonly watchEvents: number;
  readonly faults: number;
  readonly wallMs: number;
  readonly leaderChanges: number;
  readonly unavailableMs: number;
  readonly checkMs: number;
}

export interface RealResult {
  readonly validation: Validation;
  readonly artifacts: RunArtifacts;
  readonly stats: RealStats;
  /** What was done to the cluster, when (ms since the start). */
  readonly faultLog: readonly string[];
  readonly etcdVersion: string;
  /** The cluster's directory: data, member logs; kept (with history.json) on a failure. */
  readonly dir: string;
}

const PREFIX = "real/";
const KEYS = Array.from({ length: 8 }, (_, i) => `${PREFIX}k${i}`);
const CLIENTS = 4;
const REQUEST_TIMEOUT_MS = 2_000;
const LIVENESS_BOUND_MS = 15_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs the workload under faults, heals, and checks. Always stops every process. */
export async function runReal(o: RealOptions): Promise<RealResult> {
  const log = o.log ?? (() => {});
  const cluster = await RealCluster.start(o.members, { proxies: o.faults.includes("partition") });
  let kept = false;
  try {
    const result = await drive(cluster, o, log);
    kept = result.validation.verdict !== "ok";
    return result;
  } catch (e) {
    kept = true;
    throw new Error(`${(e as Error).message}; data and member logs kept in ${cluster.dir}`);
  } finally {
    await cluster.close(kept);
  }
}

async function drive(cluster: RealCluster, o: RealOptions, log: (line: string) => void): Promise<RealResult> {
  const rng = new Random(o.seed);
  const t0 = performance.now();
  const nowUs = () => Math.round((performance.now() - t0) * 1000);
  const nowMs = () => Math.round(performance.now() - t0);
  const recorder = new HistoryRecorder(nowUs);
  const n = o.members;
  const name = (i: number) => cluster.members[i]?.name ?? `m${i + 1}`;
  const firstTerm = await raftTerm(cluster);

  // the client's balancer: its own member if up, else the next one that is
  const pick = (home: number) => {
    for (let k = 0; k < n; k++) if (cluster.isUp((home + k) % n)) return (home + k) % n;
    return home;
  };
  const callOn = async (client: number, member: number, req: KvRequest) => {
    const op = recorder.call(client, req);
    let answer: KvResponse | ErrorResponse;
    try {
      const { path, body } = request(req);
      answer = response(req, await cluster.call(path, body, member, REQUEST_TIMEOUT_MS));
    } catch (e) {
      const timedOut = (e as Error).name === "TimeoutError";
      answer = {
        type: "error",
        code: timedOut ? "DeadlineExceeded" : "Unavailable",
        message: timedOut ? "context deadline exceeded" : `connection: ${(e as Error).message}`,
      };
    }
    recorder.finish(op, answer, name(member));
    return answer;
  };

  // ---- watches: one per member, over the workload's keys, resumed elsewhere when cut ----
  let watchEvents = 0;
  const streams: WatchStream[] = [];
  let stopping = false;
  const watchFrom = (home: number) => {
    const req: WatchRequest = { key: PREFIX, rangeEnd: prefixEnd(PREFIX), prevKv: true };
    const id = recorder.watchStarted(CLIENTS + 1 + home, req, name(home));
    let last = 0;
    const open = (member: number, resume: boolean) => {
      if (stopping) return;
      const start = last + 1;
      const stream = new WatchStream(cluster.clientPortOf(member), () => {
        if (!stopping) setTimeout(() => open(pick(member + 1), true), 200);
      });
      streams.push(stream);
      stream.watch(resume ? { ...req, startRevision: start } : req, (r) => {
        const { atUs: _, ...rest } = r;
        recorder.watchResponse(id, {
          ...rest,
          member: name(member),
          ...(r.created && resume ? { startRevision: start } : {}),
        });
        watchEvents += r.events.length;
        for (const e of r.events) last = Math.max(last, e.kv.modRevision);
        if (!r.created && r.events.length === 0 && !r.canceled) last = Math.max(last, r.revision);
      });
    };
    open(home, false);
  };
  for (let i = 0; i < n; i++) watchFrom(i);

  // ---- KV clients ----
  const endTrafficMs = o.durationMs;
  let counter = 0;
  const client = async (c: number) => {
    const r = rng.fork(`client-${c}`);
    const lastMod = new Map<string, number>();
    while (nowMs() < endTrafficMs) {
      const member = pick(c % n);
      const key = r.pick(KEYS);
      const value = () => `c${c}-${++counter}`;
      const roll = r.int(0, 100);
      let req: KvRequest;
      if (roll < 20) req = { type: "range", key };
      else if (roll < 25) req = { type: "range", key, serializable: true };
      else if (roll < 35) req = { type: "range", key: PREFIX, rangeEnd: prefixEnd(PREFIX) };
      else if (roll < 63) req = { type: "put", key, value: value() };
      else if (roll < 71) req = { type: "delete", key };
      else if (roll < 90) {
        const put: TxnOp = { type: "put", key, value: value() };
        req = {
          type: "txn",
          compare: [{ key, target: "MOD", result: "EQUAL", value: lastMod.get(key) ?? 0 }],
          success: [put],
          failure: [{ type: "range", key }],
        };
      } else {
        const other = KEYS[(KEYS.indexOf(key) + 1 + r.int(0, KEYS.length - 1)) % KEYS.length] as string;
        req = {
          type: "txn",
          compare: [],
          success: [
            { type: "put", key, value: value() },
            { type: "put", key: other, value: value() },
          ],
          failure: [],
        };
      }
      const a = await callOn(c, member, req);
      // what a CAS client learns: the key's mod revision, from reads and its own writes
      if (a.type === "range" && req.type === "range" && req.rangeEnd === undefined)
        lastMod.set(key, a.kvs[0]?.modRevision ?? 0);
      else if (a.type === "put") lastMod.set(key, a.revision);
      else if (a.type === "txn") {
        const read = a.responses[0];
        lastMod.set(key, read?.type === "range" ? (read.kvs[0]?.modRevision ?? 0) : a.revision);
      }
      await sleep(r.int(5, 25));
    }
  };

  // ---- faults: one at a time, each healed before the next ----
  const faultLog: string[] = [];
  let faultCount = 0;
  const note = (line: string) => {
    faultLog.push(`${(nowMs() / 1000).toFixed(1)}s ${line}`);
    log(`  ${(nowMs() / 1000).toFixed(1)}s ${line}`);
  };
  const injector = async () => {
    const r = rng.fork("faults");
    if (o.faults.length === 0) return;
    await sleep(r.int(1_000, 2_500));
    while (nowMs() < endTrafficMs - 1_000) {
      const kind = r.pick(o.faults);
      const m = r.int(0, n);
      const durMs = Math.min(r.int(1_000, 3_500), Math.max(0, endTrafficMs - nowMs()));
      faultCount++;
      if (kind === "kill") {
        note(`SIGKILL ${name(m)}`);
        await cluster.kill(m);
        await sleep(durMs);
        cluster.restart(m);
        note(`restart ${name(m)}`);
      } else if (kind === "pause") {
        note(`SIGSTOP ${name(m)}`);
        cluster.pause(m, true);
        await sleep(durMs);
        cluster.pause(m, false);
        note(`SIGCONT ${name(m)}`);
      } else {
        const proxies = cluster.proxies;
        if (!proxies || n < 2) continue;
        const delay = r.chance(0.3) ? r.int(50, 300) : 0;
        note(
          delay ? `delay ${name(m)}'s peer traffic by ${delay} ms` : `blackhole ${name(m)}'s peer traffic`,
        );
        for (let k = 0; k < n; k++)
          if (k !== m) {
            if (delay) proxies.setDelay(m, k, delay);
            else proxies.setBlocked(m, k, true);
          }
        await sleep(durMs);
        proxies.healAll();
        note(`heal ${name(m)}'s peer network`);
      }
      await sleep(r.int(1_000, 2_500));
    }
  };
  // ---- a supervisor, as a kubelet: a member that exits on its own is noted and started
  // again a second later; a panic is etcd's own failure (raft.panic, as in the model) ----
  const reports: MonitorReport[] = [];
  let supervising = true;
  const superviseOnce = async () => {
    for (const x of cluster.takeSelfExits()) {
      const why = x.panic ? `panic: ${x.panic}` : `exit code ${x.code ?? x.signal}`;
      note(`${x.name} exited on its own (${why})`);
      if (x.panic)
        reports.push({
          checker: "raft.panic",
          message: `etcd panic on ${x.name}: ${x.panic}`,
          node: x.name,
          virtualUs: nowUs(),
        });
      await sleep(1_000);
      cluster.restart(x.member);
      note(`restart ${x.name}`);
    }
  };
  const supervisor = async () => {
    while (supervising) {
      await superviseOnce();
      await sleep(200);
    }
  };
  const supervised = supervisor();
  await Promise.all([...Array.from({ length: CLIENTS }, (_, c) => client(c)), injector()]);
  supervising = false;
  await supervised;
  await superviseOnce();
  // every fault is healed by now; calls in flight ended with their timeouts
  const healedUs = nowUs();
  log(`  ${(healedUs / 1e6).toFixed(1)}s traffic stopped, faults healed`);

  // ---- liveness: a write and a linearizable read after the heal ----
  const probeClient = CLIENTS;
  let writeOkUs: number | null = null;
  let readOkUs: number | null = null;
  while ((writeOkUs === null || readOkUs === null) && nowUs() - healedUs < 2 * LIVENESS_BOUND_MS * 1000) {
    const member = pick(0);
    if (writeOkUs === null) {
      const w = await callOn(probeClient, member, {
        type: "put",
        key: `${PREFIX}probe`,
        value: `p${nowUs()}`,
      });
      if (w.type !== "error") writeOkUs = nowUs();
    } else {
      const g = await callOn(probeClient, member, { type: "range", key: `${PREFIX}probe` });
      if (g.type !== "error") readOkUs = nowUs();
    }
    if (writeOkUs === null || readOkUs === null) await sleep(300);
  }
  const liveness: LivenessProbe = { healedUs, writeOkUs, readOkUs, boundUs: LIVENESS_BOUND_MS * 1000 };

  // ---- the members converge; their HashKV at one revision ----
  let revisions: number[] = [];
  for (let tries = 0; tries < 50; tries++) {
    revisions = await Promise.all(cluster.members.map((_, i) => memberRevision(cluster, i)));
    if (new Set(revisions).size === 1 && (revisions[0] ?? 0) > 0) break;
    await sleep(200);
  }
  const at = Math.max(1, Math.min(...revisions.filter((x) => x > 0)));
  const end: MemberEnd[] = await Promise.all(
    cluster.members.map(async (m, i) => {
      try {
        const h = await hashKv(cluster.clientPortOf(i), at);
        return { name: m.name, memberId: i + 1, hashKv: { ...h, revision: at } };
      } catch {
        return { name: m.name, memberId: i + 1, hashKv: null };
      }
    }),
  );
  const lastRevision = Math.max(...revisions, 1);

  // ---- the reference: every revision's events, from one watch over every key ----
  stopping = true;
  for (const s of streams) s.close();
  await sleep(300);
  const applied = await referenceRecords(cluster, lastRevision);
  const members: MemberRecord[] = [{ name: "reference", memberId: 0, applied }];
  const endUs = nowUs();
  const history = recorder.history();
  const artifacts: RunArtifacts = {
    history,
    members,
    end,
    liveness,
    reports,
    endUs,
    params: { electionTimeoutUs: 1_000_000, maxClockDriftPpm: 0 },
  };
  const checkStart = performance.now();
  const validation = validateRun(artifacts);
  const checkMs = Math.round(performance.now() - checkStart);
  // never lose a failure: the history and what was done are on disk before anything is said
  if (validation.verdict !== "ok") {
    writeFileSync(join(cluster.dir, "history.json"), historyToJson(history));
    writeFileSync(
      join(cluster.dir, "result.json"),
      JSON.stringify(
        { verdict: validation.verdict, violations: validation.violations, faults: faultLog },
        null,
        1,
      ),
    );
  }
  return {
    validation,
    artifacts,
    faultLog,
    etcdVersion: cluster.version,
    dir: cluster.dir,
    stats: {
      ops: history.operations.length,
      watchEvents,
      faults: faultCount,
      wallMs: Math.round(performance.now() - t0),
      leaderChanges: Math.max(0, (await raftTerm(cluster)) - firstTerm),
      unavailableMs: writeGapsMs(history.operations, 0, endTrafficMs * 1000),
      checkMs,
    },
  };
}

async function memberRevision(cluster: RealCluster, i: number): Promise<number> {
  try {
    const s = await cluster.call("/v3/maintenance/status", {}, i, 2_000);
    return Number((s.header as { revision?: string } | undefined)?.revision ?? 0);
  } catch {
    return 0;
  }
}

/** The highest raft term any member reports (leader elections since the start, roughly). */
async function raftTerm(cluster: RealCluster): Promise<number> {
  let term = 0;
  for (let i = 0; i < cluster.members.length; i++) {
    try {
      const s = await cluster.call("/v3/maintenance/status", {}, i, 2_000);
      term = Math.max(term, Number(s.raftTerm ?? 0));
    } catch {
      // down: another member says
    }
  }
  return term;
}

/**
 * Every revision from 2 to `last` as one applied record: a txn of that revision's events
 * in order (puts with their value and lease, deletes), which the specification replays
 * into the same store.
 */
async function referenceRecords(cluster: RealCluster, last: number): Promise<AppliedRecord[]> {
  const byRevision = new Map<number, WatchEvent[]>();
  let seen = 1;
  const failures: string[] = [];
  const deadline = Date.now() + 20_000;
  // from the first member that streams it all: one may be down or still starting
  for (let attempt = 0; seen < last && Date.now() < deadline; attempt++) {
    const member = attempt % cluster.members.length;
    let failure: string | null = null;
    const stream = new WatchStream(cluster.clientPortOf(member), (reason) => {
      failure = reason;
    });
    const from = seen;
    stream.watch({ key: "\u0000", rangeEnd: "\u0000", startRevision: from + 1 }, (r) => {
      for (const e of r.events) {
        const rev = e.kv.modRevision;
        if (rev <= from) continue;
        let list = byRevision.get(rev);
        if (!list) byRevision.set(rev, (list = []));
        list.push(e);
      }
      // a response holds whole revisions: every event of the highest one is in it
      for (const e of r.events) seen = Math.max(seen, e.kv.modRevision);
    });
    const until = Math.min(deadline, Date.now() + 10_000);
    while (seen < last && failure === null && Date.now() < until) await sleep(20);
    stream.close();
    if (failure !== null) {
      failures.push(`${cluster.members[member]?.name}: ${failure}`);
      await sleep(250);
    }
  }
  if (seen < last)
    throw new Error(
      `the reference watch reached revision ${seen} of ${last}${failures.length ? ` (${failures.join("; ")})` : ""}`,
    );
  const out: AppliedRecord[] = [];
  for (let rev = 2; rev <= last; rev++) {
    const events = byRevision.get(rev) ?? [];
    const ops: TxnOp[] = events.map((e) =>
      e.type === "PUT"
        ? { type: "put", key: e.kv.key, value: e.kv.value, ...(e.kv.lease ? { lease: e.kv.lease } : {}) }
        : { type: "delete", key: e.kv.key },
    );
    out.push({
      index: rev,
      term: 0,
      requestId: `revision-${rev}`,
      origin: 0,
      request: { type: "txn", compare: [], success: ops, failure: [] },
      response: { type: "txn", revision: rev, succeeded: true, responses: [] },
      revision: rev,
      expiry: false,
      callId: undefined,
      atUs: 0,
    });
  }
  return out;
}
