// A randomized scenario for Raft on its own (the raft testbed under kernel faults), used
// by the Raft tests and `npm run bench:raft`: a trickle of proposals, a fault phase,
// a heal, then a liveness check (a marker must commit) and convergence of all members.
import { type LogCluster, startLogCluster } from "../models/raft/testbed.js";
import { Simulator } from "../sim/index.js";
import {
  type Fault,
  type FaultMix,
  type FaultTarget,
  generateFaults,
  healAll,
  scheduleFaults,
} from "./faults.js";

export const RAFT_FAULT_END_US = 10_000_000;
export const RAFT_LIVENESS_DEADLINE_US = 10_000_000;

/** Every kernel fault within etcd's assumptions, and raft's crash points. */
export const RAFT_FAULT_MIX: FaultMix = {
  crash: 3,
  partition: 3,
  pause: 2,
  "clock-drift": 1,
  "wall-jump": 1,
  link: 2,
  clog: 1,
  "slow-disk": 1,
  failpoint: 2,
};

/** etcd's failpoints in the raft loop (server/etcdserver/raft.go). */
export const RAFT_FAILPOINTS: readonly string[] = [
  "raftBeforeSave",
  "raftAfterSave",
  "raftBeforeSaveSnap",
  "raftAfterSaveSnap",
  "raftBeforeApplySnap",
  "raftAfterApplySnap",
  "raftAfterWALRelease",
  "raftBeforeLeaderSend",
  "raftBeforeFollowerSend",
];

export interface RaftScenarioOptions {
  readonly members: number;
  readonly mix?: FaultMix;
  readonly voteBeforePersist?: boolean;
  readonly commitBeforeLeaderPersist?: boolean;
  /** Mean gap between proposals. */
  readonly proposalGapUs?: number;
  readonly captureTrace?: boolean;
}

export interface RaftScenarioRun {
  readonly sim: Simulator;
  readonly cluster: LogCluster;
  readonly faults: number;
  readonly schedule: readonly Fault[];
  readonly proposals: number;
  /** Virtual time from the heal to the commit of the marker, or -1 if it never committed. */
  readonly recoveryUs: number;
  /** Whether every member ended with the same applied state. */
  readonly converged: boolean;
}

/** Each member's (applied count, state hash), or "down". */
export function memberStates(cluster: LogCluster): string[] {
  return cluster.names.map((_, i) => {
    const m = cluster.member(i);
    return m ? `${m.appliedCount}:${m.stateHash}` : "down";
  });
}

export function runRaftScenario(seed: number, o: RaftScenarioOptions): RaftScenarioRun {
  const members = o.members;
  const sim = new Simulator({ seed: String(seed), captureTrace: o.captureTrace ?? false });
  const rng = sim.random.fork("scenario");
  const cluster = startLogCluster(sim, {
    members,
    raft: {
      snapshotCount: rng.pick([20, 50, 200]),
      snapshotCatchUpEntries: rng.pick([5, 20]),
      walSegmentBytes: 8 * 1024,
      voteBeforePersist: o.voteBeforePersist ?? false,
      commitBeforeLeaderPersist: o.commitBeforeLeaderPersist ?? false,
    },
  });
  const target: FaultTarget = { sim, members: cluster.names, index: (n) => cluster.names.indexOf(n) };
  const faults = generateFaults(sim.random.fork("faults"), {
    members: cluster.names,
    startUs: 1_000_000,
    endUs: RAFT_FAULT_END_US,
    meanGapUs: rng.pick([100_000, 400_000, 1_000_000]),
    mix: o.mix ?? RAFT_FAULT_MIX,
    crashModes: ["keep", "lose", "prefix", "torn"],
    failpoints: RAFT_FAILPOINTS,
    maxDown: members,
  });
  scheduleFaults(target, faults);
  const load = sim.random.fork("load");
  const gapUs = o.proposalGapUs ?? 30_000;
  let proposals = 0;
  const propose = () => {
    cluster.propose(load.int(0, members), `p${proposals++}`);
    if (sim.nowUs < RAFT_FAULT_END_US) sim.after(1 + Math.round(load.exponential(gapUs)), "load", propose);
  };
  sim.after(500_000, "load", propose);
  sim.runUntil(RAFT_FAULT_END_US);
  healAll(target);
  const healedUs = sim.nowUs;
  const committed = () =>
    [...cluster.applied.values()].filter((a) => a.includes("marker")).length * 2 > members;
  const retry = () => {
    if (committed()) return;
    cluster.propose(load.int(0, members), "marker");
    sim.after(300_000, "marker", retry);
  };
  retry();
  const ok = sim.runUntilTrue(committed, healedUs + RAFT_LIVENESS_DEADLINE_US);
  const recoveryUs = ok ? sim.nowUs - healedUs : -1;
  // A follower whose snapshot was lost waits for the leader's snapshot timeout (5 s).
  const converged = sim.runUntilTrue(() => new Set(memberStates(cluster)).size === 1, sim.nowUs + 20_000_000);
  return { sim, cluster, faults: faults.length, schedule: faults, proposals, recoveryUs, converged };
}
