// The registry of planted bugs: etcd's (and Raft's) historical mistakes, each a switch
// read by the model at the place of the real mistake, off by default. The correct
// model never turns one on. `etcd-dst bugs` lists them (../shared/CLI.md).

export interface PlantedBug {
  readonly name: string;
  /** The etcd issue (or paper) the mistake comes from. */
  readonly etcdIssue: string;
  readonly summary: string;
  /** The profile in which fuzzing finds it. */
  readonly profile: string;
  /** Checker ids expected to detect it. */
  readonly detectors: readonly string[];
}

export const BUGS: readonly PlantedBug[] = [
  {
    name: "ci-persisted-before-apply",
    etcdIssue: "#13766",
    summary:
      "the consistent index of an entry is set before its writes; a periodic backend commit persists it first, and a crash makes replay skip the entry",
    profile: "etcd",
    detectors: ["agreement", "linearizability"],
  },
  {
    name: "single-node-ack-before-fsync",
    etcdIssue: "#14370",
    summary:
      "a one-member cluster applies and answers before the WAL fsync; a crash loses an acknowledged write and its revision is reused",
    profile: "single-node",
    detectors: ["durability", "linearizability", "revision-rollback"],
  },
  {
    name: "defrag-commit-without-ci",
    etcdIssue: "#14685",
    summary:
      "defrag's commit skips the consistent-index hook; data is durable but the index is not, so replay applies entries twice",
    profile: "etcd",
    detectors: ["agreement", "linearizability"],
  },
  {
    name: "progress-notify-ahead-of-events",
    etcdIssue: "#15220",
    summary:
      "a requested progress notification carries the current revision while the watcher is still unsynced; older events arrive after it",
    profile: "watch",
    detectors: ["watch.bookmarkable"],
  },
  {
    name: "watch-minrev-stale-on-restore",
    etcdIssue: "#15271",
    summary:
      "synced watchers' minRev is not advanced as events go out; a snapshot restore makes catch-up replay old events",
    profile: "watch",
    detectors: ["watch.ordered", "watch.unique"],
  },
  {
    name: "txbuf-dedupe-duplicate-event",
    etcdIssue: "#17247",
    summary:
      "the read-buffer writeback dedupe always keeps one entry too many, so a revision sits in the buffer twice and catch-up sends it twice",
    profile: "kubernetes",
    detectors: ["watch.unique"],
  },
  {
    name: "slow-watcher-compaction-gap",
    etcdIssue: "#17529",
    summary:
      "a slow watcher whose compaction cancel cannot be sent (channel full) still receives later events, leaving a silent gap",
    profile: "watch",
    detectors: ["watch.reliable"],
  },
  {
    name: "compaction-revision-rollback",
    etcdIssue: "#17780",
    summary:
      "compacting at a tombstone at the latest revision removes the top key; a crash before the finished mark makes restore compute a lower revision",
    profile: "single-node",
    detectors: ["linearizability", "revision-rollback"],
  },
  {
    name: "compaction-drops-tombstone-at-rev",
    etcdIssue: "#18089",
    summary:
      "a tombstone exactly at the compaction revision is removed, so a watch from that revision misses the delete",
    profile: "watch",
    detectors: ["watch.reliable", "watch.resumable"],
  },
  {
    name: "restore-ignores-lone-tombstone",
    etcdIssue: "#19179",
    summary:
      "after a crash mid multi-batch compaction, the key index rebuild skips a tombstone that is a key's only revision; a watch from the compaction revision misses the delete",
    // robustness reproduced it on one member (every watch comes back to the restarted one)
    profile: "single-node",
    detectors: ["watch.reliable", "watch.resumable"],
  },
  {
    name: "txn-range-stripped-on-followers",
    etcdIssue: "#18667",
    summary:
      "members not serving the client strip a txn's range ops; a range at a compacted revision fails the txn on one member only, and replicas diverge",
    profile: "etcd",
    detectors: ["agreement"],
  },
  {
    name: "future-rev-watch-old-events",
    etcdIssue: "#20221",
    summary:
      "a watch from a revision ahead of a lagging member gets old events after a snapshot restore, or progress notifications below its start",
    profile: "watch",
    detectors: ["watch.bookmarkable", "watch.resumable"],
  },
  {
    name: "readindex-reused-request-id",
    etcdIssue: "#20418",
    summary:
      "ReadIndex retries reuse the request context; after a pause a stale acknowledgement confirms too low an index and a read is stale",
    profile: "etcd",
    detectors: ["linearizability", "stale-read"],
  },
  {
    name: "old-leader-revokes-leases",
    etcdIssue: "#15247",
    summary:
      "a stalled old leader's lessor stays primary and revokes leases that are kept alive through the new leader",
    profile: "lease",
    detectors: ["lease.keepalive"],
  },
  {
    name: "lock-without-lease-recheck",
    etcdIssue: "#11456 (Jepsen 2020)",
    summary:
      "Lock returns after the previous holder leaves without rechecking its own lease, so two clients hold the lock",
    profile: "lock",
    detectors: ["lock.ownership"],
  },
  {
    name: "lease-read-under-clock-skew",
    etcdIssue: "Raft thesis \u00a76.4",
    summary:
      "linearizable reads are served on a leader lease without a heartbeat round; a drifting clock lets a deposed leader serve stale reads",
    profile: "etcd",
    detectors: ["linearizability", "stale-read"],
  },
  {
    name: "vote-granted-before-persist",
    etcdIssue: "Raft paper, Figure 2",
    summary:
      "a vote is sent before the hard state is fsynced; a crash that loses it lets the node vote twice in one term",
    profile: "etcd",
    detectors: ["raft.election-safety", "raft.persisted-state"],
  },
  {
    name: "backup-skips-revision-check",
    etcdIssue: "etcd-backup-restore",
    summary:
      "the data-dir validation skips the revision check against the latest backup: etcd starts on a stale volume and the sidecar uploads its older snapshot over newer ones",
    profile: "backup",
    detectors: ["backup.stale-upload", "backup.start-on-bad-data"],
  },
  {
    name: "validation-skips-content-check-after-crash",
    etcdIssue: "etcd-backup-restore",
    summary:
      "the data-dir validation takes the sanity path after an abnormal exit: corruption at rest goes unchecked and etcd starts on it (a corrupt db is served; a corrupt WAL makes etcd refuse to start, over and over, where a restore was due)",
    profile: "backup",
    detectors: ["backup.start-on-bad-data", "liveness"],
  },
];

export const BUG_NAMES: readonly string[] = BUGS.map((b) => b.name);

/** The set of planted bugs switched on for a run. */
export class Bugs {
  private readonly on: ReadonlySet<string>;

  constructor(names: readonly string[] = []) {
    for (const n of names) if (!BUG_NAMES.includes(n)) throw new RangeError(`unknown bug '${n}'`);
    this.on = new Set(names);
  }

  has(name: string): boolean {
    return this.on.has(name);
  }

  get names(): string[] {
    return [...this.on].sort();
  }

  static readonly none = new Bugs();
}
