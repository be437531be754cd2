// MVCC over the backend (etcd's server/storage/mvcc): every write transaction takes one
// main revision, each change in it a sub revision; the `key` bucket stores every
// revision of every key (a tombstone marks a delete); an in-memory key index of
// generations maps keys to their revisions. Compaction persists its schedule, compacts
// the index, deletes old revisions in batches, then persists that it finished; a crash
// in between resumes it at restart.
import { type KeyValue, withoutValue } from "../client/history.js";
import { type Backend, BackendCorrupt, isStoredKv, type StoredKv } from "./backend.js";

import { Errors } from "./errors.js";

/** A revision: main (the transaction) and sub (the change inside it). */
export interface Rev {
  readonly main: number;
  readonly sub: number;
}

/** The `key` bucket's key for a revision: ordered by (main, sub, tombstone). */
export function revKey(main: number, sub: number, tombstone: boolean): number {
  return (main * 1024 + sub) * 2 + (tombstone ? 1 : 0);
}

export function revOfKey(k: number): { rev: Rev; tombstone: boolean } {
  const tombstone = k % 2 === 1;
  const x = (k - (tombstone ? 1 : 0)) / 2;
  return { rev: { main: Math.floor(x / 1024), sub: x % 1024 }, tombstone };
}

interface Generation {
  ver: number;
  created: Rev;
  revs: Rev[];
}

/** One key's history (etcd's keyIndex): generations, each ending in a tombstone but the last. */
export class KeyIndex {
  modified: Rev = { main: 0, sub: 0 };
  generations: Generation[] = [];

  constructor(readonly key: string) {}

  put(rev: Rev): void {
    if (this.generations.length === 0)
      this.generations.push({ ver: 0, created: { main: 0, sub: 0 }, revs: [] });
    const g = this.generations[this.generations.length - 1] as Generation;
    if (g.revs.length === 0) g.created = rev;
    g.revs.push(rev);
    g.ver++;
    this.modified = rev;
  }

  /** A delete: the revision ends the current generation. */
  tombstone(rev: Rev): boolean {
    const n = this.generations.length;
    const g = n > 0 ? this.generations[n - 1] : undefined;
    if (!g || g.revs.length === 0) return false;
    this.put(rev);
    this.generations.push({ ver: 0, created: { main: 0, sub: 0 }, revs: [] });
    return true;
  }

  /** Restores a key whose first revision left is its tombstone (etcd PR #19188). */
  restoreTombstone(rev: Rev): void {
    this.generations = [
      { ver: 1, created: rev, revs: [rev] },
      { ver: 0, created: { main: 0, sub: 0 }, revs: [] },
    ];
    this.modified = rev;
  }

  isEmpty(): boolean {
    return this.generations.length === 1 && (this.generations[0] as Generation).revs.length === 0;
  }

  /** The generation holding `atRev`, or null (etcd's findGeneration). */
  private findGeneration(atRev: number): Generation | null {
    const last = this.generations.length - 1;
    for (let i = last; i >= 0; i--) {
      const g = this.generations[i] as Generation;
      if (g.revs.length === 0) continue;
      // a closed generation ends with its tombstone: at or after it, the key is gone
      if (i !== last && (g.revs[g.revs.length - 1] as Rev).main <= atRev) return null;
      if ((g.revs[0] as Rev).main <= atRev) return g;
    }
    return null;
  }

  /**
   * The revision visible at `atRev` (etcd's keyIndex.get, which also gives the creation
   * revision and version: the store reads those from the stored key-value instead).
   */
  modifiedAt(atRev: number): Rev | null {
    const g = this.findGeneration(atRev);
    if (!g) return null;
    for (let i = g.revs.length - 1; i >= 0; i--) {
      const r = g.revs[i] as Rev;
      if (r.main <= atRev) return r;
    }
    return null;
  }

  /**
   * Drops revisions below `atRev` that are superseded, adding the ones to keep to
   * `available` (etcd's keyIndex.compact). With `dropTombstoneAtRev`, a tombstone exactly
   * at `atRev` is dropped too (etcd before PR #18274, the planted #18089).
   */
  compact(atRev: number, available: Set<string>, dropTombstoneAtRev: boolean): void {
    if (this.isEmpty()) return;
    let genIdx = 0;
    while (genIdx < this.generations.length - 1) {
      const g = this.generations[genIdx] as Generation;
      const tomb = (g.revs[g.revs.length - 1] as Rev).main;
      if (tomb > atRev) break;
      // etcd keeps a tombstone at exactly atRev: a watch from atRev must see the delete
      if (tomb === atRev && !dropTombstoneAtRev) break;
      genIdx++;
    }
    const g = this.generations[genIdx] as Generation;
    let keepFrom = -1;
    for (let i = g.revs.length - 1; i >= 0; i--) {
      const r = g.revs[i] as Rev;
      if (r.main <= atRev) {
        available.add(`${r.main}.${r.sub}`);
        keepFrom = i;
        break;
      }
    }
    if (g.revs.length > 0) {
      if (keepFrom > 0) g.revs = g.revs.slice(keepFrom);
      // a generation left with only its tombstone goes (unless that tombstone is at atRev)
      const only = g.revs[0] as Rev;
      if (
        g.revs.length === 1 &&
        genIdx !== this.generations.length - 1 &&
        (only.main < atRev || dropTombstoneAtRev)
      ) {
        available.delete(`${only.main}.${only.sub}`);
        genIdx++;
      }
    }
    this.generations = this.generations.slice(genIdx);
  }

  /** Every revision this key still has (for hashes and tests). */
  revisions(): Rev[] {
    return this.generations.flatMap((g) => g.revs);
  }
}

export interface MvccBugs {
  /** #18089: compaction drops a tombstone exactly at the compaction revision. */
  readonly dropTombstoneAtRev: boolean;
  /** #19179: restore skips a tombstone that is a key's only revision left. */
  readonly restoreSkipsLoneTombstone: boolean;
  /** #17780: restore computes the current revision from the last key only. */
  readonly restoreIgnoresCompactRev: boolean;
}

/** What the store needs from its server: failpoints, timers, a commit, and watchers to tell. */
export interface MvccHost {
  failpoint(name: string): void;
  setTimer(delayUs: number, label: string, fn: () => void): void;
  /** Commits the backend now and calls `done` once durable (etcd's ForceCommit). */
  forceCommit(done?: () => void): void;
  /** A write transaction ended at `rev` with these changes (for the watchable store). */
  notify(rev: number, changes: readonly Change[]): void;
  /** The store found itself inconsistent: etcd logs Fatal and the member exits. */
  fatal(reason: string): never;
}

/** One change in a write transaction, as watchers get it. */
export interface Change {
  readonly type: "PUT" | "DELETE";
  readonly kv: KeyValue;
}

export interface RangeOptions {
  readonly rev?: number;
  readonly limit?: number;
  readonly countOnly?: boolean;
  readonly keysOnly?: boolean;
}

export interface RangeResult {
  readonly kvs: KeyValue[];
  readonly count: number;
  /** The revision the range was read at. */
  readonly rev: number;
}

export interface CompactionConfig {
  /** Revisions deleted per batch (etcd's --experimental-compaction-batch-limit). */
  readonly batchLimit: number;
  /** Pause between batches (etcd's CompactionSleepInterval). */
  readonly batchIntervalUs: number;
}

const META_SCHEDULED = "scheduledCompactRev";
const META_FINISHED = "finishedCompactRev";

export function inKeyRange(key: string, from: string, end: string | undefined): boolean {
  if (end === undefined || end === "") return key === from;
  if (end === "\0") return key >= from;
  return key >= from && key < end;
}

export class Mvcc {
  currentRev = 1;
  compactMainRev = -1;
  /** Key index: key -> history; `sortedKeys` for ranges. */
  private readonly index = new Map<string, KeyIndex>();
  private sortedKeys: string[] = [];
  private sortedDirty = false;
  /** Compactions not yet finished, in order (etcd runs them one at a time). */
  private compacting = false;
  private readonly compactQueue: (() => void)[] = [];

  constructor(
    public backend: Backend,
    private readonly host: MvccHost,
    private readonly bugs: MvccBugs,
    private readonly compaction: CompactionConfig,
  ) {}

  // ---- the key index --------------------------------------------------------------------

  private keyIndex(key: string, create: boolean): KeyIndex | undefined {
    let ki = this.index.get(key);
    if (!ki && create) {
      ki = new KeyIndex(key);
      this.index.set(key, ki);
      const n = this.sortedKeys.length;
      if (!this.sortedDirty && (n === 0 || (this.sortedKeys[n - 1] as string) < key))
        this.sortedKeys.push(key);
      else this.sortedDirty = true;
    }
    return ki;
  }

  private keysInRange(from: string, end: string | undefined): string[] {
    if (end === undefined || end === "") return this.index.has(from) ? [from] : [];
    if (this.sortedDirty) {
      this.sortedKeys = [...this.index.keys()].sort();
      this.sortedDirty = false;
    }
    const keys = this.sortedKeys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((keys[mid] as string) < from) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < keys.length; i++) {
      const k = keys[i] as string;
      if (!inKeyRange(k, from, end)) break;
      out.push(k);
    }
    return out;
  }

  // ---- reads ----------------------------------------------------------------------------

  /**
   * A range at `rev` (0: the current revision), etcd's rangeKeys. Errors with etcd's
   * compacted / future revision errors.
   */
  range(key: string, end: string | undefined, o: RangeOptions = {}, atRev = this.currentRev, write = false) {
    const rev = o.rev && o.rev > 0 ? o.rev : atRev;
    if (rev > atRev) return Errors.futureRevision;
    if (rev < this.compactMainRev) return Errors.compacted; // kvstore_txn.go rangeKeys: strictly below
    const limit = o.limit ?? 0;
    const kvs: KeyValue[] = [];
    let count = 0;
    // one key (most reads and every compare): no list of keys
    const keys = end === undefined || end === "" ? null : this.keysInRange(key, end);
    const n = keys ? keys.length : 1;
    for (let i = 0; i < n; i++) {
      const k = keys ? (keys[i] as string) : key;
      const at = this.index.get(k)?.modifiedAt(rev);
      if (!at) continue;
      count++;
      if (o.countOnly || (limit > 0 && kvs.length >= limit)) continue;
      const stored = this.backend.get("key", revKey(at.main, at.sub, false), write) as StoredKv | undefined;
      // etcd's rangeKeys: "range failed to find revision pair" is Fatal
      if (!stored) this.host.fatal(`range failed to find revision pair ${at.main}.${at.sub} of ${k}`);
      kvs.push(o.keysOnly ? withoutValue(stored) : stored);
    }
    return { kvs, count, rev } satisfies RangeResult;
  }

  /** The revisions stored in (from, to], for the watch catch-up: (key, type, kv) per change. */
  history(fromMain: number, toMain: number, limit = 0): { rev: Rev; change: Change }[] {
    const rows = this.backend.range("key", revKey(fromMain, 0, false), revKey(toMain + 1, 0, false), limit);
    return rows.map(([k, v]) => {
      const { rev, tombstone } = revOfKey(k as number);
      // rows read from disk were checked by restore(): no check on this watch path
      const kv = v as StoredKv;
      return { rev, change: { type: tombstone ? "DELETE" : "PUT", kv } };
    });
  }

  // ---- writes ---------------------------------------------------------------------------

  /** Starts a write transaction (etcd's storeTxnWrite). Call `end()` when done. */
  write(): WriteTxn {
    return new WriteTxn(this, this.currentRev);
  }

  /** @internal applies a finished write transaction (its changes at revision `main`). */
  commitTxn(changes: Change[], main: number): void {
    if (changes.length === 0) return;
    this.currentRev++;
    for (let sub = 0; sub < changes.length; sub++) {
      const c = changes[sub] as Change;
      const rev: Rev = { main, sub };
      const ki = this.keyIndex(c.kv.key, true) as KeyIndex;
      if (c.type === "DELETE") ki.tombstone(rev);
      else ki.put(rev);
    }
    this.host.notify(this.currentRev, changes);
  }

  /** @internal the key index entry of a key, if any. */
  keyAt(key: string, rev: number): Rev | null {
    return this.index.get(key)?.modifiedAt(rev) ?? null;
  }

  /** @internal keys in a range. */
  keys(from: string, end: string | undefined): string[] {
    return this.keysInRange(from, end);
  }

  // ---- compaction -------------------------------------------------------------------------

  /**
   * Compacts at `rev` (etcd's store.Compact): checks, persists the schedule
   * (compactBeforeCommitScheduledCompact / compactAfterCommitScheduledCompact), then runs
   * the batches in the background. `done` runs when the compaction finished.
   */
  compact(rev: number, done?: () => void): { error: typeof Errors.compacted } | { error: null } {
    if (rev <= this.compactMainRev) return { error: Errors.compacted };
    if (rev > this.currentRev) return { error: Errors.futureRevision };
    const prev = this.compactMainRev;
    this.compactMainRev = rev;
    this.backend.put("meta", META_SCHEDULED, rev);
    this.backend.unlock();
    this.host.failpoint("compactBeforeCommitScheduledCompact");
    this.host.forceCommit();
    this.host.failpoint("compactAfterCommitScheduledCompact");
    this.enqueueCompaction(rev, prev, done);
    return { error: null };
  }

  private enqueueCompaction(rev: number, prev: number, done?: () => void): void {
    this.compactQueue.push(() => this.runCompaction(rev, prev, done));
    if (!this.compacting) this.nextCompaction();
  }

  private nextCompaction(): void {
    const job = this.compactQueue.shift();
    this.compacting = job !== undefined;
    if (job) this.host.setTimer(0, "mvcc.compact", job);
  }

  /** The index compaction, then deletion in batches (etcd's scheduleCompaction). */
  private runCompaction(rev: number, _prev: number, done?: () => void): void {
    const keep = new Set<string>();
    for (const [key, ki] of [...this.index]) {
      ki.compact(rev, keep, this.bugs.dropTombstoneAtRev);
      if (ki.isEmpty()) {
        this.index.delete(key);
        this.sortedDirty = true;
      }
    }
    let from = revKey(0, 0, false);
    const end = revKey(rev + 1, 0, false);
    const batch = () => {
      const rows = this.backend.range("key", from, end, this.compaction.batchLimit);
      for (const [k] of rows) {
        const { rev: r } = revOfKey(k as number);
        if (!keep.has(`${r.main}.${r.sub}`)) this.backend.delete("key", k);
      }
      if (rows.length < this.compaction.batchLimit) {
        this.host.failpoint("compactBeforeSetFinishedCompact");
        this.backend.put("meta", META_FINISHED, rev);
        this.backend.unlock();
        this.host.failpoint("compactAfterSetFinishedCompact");
        done?.();
        this.nextCompaction();
        return;
      }
      this.backend.unlock();
      from = (rows[rows.length - 1] as [number, unknown])[0] + 1;
      this.host.failpoint("compactBeforeCommitBatch");
      this.host.forceCommit();
      this.host.failpoint("compactAfterCommitBatch");
      this.host.setTimer(this.compaction.batchIntervalUs, "mvcc.compact-batch", () =>
        this.backend.whenIdle(batch),
      );
    };
    this.backend.whenIdle(batch);
  }

  // ---- restore ----------------------------------------------------------------------------

  /**
   * Rebuilds the index and counters from the backend (etcd's store.restore), and resumes
   * a compaction that was scheduled but not finished.
   */
  restore(): void {
    this.index.clear();
    this.sortedKeys = [];
    this.sortedDirty = false;
    const finished = (this.backend.get("meta", META_FINISHED) as number | undefined) ?? -1;
    const scheduled = (this.backend.get("meta", META_SCHEDULED) as number | undefined) ?? 0;
    this.compactMainRev = finished;
    let last = 1;
    for (const [k, v] of this.backend.range("key", revKey(1, 0, false), Number.MAX_SAFE_INTEGER)) {
      const { rev, tombstone } = revOfKey(k as number);
      const kv = v as StoredKv;
      // flipped bits in a data page reach here unnoticed (bbolt has no page checksums);
      // a record that is no longer a key-value is a bad page: etcd panics
      if (!isStoredKv(kv)) throw new BackendCorrupt(`db: bad key-value at revision ${rev.main}`);
      last = Math.max(last, rev.main);
      const existing = this.index.get(kv.key);
      if (tombstone) {
        if (existing && !existing.isEmpty()) existing.tombstone(rev);
        else if (!this.bugs.restoreSkipsLoneTombstone) {
          // the tombstone is the only revision left: keep it, or a resumed compaction
          // would drop it and a watch from its revision would miss the delete (#19179)
          (this.keyIndex(kv.key, true) as KeyIndex).restoreTombstone(rev);
        }
        continue;
      }
      const ki = this.keyIndex(kv.key, true) as KeyIndex;
      if (ki.isEmpty() || ki.generations.length === 0) {
        // etcd's keyIndex.restore: the generation starts at the key's create revision
        ki.generations = [{ ver: kv.version - 1, created: { main: kv.createRevision, sub: 0 }, revs: [] }];
      }
      ki.put(rev);
      const g = ki.generations[ki.generations.length - 1] as Generation;
      g.ver = kv.version;
    }
    this.currentRev = last;
    if (!this.bugs.restoreIgnoresCompactRev) {
      // a compaction may have removed the newest revision (a tombstone at the compaction
      // revision, before PR #18274): the revision must not go back (#17780)
      if (this.currentRev < this.compactMainRev) this.currentRev = this.compactMainRev;
      if (this.currentRev < scheduled) this.currentRev = scheduled;
    }
    if (scheduled > this.compactMainRev) {
      const prev = this.compactMainRev;
      this.compactMainRev = scheduled;
      this.enqueueCompaction(scheduled, prev);
    }
  }

  // ---- hash -------------------------------------------------------------------------------

  /**
   * HashKV at `rev` (etcd's hashByRev): a hash of every revision in (compactRev, rev]
   * that is kept, plus the compact revision. Members that agree give equal hashes.
   */
  hashKV(
    rev: number,
  ): { hash: number; compactRevision: number; revision: number } | typeof Errors.futureRevision {
    const at = rev > 0 ? rev : this.currentRev;
    if (at > this.currentRev) return Errors.futureRevision;
    let h = 0x811c9dc5;
    const mix = (x: number) => {
      h = Math.imul(h ^ (x & 0xffff), 0x01000193);
      h = Math.imul(h ^ (x >>> 16), 0x01000193);
    };
    const rows = this.backend.range(
      "key",
      revKey(this.compactMainRev + 1, 0, false),
      revKey(at + 1, 0, false),
    );
    for (const [k, v] of rows) {
      const kv = v as StoredKv;
      mix(k as number);
      for (let i = 0; i < kv.key.length; i++) mix(kv.key.charCodeAt(i));
      for (let i = 0; i < kv.value.length; i++) mix(kv.value.charCodeAt(i));
      mix(kv.lease);
    }
    mix(this.compactMainRev);
    return { hash: h >>> 0, compactRevision: this.compactMainRev, revision: at };
  }
}

/** A write transaction: its own changes are visible to its reads. */
export class WriteTxn {
  /** In order; change i is at revision (beginRev + 1, i), a tombstone if a DELETE. */
  private readonly changes: Change[] = [];

  constructor(
    private readonly store: Mvcc,
    readonly beginRev: number,
  ) {}

  private get nextMain(): number {
    return this.beginRev + 1;
  }

  /** The key's latest state inside this txn: undefined if the txn did not touch it. */
  private pending(key: string): StoredKv | null | undefined {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      const c = this.changes[i] as Change;
      if (c.kv.key === key) return c.type === "PUT" ? (c.kv as StoredKv) : null;
    }
    return undefined;
  }

  /** Reads see this txn's own writes (etcd reads at beginRev + 1 once it changed something). */
  range(key: string, end: string | undefined, o: RangeOptions = {}) {
    if (o.rev && o.rev > 0) return this.store.range(key, end, o, this.beginRev, true);
    if (this.changes.length === 0) return this.store.range(key, end, o, this.beginRev, true);
    const base = this.store.range(key, end, { ...o, limit: 0, countOnly: false }, this.beginRev, true);
    if (!("kvs" in base)) return base;
    const byKey = new Map(base.kvs.map((kv) => [kv.key, kv]));
    // in order: the last change to a key is what it holds now
    for (const c of this.changes) {
      if (!inKeyRange(c.kv.key, key, end)) continue;
      if (c.type === "DELETE") byKey.delete(c.kv.key);
      else byKey.set(c.kv.key, c.kv);
    }
    const all = [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const limit = o.limit ?? 0;
    const shown = o.countOnly ? [] : limit > 0 ? all.slice(0, limit) : all;
    return {
      kvs: o.keysOnly ? shown.map(withoutValue) : shown,
      count: all.length,
      rev: this.nextMain,
    } satisfies RangeResult;
  }

  private current(key: string): StoredKv | null {
    const own = this.pending(key);
    if (own !== undefined) return own;
    const hit = this.store.keyAt(key, this.beginRev);
    if (!hit) return null;
    return (
      (this.store.backend.get("key", revKey(hit.main, hit.sub, false), true) as StoredKv | undefined) ?? null
    );
  }

  put(key: string, value: string, lease: number): { prev: StoredKv | null } {
    const prev = this.current(key);
    const main = this.nextMain;
    const kv: StoredKv = {
      key,
      value,
      createRevision: prev ? prev.createRevision : main,
      modRevision: main,
      version: prev ? prev.version + 1 : 1,
      lease,
    };
    this.store.backend.put("key", revKey(main, this.changes.length, false), kv);
    this.changes.push({ type: "PUT", kv });
    return { prev };
  }

  /** Deletes every key in [key, end); returns what was deleted. */
  deleteRange(key: string, end: string | undefined): StoredKv[] {
    const keys = new Set(
      this.store.keys(key, end).filter((k) => this.store.keyAt(k, this.beginRev) !== null),
    );
    // in order: the last change to a key is what it holds now
    for (const c of this.changes) {
      if (c.type === "DELETE") keys.delete(c.kv.key);
      else if (inKeyRange(c.kv.key, key, end)) keys.add(c.kv.key);
    }
    const deleted: StoredKv[] = [];
    for (const k of [...keys].sort()) {
      const prev = this.current(k);
      if (!prev) continue;
      const main = this.nextMain;
      const tomb: StoredKv = {
        key: k,
        value: "",
        createRevision: 0,
        modRevision: main,
        version: 0,
        lease: 0,
      };
      this.store.backend.put("key", revKey(main, this.changes.length, true), tomb);
      this.changes.push({
        type: "DELETE",
        kv: { key: k, value: "", createRevision: 0, modRevision: main, version: 0, lease: 0 },
      });
      deleted.push(prev);
    }
    return deleted;
  }

  /** Whether this txn changed anything (then it takes a revision). */
  get changed(): boolean {
    return this.changes.length > 0;
  }

  /** The revision the store is at after this txn. */
  get rev(): number {
    return this.changes.length > 0 ? this.nextMain : this.beginRev;
  }

  /** Ends the txn: the index and revision move, watchers are told, the backend unlocks. */
  end(): void {
    this.store.commitTxn(this.changes, this.nextMain);
    this.store.backend.unlock();
  }
}
