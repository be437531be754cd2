// What the leader knows of each peer: match and next index, the replication state
// (probe, replicate, snapshot) with its window of in-flight appends, and votes and
// quorums. Follows etcd-io/raft's tracker/ and quorum/ packages (majority
// configurations only: etcd never uses joint consensus).
import { type ConfState, RaftPanic } from "./types.js";

export const ProgressState = { Probe: 0, Replicate: 1, Snapshot: 2 } as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];
export const PROGRESS_STATE_NAMES = ["probe", "replicate", "snapshot"];

/** A bounded window of in-flight MsgApp messages, by last index (a ring buffer). */
export class Inflights {
  private readonly buffer: Float64Array;
  private start = 0;
  count = 0;

  constructor(readonly size: number) {
    this.buffer = new Float64Array(size);
  }

  add(lastIndex: number): void {
    if (this.full()) throw new RaftPanic("cannot add into a full inflights");
    this.buffer[(this.start + this.count) % this.size] = lastIndex;
    this.count++;
  }

  /** Frees every in-flight message up to and including index `to`. */
  freeLE(to: number): void {
    while (this.count > 0 && (this.buffer[this.start] as number) <= to) {
      this.start = (this.start + 1) % this.size;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  full(): boolean {
    return this.count === this.size;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}

export class Progress {
  match = 0;
  next = 1;
  /** The highest commit index sent to the peer (to know whether an append can bump it). */
  sentCommit = 0;
  state: ProgressState = ProgressState.Probe;
  /** In Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from recently (reset at every CheckQuorum round). */
  recentActive = false;
  /** Probe: one append sent, waiting for its answer. Replicate: the window is full. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(maxInflight: number, isLearner: boolean) {
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      // A snapshot was sent: if it applied, the peer is at least at its index.
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
    this.sentCommit = snapshotIndex;
  }

  /** Accounts for an append of `entries` entries just sent. */
  sentEntries(entries: number): void {
    if (this.state === ProgressState.Replicate) {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === ProgressState.Probe && entries > 0) {
      this.msgAppFlowPaused = true;
    }
  }

  canBumpCommit(index: number): boolean {
    return index > this.sentCommit && this.sentCommit < this.next - 1;
  }

  sentCommitTo(commit: number): void {
    this.sentCommit = commit;
  }

  /** Moves match forward on an acknowledgement; false if it is stale. */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * Moves next back after a rejection of the append at `rejected`, to the follower's hint
   * `matchHint`. False if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
      case ProgressState.Replicate:
        return this.msgAppFlowPaused;
      default:
        return true;
    }
  }
}

export const VoteResult = { Pending: 0, Lost: 1, Won: 2 } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** The configuration (voters, learners), each peer's progress, and the votes of an election. */
export class ProgressTracker {
  voters: number[] = [];
  learners: number[] = [];
  readonly progress = new Map<number, Progress>();
  private votes = new Map<number, boolean>();
  /** Every id with a progress, sorted: visiting in id order keeps runs deterministic. */
  ids: number[] = [];
  /** committed()'s sort buffer, reused. */
  private matchScratch = new Float64Array(8);

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }

  isSingleton(): boolean {
    return this.voters.length === 1;
  }

  quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  /** The highest index held by a quorum of voters (infinite for an empty configuration). */
  committed(): number {
    const n = this.voters.length;
    if (n === 0) return Number.MAX_SAFE_INTEGER;
    // called on every append response: an insertion sort (descending) into a reused
    // buffer, where map + sort allocated two arrays each time
    let m = this.matchScratch;
    if (m.length < n) m = this.matchScratch = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = this.progress.get(this.voters[i] as number)?.match ?? 0;
      let j = i;
      while (j > 0 && (m[j - 1] as number) < v) {
        m[j] = m[j - 1] as number;
        j--;
      }
      m[j] = v;
    }
    return m[this.quorum() - 1] as number;
  }

  /** Whether a quorum of voters was recently active (CheckQuorum). */
  quorumActive(selfId: number): boolean {
    let active = 0;
    for (const id of this.voters) if (id === selfId || this.progress.get(id)?.recentActive) active++;
    return active >= this.quorum();
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  recordVote(id: number, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: this.voteResult(granted, rejected) };
  }

  /** The result of an ack count, as for a vote (ReadIndex confirmations use it). */
  voteResult(granted: number, rejected: number): VoteResult {
    if (this.voters.length === 0) return VoteResult.Won;
    const q = this.quorum();
    if (granted >= q) return VoteResult.Won;
    if (this.voters.length - rejected < q) return VoteResult.Lost;
    return VoteResult.Pending;
  }

  /** Counts how many voters are in `acks`. */
  countVoters(acks: ReadonlySet<number>): number {
    let n = 0;
    for (const id of this.voters) if (acks.has(id)) n++;
    return n;
  }

  isVoter(id: number): boolean {
    return this.voters.includes(id);
  }

  /** Rebuilds ids after a change. */
  private reindex(): void {
    this.ids = [...this.progress.keys()].sort((a, b) => a - b);
    this.voters.sort((a, b) => a - b);
    this.learners.sort((a, b) => a - b);
  }

  /** Adds or promotes a voter. A new peer starts recently active, so CheckQuorum spares it. */
  makeVoter(id: number, lastIndex: number): void {
    const pr = this.progress.get(id);
    if (pr) {
      pr.isLearner = false;
      this.learners = this.learners.filter((x) => x !== id);
      if (!this.voters.includes(id)) this.voters.push(id);
    } else {
      this.initProgress(id, lastIndex, false);
    }
    this.reindex();
  }

  makeLearner(id: number, lastIndex: number): void {
    const pr = this.progress.get(id);
    if (pr?.isLearner) return;
    if (pr) {
      // demoting a voter: etcd never does this (it refuses the request); keep raft's rule
      pr.isLearner = true;
      this.voters = this.voters.filter((x) => x !== id);
      this.learners.push(id);
    } else {
      this.initProgress(id, lastIndex, true);
    }
    this.reindex();
  }

  remove(id: number): void {
    this.progress.delete(id);
    this.voters = this.voters.filter((x) => x !== id);
    this.learners = this.learners.filter((x) => x !== id);
    this.reindex();
  }

  private initProgress(id: number, lastIndex: number, isLearner: boolean): void {
    const pr = new Progress(this.maxInflight, isLearner);
    pr.next = Math.max(lastIndex, 1);
    pr.recentActive = true;
    this.progress.set(id, pr);
    (isLearner ? this.learners : this.voters).push(id);
  }

  /** Sets the configuration from a snapshot or at boot. */
  restore(cs: ConfState, lastIndex: number): void {
    this.progress.clear();
    this.voters = [];
    this.learners = [];
    for (const id of cs.voters) this.initProgress(id, lastIndex, false);
    for (const id of cs.learners) this.initProgress(id, lastIndex, true);
    this.reindex();
  }
}
