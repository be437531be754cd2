// Runs a scenario: builds the cluster and its clients in a simulator, schedules the faults,
// heals them, probes liveness, lets the members settle, and validates everything the run
// left. Same scenario, same run: the trace hash proves it.
import { Bugs } from "../models/bugs.js";
import type { EtcdClient } from "../models/client/client.js";
import type { Operation } from "../models/client/history.js";
import { EtcdCluster } from "../models/etcd/cluster.js";
import { electionTimeoutUs } from "../models/raft/node.js";
import { Simulator } from "../sim/index.js";
import type { LivenessProbe, MemberEnd, RunArtifacts } from "./check/artifacts.js";
import { type Validation, validateRun } from "./check/validate.js";
import {
  type ClusterHooks,
  type FaultTarget,
  type FaultWindow,
  scheduleFaults,
  type TriggerAction,
} from "./faults.js";
import type { Scenario } from "./scenario.js";
import { startWorkload } from "./workloads.js";

export interface RunStats {
  readonly events: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  /** Client operations started (the history's operations). */
  readonly ops: number;
  readonly faults: number;
  /** Terms in which a leader was elected, after the first. */
  readonly leaderChanges: number;
  /** Virtual time within the traffic window with no write succeeding for a second or more. */
  readonly unavailableMs: number;
  /** Of wallMs: the part spent checking. */
  readonly checkMs: number;
  /** With backup sidecars: what they did, and what a restore or lost data cost. */
  readonly backup?: BackupStats;
  /** After a restore from a snapshot (disaster recovery): the writes it gave up. */
  readonly restore?: RestoreStats;
}

export interface RestoreStats {
  readonly restores: number;
  /** The revision each restored snapshot held. */
  readonly revisions: readonly number[];
  /** Acknowledged writes after the snapshot, lost by design, and when they were acknowledged. */
  readonly lostWrites: number;
  readonly lossWindowMs: readonly [number, number] | null;
}

export interface BackupStats {
  readonly uploads: number;
  readonly validations: number;
  /** Virtual time the data-dir validations took, in total. */
  readonly validationMs: number;
  readonly restores: number;
  /** Acknowledged writes lost with the data (outside etcd's assumptions), and when. */
  readonly lostWrites: number;
  readonly lossWindowMs: readonly [number, number] | null;
}

export interface RunResult {
  readonly scenario: Scenario;
  readonly validation: Validation;
  readonly traceHash: string;
  readonly stats: RunStats;
  readonly artifacts: RunArtifacts;
  /** The simulator, for trace capture and reports (its timeline marks). */
  readonly sim: Simulator;
  /** The fault windows as they happened, roles resolved. */
  readonly faultWindows: readonly FaultWindow[];
}

export interface RunOptions {
  readonly captureTrace?: boolean;
  /** Model steps the linearizability search may take. */
  readonly budgetSteps?: number;
  /** Replaces the scenario's bugs (replay's --bug / --no-bugs). */
  readonly bugs?: readonly string[];
  /** Wall-clock stop (a fuzz seed's time limit): throws RunTimeout past it. */
  readonly deadline?: () => boolean;
}

/** A run that went past its wall-clock limit. */
export class RunTimeout extends Error {}

/** How long the members get to converge after the traffic stops. */
const SETTLE_US = 10_000_000;

/** The wall clock, for wallMs only: never read by anything the simulation does. */
const wallNow = () => performance.now();

export function runScenario(sc: Scenario, o: RunOptions = {}): RunResult {
  const wallStart = wallNow();
  const sim = new Simulator({ seed: String(sc.seed), captureTrace: o.captureTrace ?? false });
  const bugs = new Bugs(o.bugs ?? sc.bugs);
  const cp = sc.cluster;
  const cluster = new EtcdCluster(sim, {
    members: cp.members,
    bugs,
    server: {
      raft: {
        tickUs: cp.tickUs,
        electionTicks: cp.electionTicks,
        snapshotCount: cp.snapshotCount,
        snapshotCatchUpEntries: cp.snapshotCatchUpEntries,
        walSegmentBytes: cp.walSegmentBytes,
      },
      compactionBatchLimit: cp.compactionBatchLimit,
      backendBatchIntervalUs: cp.backendBatchIntervalUs,
      progressNotifyIntervalUs: cp.progressNotifyIntervalUs,
      leaseCheckpointIntervalUs: cp.leaseCheckpointIntervalUs,
    },
    ...(cp.backup ? { backup: cp.backup } : {}),
  });
  const slotOf = (name: string) => cluster.names.indexOf(name);
  const nodeOf = (name: string) => cluster.nodes[slotOf(name)] as number;

  // clients: nodes from the start, their loops from their start times
  const clients = new Map<string, EtcdClient>();
  for (const plan of sc.clients) {
    const endpoints = plan.endpoints.length > 0 ? plan.endpoints.map(nodeOf) : undefined;
    const client = cluster.addClient({
      requestTimeoutUs: plan.requestTimeoutUs,
      ...(endpoints ? { endpoints } : {}),
    });
    clients.set(plan.name, client);
    const rng = sim.random.fork(`client/${plan.name}`);
    let started = 0;
    const stopUs = Math.min(plan.stopUs, sc.timeline.trafficEndUs);
    sim.at(plan.startUs, `client.start.${plan.name}`, () =>
      startWorkload({
        client,
        rng,
        plan,
        bugs,
        nowUs: () => sim.nowUs,
        start: () => {
          if (sim.nowUs >= stopUs || (plan.maxOps !== undefined && started >= plan.maxOps)) return false;
          started++;
          return true;
        },
      }),
    );
  }

  // an operator for triggers: its compactions are client calls like any other
  let operator: EtcdClient | null = null;
  const op = () => (operator ??= cluster.addClient({}));
  const hooks: ClusterHooks = {
    leader: () => {
      const l = cluster.leader();
      return l ? cluster.nameOf(l.cfg.memberId) : null;
    },
    leaderSnapshotIndex: () => cluster.leader()?.raft.lastSnapshotIndex ?? 0,
    appliedIndex: (name) => cluster.server(slotOf(name))?.applied ?? 0,
    replaceMember: (name) => cluster.replaceMember(slotOf(name), () => {}),
    restoreFromScratch: (name) => cluster.restoreFromScratch(slotOf(name), () => {}),
    replacing: (name) => cluster.replacing.has(slotOf(name)),
    stop: (name) => cluster.stopGracefully(slotOf(name)),
    corruptAtRest: (name, file, position, length) =>
      cluster.corruptAtRest(slotOf(name), file, position, length),
    foreignVolume: (name, other) => cluster.foreignVolume(slotOf(name), slotOf(other)),
    trigger: (action: TriggerAction, name: string) => {
      const node = nodeOf(name);
      if (action === "defrag") op().maintenance(node, { type: "defrag" }, () => {});
      else if (action === "request-progress") for (const c of clients.values()) c.requestProgress();
      else {
        // half the time at the member's latest revision (where a tombstone on top matters: #17780)
        const rev = cluster.server(slotOf(name))?.mvcc.currentRev ?? 1;
        const rng = sim.random.fork(`trigger/${sim.nowUs}`);
        op().kv({ type: "compact", revision: Math.max(1, rng.chance(0.5) ? rev : rev - rng.int(1, 20)) });
      }
    },
  };
  const faultWindows: FaultWindow[] = [];
  const target: FaultTarget = {
    sim,
    members: cluster.names,
    index: (name) => sim.findNode(name),
    cluster: hooks,
    windows: faultWindows,
  };
  const heal = scheduleFaults(target, sc.faults);

  // the heal, then the liveness probe: a write and a linearizable read, retried
  let liveness: LivenessProbe | null = null;
  const healUs = sc.timeline.healUs;
  sim.at(healUs, "heal", () => {
    heal();
    const probe = cluster.addClient({});
    let writeOkUs: number | null = null;
    let readOkUs: number | null = null;
    const update = () => {
      liveness = { healedUs: healUs, writeOkUs, readOkUs, boundUs: sc.timeline.livenessBoundUs };
    };
    update();
    const attempt = () => {
      if (sim.nowUs > healUs + 2 * sc.timeline.livenessBoundUs) return;
      probe.put("liveness-probe", String(sim.nowUs), {}, (w) => {
        if (w.type !== "error" && writeOkUs === null) writeOkUs = sim.nowUs;
        probe.get("liveness-probe", {}, (r) => {
          if (r.type !== "error" && readOkUs === null && writeOkUs !== null) readOkUs = sim.nowUs;
          update();
          if (writeOkUs === null || readOkUs === null) probe.ctx.setTimer(500_000, "probe.retry", attempt);
        });
      });
    };
    attempt();
  });

  // run, in slices so that a wall-clock limit can stop it
  const runTo = (us: number) => {
    while (sim.nowUs < us) {
      sim.runUntil(Math.min(us, sim.nowUs + 1_000_000));
      if (o.deadline?.())
        throw new RunTimeout(`past its wall-clock limit at ${(sim.nowUs / 1e6).toFixed(1)}s of virtual time`);
    }
  };
  const end = Math.max(sc.timeline.trafficEndUs, healUs);
  runTo(end);
  // let calls in flight finish, then the members converge
  const maxTimeoutUs = Math.max(2_000_000, ...sc.clients.map((c) => c.requestTimeoutUs));
  runTo(end + maxTimeoutUs);
  const settled = () => {
    const applied = new Set<number>();
    const hashes = new Set<string>();
    for (let i = 0; i < cluster.size; i++) {
      const s = cluster.server(i);
      if (!s) return false;
      applied.add(s.applied);
      hashes.add(JSON.stringify(s.mvcc.hashKV(0)));
    }
    return applied.size === 1 && hashes.size === 1;
  };
  // liveness is judged at its bound: wait for the probe that long if need be
  const probeDone = () =>
    liveness !== null &&
    (liveness as LivenessProbe).writeOkUs !== null &&
    (liveness as LivenessProbe).readOkUs !== null;
  while (!probeDone() && sim.nowUs < healUs + sc.timeline.livenessBoundUs)
    runTo(Math.min(sim.nowUs + 200_000, healUs + sc.timeline.livenessBoundUs));
  const settleUntil = sim.nowUs + SETTLE_US;
  while (!settled() && sim.nowUs < settleUntil) runTo(sim.nowUs + 200_000);
  const endUs = sim.nowUs;

  const memberEnds: MemberEnd[] = cluster.names.map((name, i) => {
    const s = cluster.server(i);
    const h = s?.mvcc.hashKV(0);
    return { name, memberId: cluster.memberId(i), hashKv: h && !("type" in h) ? h : null };
  });
  const maxDrift = sc.faults.reduce(
    (m, f) => (f.kind === "clock-drift" ? Math.max(m, Math.abs(f.ppm)) : m),
    0,
  );
  const artifacts: RunArtifacts = {
    history: cluster.recorder.history(),
    members: cluster.records,
    end: memberEnds,
    liveness,
    reports: sim.monitor.reports,
    endUs,
    params: { electionTimeoutUs: electionTimeoutUs(cp), maxClockDriftPpm: maxDrift },
    ...(cluster.backup ? { backup: cluster.backup } : {}),
    ...(cluster.restores.length > 0 ? { restores: cluster.restores } : {}),
  };
  const simMs = wallNow() - wallStart;
  const checkStart = wallNow();
  const validation = validateRun(
    artifacts,
    o.budgetSteps === undefined ? {} : { budgetSteps: o.budgetSteps },
  );
  const checkMs = wallNow() - checkStart;
  return {
    scenario: sc,
    validation,
    traceHash: sim.trace.hash,
    sim,
    artifacts,
    faultWindows,
    stats: {
      events: sim.stats.events,
      virtualMs: Math.round(endUs / 1000),
      wallMs: Math.round(simMs + checkMs),
      ops: artifacts.history.operations.filter((x) => x.client >= 0).length,
      faults: sc.faults.length,
      leaderChanges: Math.max(0, cluster.invariants.leadersElected - 1),
      unavailableMs: unavailableMs(artifacts, sc),
      checkMs: Math.round(checkMs),
      ...(cluster.backup ? { backup: backupStats(artifacts, validation) } : {}),
      ...(cluster.restores.length > 0
        ? {
            restore: {
              restores: cluster.restores.length,
              revisions: cluster.restores.map((x) => x.state.revision),
              lostWrites: validation.loss?.lostWrites ?? 0,
              lossWindowMs: lossWindowMs(validation),
            },
          }
        : {}),
    },
  };
}

function backupStats(a: RunArtifacts, v: Validation): BackupStats {
  const b = a.backup as NonNullable<RunArtifacts["backup"]>;
  return {
    uploads: b.uploads.length,
    validations: b.validations.length,
    validationMs: Math.round(b.validations.reduce((n, x) => n + x.costUs, 0) / 1000),
    restores: b.restores.length,
    lostWrites: v.loss?.lostWrites ?? 0,
    lossWindowMs: lossWindowMs(v),
  };
}

function lossWindowMs(v: Validation): readonly [number, number] | null {
  const loss = v.loss;
  return loss && loss.fromUs !== null && loss.toUs !== null
    ? [Math.round(loss.fromUs / 1000), Math.round(loss.toUs / 1000)]
    : null;
}

/** Gaps of a second or more with no successful write, inside the traffic window. */
function unavailableMs(a: RunArtifacts, sc: Scenario): number {
  const from = Math.min(...sc.clients.map((c) => c.startUs), sc.timeline.trafficEndUs);
  return writeGapsMs(a.history.operations, from, sc.timeline.trafficEndUs);
}

/** Gaps of a second or more with no successful client write in [fromUs, toUs], in ms. */
export function writeGapsMs(ops: readonly Operation[], fromUs: number, toUs: number): number {
  const writes = ops
    .filter(
      (o) =>
        o.client >= 0 &&
        o.returnUs !== null &&
        o.response &&
        o.response.type !== "error" &&
        o.request.type !== "range",
    )
    .map((o) => o.returnUs as number)
    .filter((t) => t >= fromUs && t <= toUs)
    .sort((x, y) => x - y);
  let gapUs = 0;
  let last = fromUs;
  for (const t of [...writes, toUs]) {
    if (t - last >= 1_000_000) gapUs += t - last;
    last = t;
  }
  return Math.round(gapUs / 1000);
}
