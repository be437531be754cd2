// The backend: a model of bbolt under etcd's batch transaction (server/storage/backend).
//
// - Buckets of sorted keys. The `key` bucket is keyed by revision (numbers), the others
//   by strings.
// - Writes go into a batch transaction; when a write transaction ends, its writes are
//   written back into the read buffer, so readers see them before they are committed.
// - Every `batchIntervalUs` (100 ms) or `batchLimit` writes (10000), the batch commits:
//   the pre-commit hook runs (etcd writes the consistent index there), the changes are
//   appended to the db file as one record and fsynced, and the read buffer is reset.
//   A crash loses everything since the last durable commit; WAL replay makes it up.
// - The db file is a log of commit records, each with a CRC, so that a commit is atomic
//   as bbolt's meta-page switch makes it: a torn last record is ignored at open. The
//   header (length, its complement) stands for bbolt's page headers: a broken one is
//   corruption and the member refuses to start. The body's CRC is checked only on the
//   last record (to tell a torn commit) and by `check` (bbolt's tx.Check): bbolt keeps
//   no checksum of its data pages, so flipped bits there are served silently.
// - Defragmentation rewrites the db compactly into `db.tmp`, fsyncs it and renames it
//   over `db` (failpoints defragBeforeCopy, defragBeforeRename).
//
// The read buffer keeps etcd's shape (arrays per bucket with a `used` count, their backing
// storage reused after a reset), because a planted bug (#17247) lives in its writeback.
import { type Disk, slabBytes } from "../../sim/index.js";
import type { KeyValue } from "../client/history.js";
import { crc32c, decode, encode, putU32 } from "../codec.js";

export const BUCKETS = ["key", "meta", "lease", "members", "members_removed", "alarm", "cluster"] as const;
export type Bucket = (typeof BUCKETS)[number];
export type Key = number | string;

/** Backend errors that stop the member from starting (etcd: DataDirectoryCorrupt). */
export class BackendCorrupt extends Error {}

/** A sorted table of one bucket, in the committed (bbolt) state. */
class Table {
  private readonly map = new Map<Key, unknown>();
  private sorted: Key[] = [];
  private dirty = false;

  get size(): number {
    return this.map.size;
  }

  get(k: Key): unknown {
    return this.map.get(k);
  }

  put(k: Key, v: unknown): void {
    if (!this.map.has(k)) {
      // (no index -1 when empty: V8 would look "-1" up by name, and keep doing so here)
      const n = this.sorted.length;
      if (!this.dirty && (n === 0 || (this.sorted[n - 1] as Key) < k)) this.sorted.push(k);
      else this.dirty = true;
    }
    this.map.set(k, v);
  }

  delete(k: Key): void {
    if (this.map.delete(k)) this.dirty = true;
  }

  keys(): Key[] {
    if (this.dirty) {
      this.sorted = [...this.map.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.dirty = false;
    }
    return this.sorted;
  }

  /** Keys in [from, to), ascending, at most `limit` (0: all). */
  range(from: Key, to: Key, limit: number): Key[] {
    const keys = this.keys();
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((keys[mid] as Key) < from) lo = mid + 1;
      else hi = mid;
    }
    const out: Key[] = [];
    for (let i = lo; i < keys.length && (keys[i] as Key) < to; i++) {
      out.push(keys[i] as Key);
      if (limit > 0 && out.length >= limit) break;
    }
    return out;
  }
}

/**
 * One bucket of the read buffer: parallel arrays with a `used` count, like etcd's
 * bucketBuffer. After a reset only `used` goes back to 0: the arrays keep their old
 * contents, as a Go slice's backing array does.
 */
export class BucketBuffer {
  keys: Key[] = [];
  values: unknown[] = [];
  used = 0;

  add(k: Key, v: unknown): void {
    this.keys[this.used] = k;
    this.values[this.used] = v;
    this.used++;
  }

  /**
   * Sorts the used part by key (stable), as etcd does after merging a write buffer: an
   * insertion sort in place (a buffer holds one transaction's or one batch's keys, and
   * arrives nearly sorted).
   */
  sort(): void {
    const keys = this.keys;
    const values = this.values;
    for (let i = 1; i < this.used; i++) {
      const k = keys[i] as Key;
      const v = values[i];
      let j = i;
      while (j > 0 && (keys[j - 1] as Key) > k) {
        keys[j] = keys[j - 1] as Key;
        values[j] = values[j - 1];
        j--;
      }
      keys[j] = k;
      values[j] = v;
    }
  }

  /**
   * Keeps the newest value of each key. `plantedOffByOne` is etcd #17247: the dedupe
   * miscounted and always grew the buffer by one, so its last entry sat in it twice.
   */
  dedupe(plantedOffByOne: boolean): void {
    if (this.used > 1) {
      this.sort();
      let w = 0;
      for (let r = 1; r < this.used; r++) {
        if (this.keys[r] !== this.keys[w]) w++;
        this.keys[w] = this.keys[r] as Key;
        this.values[w] = this.values[r];
      }
      this.used = w + 1;
    }
    if (plantedOffByOne && this.used > 0)
      this.add(this.keys[this.used - 1] as Key, this.values[this.used - 1]);
  }

  /** Entries with keys in [from, to), in buffer order. */
  range(from: Key, to: Key): [Key, unknown][] {
    const out: [Key, unknown][] = [];
    for (let i = 0; i < this.used; i++) {
      const k = this.keys[i] as Key;
      if (k >= from && k < to) out.push([k, this.values[i]]);
    }
    return out;
  }
}

/** A change in the batch transaction; value undefined means delete. */
interface Change {
  readonly bucket: Bucket;
  readonly key: Key;
  readonly value: unknown;
}

export interface BackendOptions {
  readonly path: string;
  readonly batchIntervalUs: number;
  readonly batchLimit: number;
}

/** Hooks the backend calls out to: time, failpoints, and the pre-commit hook. */
export interface BackendHost {
  setTimer(delayUs: number, label: string, fn: () => void): void;
  failpoint(name: string): void;
  /** Runs inside the commit, before the changes are written (etcd saves the consistent index here). */
  preCommit(tx: BackendTx): void;
  /** An fsync failed: etcd panics. */
  fatal(reason: string): never;
  /** Planted bug #17247: the writeback dedupe keeps one stale entry too many. */
  readonly dedupeOffByOne: boolean;
}

/** Write access inside the batch transaction. */
export interface BackendTx {
  put(bucket: Bucket, key: Key, value: unknown): void;
  delete(bucket: Bucket, key: Key): void;
}

export class Backend implements BackendTx {
  private readonly tables = new Map<Bucket, Table>();
  /** Changes since the last commit (the open bbolt write transaction). */
  private batch: Change[] = [];
  /** Changes of the write transaction under way. */
  private txn: Change[] = [];
  /** etcd's txWriteBuffer: puts per bucket, kept between transactions (etcd's reset rules). */
  private readonly writeBuffers = new Map<Bucket, BucketBuffer>();
  /** etcd's txReadBuffer: puts of finished transactions since the last commit. */
  readonly readBuffer = new Map<Bucket, BucketBuffer>();
  private timerArmed = false;
  /** Commits written, and commits known durable. */
  commits = 0;
  durableCommits = 0;
  private inFlight = 0;
  private defragging = false;
  private readonly idleWaiters: (() => void)[] = [];
  /** Commits asked for during a defrag, run once it is done. */
  private readonly afterDefrag: (() => void)[] = [];

  private constructor(
    private readonly disk: Disk,
    private readonly options: BackendOptions,
    private readonly host: BackendHost,
  ) {
    for (const b of BUCKETS) this.tables.set(b, new Table());
  }

  /**
   * Opens the db file (creating it if absent) and replays its commit records. A torn
   * last record is dropped. Older records are read as bbolt reads its pages: without a
   * checksum, so flipped bits in them are served as they are (only `check` notices);
   * a record that no longer decodes throws BackendCorrupt (bbolt panics on a bad page).
   */
  static open(disk: Disk, options: BackendOptions, host: BackendHost): Backend {
    const b = new Backend(disk, options, host);
    if (!disk.exists(options.path)) {
      disk.create(options.path);
      return b;
    }
    const bytes = disk.read(options.path);
    const end = readDb(bytes, false, (bucket, key, value) => {
      const t = b.tables.get(bucket) as Table;
      if (value === null) t.delete(key);
      else t.put(key, value);
    });
    // Drop the torn tail, so the next commit appends after the last good record.
    if (end < bytes.length) disk.truncate(options.path, end);
    return b;
  }

  /**
   * bbolt's tx.Check, as etcd-backup-restore's full validation runs it: every record
   * intact. Returns what is wrong, or null.
   */
  static check(bytes: Uint8Array): string | null {
    try {
      readDb(bytes, true, () => {});
      return null;
    } catch (e) {
      if (e instanceof BackendCorrupt) return e.message;
      throw e;
    }
  }

  /** A db file holding exactly `tables` (a restore writes one). */
  static serialize(tables: ReadonlyMap<Bucket, ReadonlyMap<Key, unknown>>): Uint8Array {
    const w = records.begin();
    for (const [bucket, t] of tables) for (const [k, v] of t) w.row(bucket, k, v);
    return frame(w.finish(true));
  }

  /** The buckets of a db file's bytes, read as `open` reads them (throws BackendCorrupt). */
  static contents(bytes: Uint8Array): Map<Bucket, Map<Key, unknown>> {
    const out = new Map<Bucket, Map<Key, unknown>>(BUCKETS.map((b) => [b, new Map()]));
    readDb(bytes, false, (bucket, key, value) => {
      const t = out.get(bucket) as Map<Key, unknown>;
      if (value === null) t.delete(key);
      else t.set(key, value);
    });
    return out;
  }

  /** Restores a database received from the leader (etcd's `<index>.snap.db`). */
  static fromSnapshot(disk: Disk, options: BackendOptions, host: BackendHost, snapshot: Uint8Array): Backend {
    disk.create(options.path);
    disk.append(options.path, snapshot);
    return Backend.open(disk, options, host);
  }

  // ---- reads --------------------------------------------------------------------------

  /**
   * A value as a reader sees it (the last commit plus the read buffer's puts; uncommitted
   * deletes are not visible to readers in etcd), or, with `write`, as the write
   * transaction sees it (every change since the last commit).
   */
  get(bucket: Bucket, key: Key, write = false): unknown {
    const txn = this.txn;
    for (let i = txn.length - 1; i >= 0; i--) {
      const c = txn[i] as Change;
      if (c.key === key && c.bucket === bucket) return c.value;
    }
    if (write) {
      const batch = this.batch;
      for (let i = batch.length - 1; i >= 0; i--) {
        const c = batch[i] as Change;
        if (c.key === key && c.bucket === bucket) return c.value;
      }
    } else {
      const buf = this.readBuffer.get(bucket);
      if (buf) for (let i = buf.used - 1; i >= 0; i--) if (buf.keys[i] === key) return buf.values[i];
    }
    return (this.tables.get(bucket) as Table).get(key);
  }

  /**
   * Entries in [from, to) as a reader sees them (etcd's UnsafeRange on the read
   * transaction): the committed table, then the read buffer's entries. For the `key`
   * bucket, whose keys only grow, etcd appends the buffer without deduplicating, so an
   * entry in both shows twice, as it did in #17247.
   */
  range(bucket: Bucket, from: Key, to: Key, limit = 0): [Key, unknown][] {
    const table = this.tables.get(bucket) as Table;
    const out: [Key, unknown][] = [];
    for (const k of table.range(from, to, 0)) out.push([k, table.get(k)]);
    const buf = this.readBuffer.get(bucket);
    if (buf && buf.used > 0) {
      const extra = buf.range(from, to);
      if (bucket === "key") {
        for (const e of extra) out.push(e);
      } else {
        for (const [k, v] of extra) {
          const i = out.findIndex(([x]) => x === k);
          if (i >= 0) out[i] = [k, v];
          else out.push([k, v]);
        }
        out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      }
    }
    return limit > 0 ? out.slice(0, limit) : out;
  }

  // ---- writes -------------------------------------------------------------------------

  put(bucket: Bucket, key: Key, value: unknown): void {
    this.txn.push({ bucket, key, value });
    let wb = this.writeBuffers.get(bucket);
    if (!wb) {
      wb = new BucketBuffer();
      this.writeBuffers.set(bucket, wb);
    }
    wb.add(key, value);
  }

  delete(bucket: Bucket, key: Key): void {
    // Deletes are not buffered for readers: they see them at the next commit.
    this.txn.push({ bucket, key, value: undefined });
  }

  /**
   * Ends a write transaction (etcd's batchTxBuffered.Unlock): its changes join the batch
   * and its puts are written back into the read buffer (failpoints beforeWritebackBuf,
   * afterWritebackBuf). Commits when the batch is large enough, and arms the periodic
   * commit.
   */
  unlock(): void {
    if (this.txn.length === 0) return;
    for (const c of this.txn) this.batch.push(c);
    this.txn = [];
    this.host.failpoint("beforeWritebackBuf");
    this.writeback();
    this.host.failpoint("afterWritebackBuf");
    if (this.batch.length >= this.options.batchLimit) this.commit();
  }

  /** etcd's txWriteBuffer.writeback, then its reset. */
  private writeback(): void {
    // (deleting the entry being visited is safe in a Map iteration: no copies per txn)
    for (const [bucket, wb] of this.writeBuffers) {
      const rb = this.readBuffer.get(bucket);
      if (!rb) {
        // The read buffer lacks the bucket: the write buffer becomes it. etcd dedupes
        // non-key buckets here; the planted #17247 deduped every bucket, off by one.
        if (this.host.dedupeOffByOne) wb.dedupe(true);
        else if (bucket !== "key") wb.dedupe(false);
        this.readBuffer.set(bucket, wb);
        this.writeBuffers.delete(bucket);
        continue;
      }
      for (let i = 0; i < wb.used; i++) rb.add(wb.keys[i] as Key, wb.values[i]);
      if (bucket !== "key") rb.dedupe(false);
    }
    for (const [bucket, wb] of this.writeBuffers) {
      if (wb.used === 0) this.writeBuffers.delete(bucket);
      wb.used = 0;
    }
  }

  /**
   * Starts etcd's backend loop: a commit every batch interval, whether or not requests
   * came (the pre-commit hook writes the consistent index each time).
   */
  startTicker(): void {
    if (this.timerArmed) return;
    this.timerArmed = true;
    const tick = () => {
      // bbolt commits one at a time: a tick during a commit's fsync waits for the next;
      // defrag holds the batch lock throughout, so no commit slips in
      if (this.inFlight === 0 && !this.defragging) this.commit();
      this.host.setTimer(this.options.batchIntervalUs, "backend.commit", tick);
    };
    this.host.setTimer(this.options.batchIntervalUs, "backend.commit", tick);
  }

  /**
   * Commits the batch (etcd's batchTxBuffered.commit): the pre-commit hook, then the
   * record and an fsync. `withHook: false` is defrag's path, which in etcd 3.5.0–3.5.5
   * skipped the hook (the planted bug #14685).
   */
  commit(withHook = true, done?: () => void): void {
    if (this.defragging) {
      // defrag holds the batch lock: a commit asked for meanwhile (a snapshot's) waits
      this.afterDefrag.push(() => this.commit(withHook, done));
      return;
    }
    this.host.failpoint("beforeCommit");
    if (withHook) {
      this.host.failpoint("commitBeforePreCommitHook");
      this.host.preCommit(this);
      this.host.failpoint("commitAfterPreCommitHook");
    }
    // the hook wrote through the transaction: its changes join the batch (and its puts
    // stay in the write buffer until the next writeback, as in etcd)
    for (const c of this.txn) this.batch.push(c);
    this.txn = [];
    const changes = dropRepeats(this.batch);
    this.batch = [];
    for (const c of changes) {
      const t = this.tables.get(c.bucket) as Table;
      if (c.value === undefined) t.delete(c.key);
      else t.put(c.key, c.value);
    }
    // etcd's txReadBuffer.reset: buckets that stayed empty go, the rest are emptied
    for (const [bucket, rb] of [...this.readBuffer]) {
      if (rb.used === 0) this.readBuffer.delete(bucket);
      rb.used = 0;
    }
    if (changes.length > 0) {
      const w = records.begin();
      for (const c of changes) w.row(c.bucket, c.key, c.value === undefined ? null : c.value);
      this.disk.append(this.options.path, frame(w.finish(false)), true);
      this.commits++;
      this.inFlight++;
      this.disk.fsync(this.options.path, (err) => {
        if (err) this.host.fatal(`failed to commit the backend: ${err.message}`);
        this.inFlight--;
        this.durableCommits++;
        done?.();
        if (this.inFlight === 0) this.wakeIdle();
      });
    } else {
      done?.();
    }
    this.host.failpoint("beforeStartDBTxn");
    this.host.failpoint("afterStartDBTxn");
    this.host.failpoint("afterCommit");
  }

  /** Whether a commit's fsync is still under way. */
  get syncing(): boolean {
    return this.inFlight > 0;
  }

  /**
   * Runs `fn` once no commit is under way. etcd holds the batch transaction's lock through
   * bbolt's commit and its fsync, so writers (apply, compaction) wait for a slow disk.
   */
  whenIdle(fn: () => void): void {
    if (this.inFlight === 0 && !this.defragging) fn();
    else this.idleWaiters.push(fn);
  }

  private wakeIdle(): void {
    const ready = this.idleWaiters.splice(0);
    for (const fn of ready) fn();
  }

  /** The whole committed database as bytes (what the leader sends in a snapshot). */
  snapshot(): Uint8Array {
    const w = records.begin();
    for (const [bucket, t] of this.tables) for (const k of t.keys()) w.row(bucket, k, t.get(k));
    return frame(w.finish(true));
  }

  /**
   * Defragments: commits the batch (skipping the pre-commit hook when `skipHook`, the
   * planted bug #14685), writes a compact copy to `db.tmp`, fsyncs it and renames it
   * over the db. Calls `done` when the new file is in place.
   */
  defrag(skipHook: boolean, done: () => void): void {
    this.commit(!skipHook);
    // from here to the rename etcd holds the batch transaction's lock: writers (apply,
    // compaction batches) and commits wait, or their changes would go to the file being
    // replaced (a compaction batch deleted during a defrag came back after it)
    this.defragging = true;
    this.host.failpoint("defragBeforeCopy");
    const tmp = `${this.options.path}.tmp`;
    this.disk.create(tmp);
    this.disk.append(tmp, this.snapshot());
    this.disk.fsync(tmp, (err) => {
      if (err) this.host.fatal(`defrag failed: ${err.message}`);
      this.host.failpoint("defragBeforeRename");
      this.disk.rename(tmp, this.options.path);
      const dir = this.options.path.slice(0, this.options.path.lastIndexOf("/"));
      this.disk.fsyncDir(dir, () => {
        this.defragging = false;
        for (const fn of this.afterDefrag.splice(0)) fn();
        done();
        if (this.inFlight === 0) this.wakeIdle();
      });
    });
  }

  /** Size of the db file in bytes (etcd's dbSize). */
  get sizeBytes(): number {
    return this.disk.exists(this.options.path) ? this.disk.size(this.options.path) : 0;
  }

  /** Entries committed in a bucket (for tests and hashes). */
  tableSize(bucket: Bucket): number {
    return (this.tables.get(bucket) as Table).size;
  }
}

/** The last change of each (bucket, key): a commit record needs no more. */
function dropRepeats(changes: readonly Change[]): Change[] {
  // a map per bucket: keys stay numbers (a string per change cost a number-to-string each)
  const last = new Map<Bucket, Map<Key, number>>();
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i] as Change;
    let m = last.get(c.bucket);
    if (m === undefined) last.set(c.bucket, (m = new Map()));
    m.set(c.key, i);
  }
  return changes.filter((c, i) => last.get(c.bucket)?.get(c.key) === i);
}

const HEADER_BYTES = 12; // u32 length, u32 its complement, u32 CRC-32C of the body

// A record's body: rows of (bucket, key, value), each
//   [u8 bucket][u8 key tag][key][u8 value tag][value]
// a key is an f64 (KEY_NUMBER) or a length-prefixed UTF-8 string (KEY_STRING); a value is
// absent (ROW_DELETE), a key-value laid out field by field (ROW_KV: the `key` bucket's
// rows, nearly all of them) or anything else in msgpack (ROW_OTHER). A layout of our own,
// written once per commit by every member: msgpack took most of a commit's time.
const KEY_NUMBER = 0;
const KEY_STRING = 1;
const ROW_DELETE = 0;
const ROW_KV = 1;
const ROW_OTHER = 2;

/** What the `key` bucket holds at a revision: etcd's mvccpb.KeyValue, as a client sees it. */
export type StoredKv = KeyValue;

export function isStoredKv(kv: unknown): kv is StoredKv {
  const x = kv as Record<string, unknown>;
  return (
    typeof x === "object" &&
    x !== null &&
    typeof x.key === "string" &&
    typeof x.value === "string" &&
    Number.isSafeInteger(x.createRevision) &&
    Number.isSafeInteger(x.modRevision) &&
    Number.isSafeInteger(x.version) &&
    Number.isSafeInteger(x.lease)
  );
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/** Writes one record at a time into a growing scratch buffer, after HEADER_BYTES of room. */
class RecordWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  private at = 0;

  begin(): this {
    this.at = HEADER_BYTES;
    return this;
  }

  row(bucket: Bucket, key: Key, value: unknown): void {
    this.room(2);
    this.buf[this.at++] = BUCKETS.indexOf(bucket);
    if (typeof key === "number") {
      this.buf[this.at++] = KEY_NUMBER;
      this.f64(key);
    } else {
      this.buf[this.at++] = KEY_STRING;
      this.str(key);
    }
    this.room(1);
    if (value === null) this.buf[this.at++] = ROW_DELETE;
    else if (bucket === "key" && isStoredKv(value)) {
      this.buf[this.at++] = ROW_KV;
      this.str(value.key);
      this.str(value.value);
      this.f64(value.createRevision);
      this.f64(value.modRevision);
      this.f64(value.version);
      this.f64(value.lease);
    } else {
      this.buf[this.at++] = ROW_OTHER;
      this.bytes(encode(value));
    }
  }

  /** The record (header room and body); `kept` gives it its own buffer, else a slab's. */
  finish(kept: boolean): Uint8Array {
    const out = kept ? new Uint8Array(this.at) : slabBytes(this.at);
    out.set(this.buf.subarray(0, this.at));
    return out;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.at + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.at));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }

  private f64(x: number): void {
    this.room(8);
    this.view.setFloat64(this.at, x);
    this.at += 8;
  }

  private str(x: string): void {
    const n = x.length;
    this.room(4 + n);
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = x.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      this.buf[this.at + 4 + i] = c;
    }
    if (ascii) {
      putU32(this.buf, this.at, n);
      this.at += 4 + n;
    } else this.bytes(utf8.encode(x));
  }

  private bytes(b: Uint8Array): void {
    this.room(4 + b.length);
    putU32(this.buf, this.at, b.length);
    this.buf.set(b, this.at + 4);
    this.at += 4 + b.length;
  }
}

const records = new RecordWriter();

/** Calls `apply` for each row of a record's body; anything that does not parse is corrupt. */
function readRows(
  body: Uint8Array,
  at: number,
  apply: (bucket: Bucket, key: Key, value: unknown) => void,
): void {
  const view = new DataView(body.buffer, body.byteOffset, body.length);
  let p = 0;
  const bad = (what: string): never => {
    throw new BackendCorrupt(`db: ${what} at offset ${at}`);
  };
  const need = (n: number) => {
    if (p + n > body.length) bad("unreadable record");
  };
  const f64 = () => {
    need(8);
    const x = view.getFloat64(p);
    p += 8;
    return x;
  };
  const bytes = () => {
    need(4);
    const n = view.getUint32(p);
    need(4 + n);
    const b = body.subarray(p + 4, p + 4 + n);
    p += 4 + n;
    return b;
  };
  const str = () => utf8d.decode(bytes());
  while (p < body.length) {
    need(2);
    const bucket = BUCKETS[body[p] as number] ?? bad("bad page");
    const keyTag = body[p + 1];
    p += 2;
    const key = keyTag === KEY_NUMBER ? f64() : keyTag === KEY_STRING ? str() : bad("bad key");
    need(1);
    const tag = body[p++];
    let value: unknown;
    if (tag === ROW_DELETE) value = null;
    else if (tag === ROW_KV)
      value = {
        key: str(),
        value: str(),
        createRevision: f64(),
        modRevision: f64(),
        version: f64(),
        lease: f64(),
      } satisfies StoredKv;
    else if (tag === ROW_OTHER) {
      try {
        value = decode<unknown>(bytes());
      } catch (e) {
        if (e instanceof BackendCorrupt) throw e;
        bad("unreadable record");
      }
    } else bad("unreadable record");
    apply(bucket, key, value);
  }
}

/** Fills in the header of a record whose body follows HEADER_BYTES of room (RecordWriter). */
function frame(record: Uint8Array): Uint8Array {
  const length = record.length - HEADER_BYTES;
  putU32(record, 0, length);
  putU32(record, 4, ~length >>> 0);
  putU32(record, 8, crc32c(0, record, HEADER_BYTES));
  return record;
}

/**
 * Reads the commit records of a db file, calling `apply` for each change in order, and
 * returns where the good records end (a torn last record is left out). `verify` checks
 * every record's CRC; without it only the last one is checked (to tell a torn commit).
 */
function readDb(
  bytes: Uint8Array,
  verify: boolean,
  apply: (bucket: Bucket, key: Key, value: unknown) => void,
): number {
  let off = 0;
  while (off < bytes.length) {
    if (off + HEADER_BYTES > bytes.length) break; // torn header at the end
    const view = new DataView(bytes.buffer, bytes.byteOffset + off);
    const len = view.getUint32(0);
    if (view.getUint32(4) !== ~len >>> 0) throw new BackendCorrupt(`db: bad page header at offset ${off}`);
    const crc = view.getUint32(8);
    const end = off + HEADER_BYTES + len;
    if (end > bytes.length) break; // torn record at the end
    const body = bytes.subarray(off + HEADER_BYTES, end);
    const last = end >= bytes.length;
    if ((verify || last) && crc32c(0, body) !== crc) {
      // Opening, a bad last record is a commit whose meta page never landed: bbolt falls
      // back to the previous one. A crash only ever cuts a write short (the length check
      // above), so a complete record that fails its checksum is corruption, which the
      // check (tx.Check) reports.
      if (!last || verify) throw new BackendCorrupt(`db: bad checksum at offset ${off}`);
      break;
    }
    readRows(body, off, apply);
    off = end;
  }
  return off;
}
