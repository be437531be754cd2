// Profiles: the workload and fault families a seed is drawn from (../shared/CLI.md).
// Generation is swarm testing: each seed enables a random subset of the profile's fault
// kinds, each at a random intensity, so that rare combinations get room. A profile may
// make the conditions a family of bugs needs frequent (compaction, snapshots, crash
// points in the right code paths); it never looks at which bug is on: the scenario of a
// seed never depends on --bug.
import { Random } from "../sim/index.js";
import { CASES } from "./cases.js";
import { type Fault, type FaultKind, type FaultMix, generateFaults } from "./faults.js";
import { RAFT_FAILPOINTS } from "./raft-scenario.js";
import type { ClientKind, ClientPlan, ClusterPlan, Scenario, Timeline } from "./scenario.js";
import { SCENARIO_FORMAT, SCENARIO_VERSION } from "./scenario.js";

/** etcd's failpoints, by where they are (gofail names). */
export const FAILPOINTS = {
  raft: RAFT_FAILPOINTS,
  backend: [
    "beforeCommit",
    "afterCommit",
    "commitBeforePreCommitHook",
    "commitAfterPreCommitHook",
    "beforeStartDBTxn",
    "afterStartDBTxn",
    "beforeWritebackBuf",
    "afterWritebackBuf",
  ],
  compaction: [
    "compactBeforeCommitScheduledCompact",
    "compactAfterCommitScheduledCompact",
    "compactBeforeSetFinishedCompact",
    "compactAfterSetFinishedCompact",
    "compactBeforeCommitBatch",
    "compactAfterCommitBatch",
  ],
  defrag: ["defragBeforeCopy", "defragBeforeRename"],
  apply: ["applyBeforeOpenSnapshot", "beforeApplyOneConfChange", "beforeApplyOneEntryNormal"],
  watch: ["beforeSendWatchResponse", "beforeSyncWatchers"],
} as const;

export interface ProfileInfo {
  readonly name: string;
  readonly summary: string;
}

interface ProfileSpec extends ProfileInfo {
  /** Cluster sizes to draw from. */
  readonly members: readonly number[];
  readonly clients: (rng: Random, members: readonly string[]) => ClientPlan[];
  /** Fault kinds and their weight ceilings; each seed keeps a random subset. */
  readonly menu: FaultMix;
  readonly failpoints: readonly string[];
  readonly cluster: (rng: Random) => Partial<ClusterPlan>;
  /** Longer windows and slower disks than the defaults, for families that need them. */
  readonly faultShape?: { readonly maxDurationUs: number; readonly maxSlowDiskUs: number };
  /** Mean gaps between faults to draw from (default: 0.3, 0.7, 1.5 or 3 s). */
  readonly meanGapsUs?: readonly number[];
  /** How often a node fault strikes whoever leads (default a quarter). */
  readonly leaderRate?: number;
  /** Fault kinds drawn only when the cluster has one member. */
  readonly oneMemberOnly?: readonly FaultKind[];
  /** Fault kinds every seed of the profile has (the swarm draws the others). */
  readonly core?: readonly FaultKind[];
  /** Extra faults the family needs that the generic generator does not draw. */
  readonly extraFaults?: (rng: Random, s: { clients: readonly ClientPlan[]; timeline: Timeline }) => Fault[];
}

const S = 1_000_000;
const TRAFFIC_START_US = 500_000;
const FAULTS_START_US = 1_500_000;

const WITHIN_ASSUMPTIONS: FaultMix = {
  crash: 3,
  partition: 3,
  pause: 2,
  "clock-drift": 1,
  "wall-jump": 1,
  link: 2,
  clog: 1,
  "slow-disk": 2,
  failpoint: 3,
  "member-replace": 1,
  trigger: 2,
  "blackhole-until-snapshot": 1,
};

/** Client plans of one kind; `generateScenario` names them c1, c2... in order. */
function plans(
  rng: Random,
  kind: ClientKind,
  count: number,
  members: readonly string[],
  o: { keys: [number, number]; thinkUs: [number, number]; pinned?: number },
): ClientPlan[] {
  return Array.from({ length: count }, () => ({
    name: "",
    kind,
    endpoints: rng.chance(o.pinned ?? 0.3) ? [rng.pick(members)] : [],
    startUs: TRAFFIC_START_US + rng.int(0, 300_000),
    stopUs: Number.MAX_SAFE_INTEGER,
    thinkUs: rng.int(o.thinkUs[0], o.thinkUs[1] + 1),
    requestTimeoutUs: 2 * S,
    keys: rng.int(o.keys[0], o.keys[1] + 1),
  }));
}

/**
 * etcd clients; a share `createDelete` of them create and delete, a share `unique` of those
 * with unique keys; in a share `quiet` of the seeds none compacts (only triggers do).
 */
const etcdClients = (
  rng: Random,
  m: readonly string[],
  n: [number, number],
  createDelete = 0,
  o: { unique?: number; quiet?: number } = {},
) => {
  const noCompaction = (o.quiet ?? 0) > 0 && rng.chance(o.quiet ?? 0);
  return plans(rng, "etcd", rng.int(n[0], n[1] + 1), m, { keys: [4, 10], thinkUs: [2_000, 20_000] }).map(
    (c) => {
      const d: ClientPlan = noCompaction ? { ...c, noCompaction } : c;
      return rng.chance(createDelete)
        ? {
            ...d,
            mix: (o.unique ?? 0) > 0 && rng.chance(o.unique ?? 0) ? "unique-create-delete" : "create-delete",
          }
        : d;
    },
  );
};

export const PROFILES: readonly ProfileSpec[] = [
  {
    name: "etcd",
    summary: "etcd's robustness traffic on 3 or 5 members under every fault within etcd's assumptions",
    members: [3, 3, 3, 5],
    clients: (rng, m) => [
      // a third of the seeds run etcd's KeyValueHigh: 8 clients with no pause between requests
      ...(rng.chance(1 / 3)
        ? plans(rng, "etcd", 8, m, { keys: [4, 10], thinkUs: [0, 500] })
        : etcdClients(rng, m, [3, 6])),
      ...plans(rng, "watch", rng.int(0, 2), m, { keys: [1, 3], thinkUs: [100_000, 500_000] }),
    ],
    menu: WITHIN_ASSUMPTIONS,
    failpoints: [
      ...FAILPOINTS.raft,
      ...FAILPOINTS.backend,
      ...FAILPOINTS.compaction,
      ...FAILPOINTS.defrag,
      ...FAILPOINTS.apply,
    ],
    cluster: (rng) => ({
      snapshotCount: rng.pick([30, 100, 1000]),
      snapshotCatchUpEntries: rng.pick([10, 50, 500]),
      compactionBatchLimit: rng.pick([10, 100, 1000]),
      leaseCheckpointIntervalUs: rng.chance(0.3) ? 1 * S : 0,
    }),
  },
  {
    name: "kubernetes",
    summary:
      "Kubernetes traffic (optimistic concurrency, paginated lists, list-then-watch, compaction, TTL leases) on 3 members",
    members: [3],
    clients: (rng, m) => [
      ...plans(rng, "kubernetes", rng.int(3, 6), m, { keys: [5, 20], thinkUs: [2_000, 20_000] }),
      ...etcdClients(rng, m, [0, 1]),
    ],
    menu: { ...WITHIN_ASSUMPTIONS, "member-replace": 2 },
    failpoints: [...FAILPOINTS.raft, ...FAILPOINTS.backend, ...FAILPOINTS.compaction, ...FAILPOINTS.apply],
    cluster: (rng) => ({ snapshotCount: rng.pick([30, 100]), snapshotCatchUpEntries: rng.pick([10, 50]) }),
  },
  {
    name: "watch",
    summary:
      "watchers from past and future revisions, progress notifications, compaction and snapshots on 3 members",
    members: [3],
    clients: (rng, m) => [
      ...etcdClients(rng, m, [2, 4], 0.6, { unique: 0.5 }),
      ...plans(rng, "watch", rng.int(1, 3), m, { keys: [2, 6], thinkUs: [50_000, 400_000], pinned: 0.5 }),
      // robustness's watch traffic, one client on each member half the time
      ...(rng.chance(0.5)
        ? m.map((member) => ({
            ...(plans(rng, "watch", 1, m, { keys: [1, 1], thinkUs: [50_000, 200_000] })[0] as ClientPlan),
            endpoints: [member],
            mix: "short-lived",
          }))
        : []),
    ],
    menu: {
      crash: 2,
      partition: 2,
      pause: 1,
      "slow-disk": 1,
      failpoint: 3,
      trigger: 3,
      "blackhole-until-snapshot": 3,
      link: 1,
    },
    // the watch loops' stall points weigh more: a starved send or sync loop is this family's
    // trigger (#15220, #17529, #18089 were found with sleeps there)
    failpoints: [
      ...FAILPOINTS.watch,
      ...FAILPOINTS.watch,
      ...FAILPOINTS.watch,
      ...FAILPOINTS.compaction,
      ...FAILPOINTS.raft,
      "beforeWritebackBuf",
      "afterWritebackBuf",
    ],
    cluster: (rng) => ({
      snapshotCount: rng.pick([20, 50, 100]),
      snapshotCatchUpEntries: rng.pick([5, 20]),
      compactionBatchLimit: rng.pick([5, 50, 300]),
      progressNotifyIntervalUs: rng.pick([10_000, 100_000, 1 * S]),
    }),
  },
  {
    name: "lease",
    summary: "leases kept alive through any member while leaders stall, pause and change",
    members: [3],
    clients: (rng, m) => [
      ...plans(rng, "lease", rng.int(2, 4), m, { keys: [1, 3], thinkUs: [50_000, 500_000], pinned: 0.7 }),
      ...etcdClients(rng, m, [1, 2]),
    ],
    menu: { "slow-disk": 4, pause: 3, partition: 2, crash: 1, "clock-drift": 1, failpoint: 1 },
    failpoints: [...FAILPOINTS.raft],
    cluster: (rng) => ({ leaseCheckpointIntervalUs: rng.chance(0.3) ? 1 * S : 0 }),
    // a leader stalled past an election timeout and a lease TTL (#15247), among few faults
    faultShape: { maxDurationUs: 8 * S, maxSlowDiskUs: 8 * S },
    meanGapsUs: [1_500_000, 3_000_000, 5_000_000],
    leaderRate: 0.6,
    core: ["slow-disk"],
  },
  {
    name: "lock",
    summary: "Lock/Unlock contention and elections, with clients paused past their lease TTL",
    members: [3],
    clients: (rng, m) => [
      ...plans(rng, "lock", rng.int(2, 4), m, { keys: [1, 1], thinkUs: [10_000, 200_000] }),
      ...plans(rng, "election", rng.int(1, 3), m, { keys: [1, 1], thinkUs: [10_000, 200_000] }),
    ],
    menu: { pause: 2, crash: 1, partition: 2, "slow-disk": 1 },
    failpoints: [...FAILPOINTS.raft],
    cluster: () => ({}),
    // the lock family's fault: a client process paused past its session's TTL
    extraFaults: (rng, s) =>
      s.clients
        .filter(() => rng.chance(0.6))
        .map((c) => ({
          kind: "pause",
          node: c.name,
          atUs: rng.int(FAULTS_START_US, s.timeline.healUs - S),
          durationUs: rng.int(1 * S, 8 * S),
        })),
  },
  {
    name: "single-node",
    summary:
      "one member: crashes with lost or torn unsynced writes, crash points in the WAL, commit and compaction paths",
    members: [1],
    clients: (rng, m) => [
      ...etcdClients(rng, m, [2, 4], 0.6, { unique: 0.5, quiet: 0.5 }),
      // robustness's watch traffic: after a crash every watch comes back to the one member
      ...plans(rng, "watch", rng.int(1, 3), m, { keys: [1, 1], thinkUs: [50_000, 200_000] }).map((c) => ({
        ...c,
        mix: "short-lived",
      })),
    ],
    menu: { crash: 3, failpoint: 4, "slow-disk": 1, pause: 1, trigger: 2 },
    // the compaction path twice as often: a crash mid-compaction is this family's (#17780, #19179)
    failpoints: [
      ...FAILPOINTS.raft,
      ...FAILPOINTS.backend,
      ...FAILPOINTS.compaction,
      ...FAILPOINTS.compaction,
    ],
    cluster: (rng) => ({ compactionBatchLimit: rng.pick([5, 50, 300]), snapshotCount: rng.pick([50, 1000]) }),
  },
  {
    name: "backup",
    summary:
      "members next to etcd-backup-restore's sidecar (data-dir validation, full and delta snapshots, restores) on 1 or 3 members, with faults outside etcd's assumptions: corruption at rest, stale and wrong volumes, fsync lies",
    members: [1, 1, 3],
    clients: (rng, m) => etcdClients(rng, m, [2, 4], 0.3),
    menu: {
      crash: 2,
      stop: 2,
      corrupt: 4,
      "stale-volume": 3,
      "wrong-volume": 1,
      "fsync-lies": 2,
      partition: 1,
      pause: 1,
      "slow-disk": 1,
      trigger: 1,
    },
    // the validation compares revisions with the backup for one member only: a stale
    // volume or lost fsyncs on one of several members is raft's problem, not the sidecar's
    oneMemberOnly: ["stale-volume", "fsync-lies"],
    core: ["corrupt"],
    failpoints: [],
    cluster: (rng) => ({
      snapshotCount: rng.pick([50, 200]),
      backup: { snapshotPeriodUs: rng.pick([500_000, 1 * S, 2 * S]), deltasPerFull: rng.pick([0, 3, 10]) },
    }),
  },
];

/** `mixed` draws one of these per seed. */
const MIXED: readonly (readonly [string, number])[] = [
  ["etcd", 4],
  ["kubernetes", 2],
  ["watch", 2],
  ["lease", 1],
  ["lock", 1],
  ["single-node", 1],
];

export const PROFILE_NAMES: readonly string[] = [...PROFILES.map((p) => p.name), "mixed"];

export function profileList(): ProfileInfo[] {
  return [
    ...PROFILES.map((p) => ({ name: p.name, summary: p.summary })),
    { name: "mixed", summary: "one of the profiles above per seed, backup aside (the default)" },
  ];
}

function defaultCluster(members: number): ClusterPlan {
  return {
    members,
    tickUs: 100_000,
    electionTicks: 10,
    snapshotCount: 100,
    snapshotCatchUpEntries: 50,
    compactionBatchLimit: 1000,
    backendBatchIntervalUs: 100_000,
    progressNotifyIntervalUs: 600 * S,
    leaseCheckpointIntervalUs: 0,
    walSegmentBytes: 64 * 1024,
  };
}

/**
 * The profile a seed runs in: `mixed` picks one from the seed. With a fault case, a pick
 * the case cannot run in (clusters too small, or refused) is drawn again among the others.
 */
export function resolveProfile(seed: number, profile: string, caseName?: string): string {
  if (profile !== "mixed") return profile;
  const pick = (stream: string, choices: readonly (readonly [string, number])[]) =>
    new Random(String(seed)).fork(stream).weighted(choices);
  const fits = (name: string) => caseName === undefined || caseMismatch(caseName, name) === null;
  const first = pick("profile", MIXED);
  if (fits(first)) return first;
  return pick(
    "profile/for-case",
    MIXED.filter(([name]) => fits(name)),
  );
}

/** Why a fault case cannot run in a profile (null: it can; `mixed` always can). */
export function caseMismatch(caseName: string, profile: string): string | null {
  const c = CASES.find((x) => x.name === caseName);
  if (c?.notIn?.profiles.includes(profile))
    return `case ${caseName} does not run in profile ${profile}: ${c.notIn.why}`;
  const min = c?.minMembers ?? 1;
  const sizes = PROFILES.find((p) => p.name === profile)?.members;
  if (!sizes || sizes.some((n) => n >= min)) return null;
  return `case ${caseName} needs a cluster of ${min} members or more; profile ${profile} runs ${[...new Set(sizes)].join(" or ")}`;
}

/** The scenario of a seed. Depends on the seed, the profile and the case only. */
export function generateScenario(seed: number, profile: string, caseName?: string): Scenario {
  const pattern = caseName ? CASES.find((c) => c.name === caseName) : undefined;
  if (caseName && !pattern) throw new RangeError(`unknown case '${caseName}'`);
  const minMembers = pattern?.minMembers ?? 1;
  const name = resolveProfile(seed, profile, caseName);
  const spec = PROFILES.find((p) => p.name === name);
  if (!spec) throw new RangeError(`unknown profile '${profile}'`);
  const mismatch = caseName ? caseMismatch(caseName, name) : null;
  if (mismatch) throw new RangeError(mismatch);
  const allowed = spec.members.filter((n) => n >= minMembers);
  const root = new Random(String(seed)).fork(`scenario/${name}`);
  const drawn = root.fork("cluster").pick(spec.members);
  // a case on a profile of several sizes (backup: 1 or 3) runs the smallest that fits
  const members = drawn >= minMembers ? drawn : Math.min(...allowed);
  const names = Array.from({ length: members }, (_, i) => `m${i + 1}`);
  const cluster: ClusterPlan = { ...defaultCluster(members), ...spec.cluster(root.fork("config")) };
  const clients = spec.clients(root.fork("clients"), names).map((c, i) => ({ ...c, name: `c${i + 1}` }));
  const shape = root.fork("timeline");
  const healUs = shape.int(6, 12) * S;
  const timeline: Timeline = { healUs, trafficEndUs: healUs + 3 * S, livenessBoundUs: 10 * S };
  let faults: Fault[];
  if (pattern) faults = pattern.faults(names, FAULTS_START_US + S, healUs);
  else {
    // swarm: a random subset of the menu, each at a random weight
    const swarm = root.fork("swarm");
    const mix: FaultMix = {};
    for (const [kind, ceiling] of Object.entries(spec.menu) as [FaultKind, number][])
      if (
        (swarm.chance(0.6) || spec.core?.includes(kind)) &&
        !(members > 1 && spec.oneMemberOnly?.includes(kind))
      )
        mix[kind] = swarm.int(1, ceiling + 1);
    faults = generateFaults(root.fork("faults"), {
      members: names,
      startUs: FAULTS_START_US,
      endUs: healUs,
      meanGapUs: swarm.pick(spec.meanGapsUs ?? [300_000, 700_000, 1_500_000, 3_000_000]),
      mix,
      crashModes: ["keep", "lose", "prefix", "torn"],
      failpoints: spec.failpoints,
      maxDown: Math.floor((members - 1) / 2) || 1,
      roles: members > 1 ? (spec.leaderRate ?? 0.25) : 0,
      ...(spec.faultShape ?? {}),
    });
    if (spec.extraFaults) faults.push(...spec.extraFaults(root.fork("extra-faults"), { clients, timeline }));
    faults.sort((a, b) => a.atUs - b.atUs);
  }
  return {
    format: SCENARIO_FORMAT,
    version: SCENARIO_VERSION,
    seed,
    profile: name,
    ...(caseName ? { case: caseName } : {}),
    bugs: [],
    cluster,
    clients,
    faults,
    timeline,
  };
}
