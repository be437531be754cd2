// Raft's log: stable entries in a MemoryStorage (what the node has persisted and the
// application mirrors in memory), unstable entries not yet persisted, and the commit
// and apply positions. Follows etcd-io/raft's storage.go, log_unstable.go and log.go.
import {
  type ConfState,
  EMPTY_HARD_STATE,
  type Entry,
  EntryType,
  type HardState,
  RaftPanic,
  type Snapshot,
} from "./types.js";

/** term() results below zero: the index is behind the first index (compacted) or past the last. */
export const TERM_COMPACTED = -1;
export const TERM_UNAVAILABLE = -2;

/** Roughly an entry's encoded size, for message and apply limits. */
export function entrySize(e: Entry): number {
  return e.data.length + 16;
}

/** Takes entries from the front while their total size stays within `maxBytes`; always at least one. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0] as Entry);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n] as Entry);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

function dummyEntry(index: number, term: number): Entry {
  return { term, index, type: EntryType.Normal, data: new Uint8Array(0) };
}

/**
 * The stable part of the log, in memory: ents[0] is a dummy entry standing for the
 * snapshot (its index and term), so the first real entry is at snapshot index + 1.
 */
export class MemoryStorage {
  hardState: HardState = EMPTY_HARD_STATE;
  snapshot: Snapshot;
  private ents: Entry[];

  constructor(snapshot?: Snapshot) {
    this.snapshot = snapshot ?? {
      metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
      data: new Uint8Array(0),
    };
    this.ents = [dummyEntry(this.snapshot.metadata.index, this.snapshot.metadata.term)];
  }

  get confState(): ConfState {
    return this.snapshot.metadata.confState;
  }

  private get offset(): number {
    return (this.ents[0] as Entry).index;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  term(i: number): number {
    const offset = this.offset;
    if (i < offset) return TERM_COMPACTED;
    if (i - offset >= this.ents.length) return TERM_UNAVAILABLE;
    return (this.ents[i - offset] as Entry).term;
  }

  /** Entries [lo, hi), or null when lo is compacted. */
  entries(lo: number, hi: number): Entry[] | null {
    const offset = this.offset;
    if (lo <= offset) return null;
    if (hi > this.lastIndex() + 1)
      throw new RaftPanic(`entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    return this.ents.slice(lo - offset, hi - offset);
  }

  /** Replaces everything with a newer snapshot. Returns false if the snapshot is not newer. */
  applySnapshot(snap: Snapshot): boolean {
    if (snap.metadata.index <= this.snapshot.metadata.index) return false;
    this.snapshot = snap;
    this.ents = [dummyEntry(snap.metadata.index, snap.metadata.term)];
    return true;
  }

  /** Records a snapshot of the application at applied index `i`. */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot | null {
    if (i <= this.snapshot.metadata.index) return null;
    if (i > this.lastIndex())
      throw new RaftPanic(`snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snapshot = { metadata: { index: i, term: this.term(i), confState }, data };
    return this.snapshot;
  }

  /** Discards entries up to `compactIndex` (which stays as the dummy). */
  compact(compactIndex: number): boolean {
    const offset = this.offset;
    if (compactIndex <= offset) return false;
    if (compactIndex > this.lastIndex())
      throw new RaftPanic(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const i = compactIndex - offset;
    const head = this.ents[i] as Entry;
    this.ents = [dummyEntry(head.index, head.term), ...this.ents.slice(i + 1)];
    return true;
  }

  /** Appends persisted entries, replacing any conflicting suffix. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = (entries[0] as Entry).index + entries.length - 1;
    if (last < first) return; // all compacted already
    let ents = entries;
    if (first > (entries[0] as Entry).index) ents = entries.slice(first - (entries[0] as Entry).index);
    const at = (ents[0] as Entry).index - this.offset;
    if (at > this.ents.length)
      throw new RaftPanic(
        `missing log entry [last: ${this.lastIndex()}, append at: ${(ents[0] as Entry).index}]`,
      );
    if (at < this.ents.length) this.ents.length = at;
    for (const e of ents) this.ents.push(e);
  }
}

/** Entries (and a snapshot) the node has not yet persisted. */
class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: number;
  /** Entries below this index were handed to the application for persisting. */
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  maybeFirstIndex(): number {
    return this.snapshot ? this.snapshot.metadata.index + 1 : -1;
  }

  maybeLastIndex(): number {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : -1;
  }

  maybeTerm(i: number): number {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return -1;
    }
    const last = this.maybeLastIndex();
    if (last < 0 || i > last) return -1;
    return (this.entries[i - this.offset] as Entry).term;
  }

  nextEntries(): Entry[] {
    const start = this.offsetInProgress - this.offset;
    return start >= this.entries.length ? [] : this.entries.slice(start);
  }

  nextSnapshot(): Snapshot | null {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : null;
  }

  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  /** Entries up to (i, t) are persisted, unless they were overwritten meanwhile. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt < 0 || i < this.offset) return;
    if (gt === t) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
      this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const fromIndex = (ents[0] as Entry).index;
    if (fromIndex === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (fromIndex <= this.offset) {
      // replacing everything unstable (and possibly part of what is stable)
      this.entries = [...ents];
      this.offset = fromIndex;
      this.offsetInProgress = this.offset;
    } else {
      this.entries = this.entries.slice(0, fromIndex - this.offset);
      for (const e of ents) this.entries.push(e);
      this.offsetInProgress = Math.min(this.offsetInProgress, fromIndex);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: MemoryStorage;
  readonly unstable: Unstable;
  committed: number;
  /** Highest index handed to the application to apply; applied is what it finished. */
  applying: number;
  applied: number;

  constructor(storage: MemoryStorage, applied = 0) {
    this.storage = storage;
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
    if (applied > 0) this.appliedTo(applied);
  }

  firstIndex(): number {
    const i = this.unstable.maybeFirstIndex();
    return i >= 0 ? i : this.storage.firstIndex();
  }

  lastIndex(): number {
    const i = this.unstable.maybeLastIndex();
    return i >= 0 ? i : this.storage.lastIndex();
  }

  /** The term of entry i, or TERM_COMPACTED / TERM_UNAVAILABLE. */
  term(i: number): number {
    // The valid term range is [firstIndex-1, lastIndex]; firstIndex-1 is the snapshot's.
    if (i + 1 < this.firstIndex()) return TERM_COMPACTED;
    if (i > this.lastIndex()) return TERM_UNAVAILABLE;
    const t = this.unstable.maybeTerm(i);
    return t >= 0 ? t : this.storage.term(i);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    if (t < 0) throw new RaftPanic(`unexpected error getting the last term (${t})`);
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    const ours = this.term(i);
    return ours >= 0 && ours === t;
  }

  /**
   * The follower's side of MsgApp: if the entry before `ents` matches (index, logTerm),
   * appends, replacing conflicting entries, and commits up to `committed`. Returns the
   * last index of the new entries, or -1 on a mismatch.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed)
        throw new RaftPanic(`entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = (ents[0] as Entry).index - 1;
    if (after < this.committed)
      throw new RaftPanic(`after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** The index of the first entry that conflicts with ours (or is new), or 0 if all match. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term (0 when unknown).
   * Used on both sides of a rejection to skip back a term at a time.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      const ours = this.term(index);
      if (ours < 0) return [index, 0];
      if (ours <= term) return [index, ours];
    }
    return [0, 0];
  }

  /** Whether a candidate's log (last index and term) is at least as up to date as ours. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      if (this.lastIndex() < toCommit) {
        throw new RaftPanic(
          `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`,
        );
      }
      this.committed = toCommit;
    }
  }

  /** Commits `maxIndex` if it is from `term` (only entries of the current term are counted). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new RaftPanic(
        `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
      );
    }
    this.applied = i;
    this.applying = Math.max(this.applying, i);
  }

  acceptApplying(i: number): void {
    this.applying = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  hasNextUnstableEnts(): boolean {
    return this.unstable.offsetInProgress < this.unstable.offset + this.unstable.entries.length;
  }

  nextUnstableEnts(): Entry[] {
    return this.unstable.nextEntries();
  }

  nextUnstableSnapshot(): Snapshot | null {
    return this.unstable.nextSnapshot();
  }

  hasNextOrInProgressSnapshot(): boolean {
    return this.unstable.snapshot !== null;
  }

  acceptUnstable(): void {
    this.unstable.acceptInProgress();
  }

  /**
   * The highest index the application may apply. With `allowUnstable`, entries not yet
   * persisted locally may be applied: a committed entry is durable on a quorum.
   */
  private maxAppliableIndex(allowUnstable: boolean): number {
    let hi = this.committed;
    if (!allowUnstable) hi = Math.min(hi, this.unstable.offset - 1);
    return hi;
  }

  hasNextCommittedEnts(allowUnstable: boolean): boolean {
    if (this.hasNextOrInProgressSnapshot()) return false;
    return this.applying < this.maxAppliableIndex(allowUnstable);
  }

  nextCommittedEnts(allowUnstable: boolean, maxBytes: number): Entry[] {
    if (this.hasNextOrInProgressSnapshot()) return [];
    const lo = this.applying + 1;
    const hi = this.maxAppliableIndex(allowUnstable) + 1;
    if (lo >= hi) return [];
    const ents = this.slice(lo, hi, maxBytes);
    if (ents === null) throw new RaftPanic(`unexpected error when getting unapplied entries [${lo}, ${hi})`);
    return ents;
  }

  /** Entries [lo, hi) within `maxBytes` (at least one), or null when lo is compacted. */
  slice(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] | null {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) return null;
    const last = this.lastIndex();
    if (hi > last + 1) throw new RaftPanic(`slice[${lo},${hi}) out of bound [${first},${last}]`);
    let ents: Entry[] = [];
    const uo = this.unstable.offset;
    if (lo < uo) {
      const stored = this.storage.entries(lo, Math.min(hi, uo));
      if (stored === null) return null;
      ents = stored;
      if (stored.length < Math.min(hi, uo) - lo) return limitSize(ents, maxBytes);
    }
    if (hi > uo) {
      const u = this.unstable.slice(Math.max(lo, uo), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxBytes);
  }

  /** Entries from i to the end, within `maxBytes`; null when i is compacted. */
  entries(i: number, maxBytes: number): Entry[] | null {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot;
  }

  /** Replaces the log with a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Every entry from the first index on (tests and invariant checks). */
  allEntries(): Entry[] {
    return this.slice(this.firstIndex(), this.lastIndex() + 1) ?? [];
  }
}
