// etcd's write-ahead log on a virtual disk (server/storage/wal): segments named
// `<seq>-<index>.wal` (16 hex digits each), records chained by CRC-32C, a CRC record
// at the head of each segment carrying the chain over, metadata, entries, hard states
// and snapshot markers. Reading from a snapshot verifies the chain, keeps the last write
// of each index, and stops at a torn tail (an incomplete record at the end of the last
// segment), which `repair` truncates away, as etcd does after ErrUnexpectedEOF.
import { type Disk, slabBytes } from "../../sim/index.js";
import { crc32c, decode, encodeAfter, getU32, putU32 } from "../codec.js";
import { type Entry, EntryType, type HardState, type SnapshotMetadata } from "./types.js";

export const RecordType = { Metadata: 1, Entry: 2, State: 3, Crc: 4, Snapshot: 5 } as const;
type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** A snapshot marker in the WAL: the index and term a .snap file must match. */
export interface WalSnapshot {
  readonly index: number;
  readonly term: number;
}

/** Fatal WAL errors: etcd refuses to start (it panics) on each of these. */
export class WalError extends Error {
  constructor(
    readonly kind:
      | "crc-mismatch"
      | "snapshot-not-found"
      | "snapshot-mismatch"
      | "metadata-conflict"
      | "missing",
    message: string,
  ) {
    super(message);
  }
}

/** An incomplete record at the end of the last segment: repairable by truncation. */
export class WalTornTail extends Error {
  constructor(
    readonly path: string,
    readonly goodBytes: number,
  ) {
    super(`unexpected EOF in ${path} after ${goodBytes} bytes`);
  }
}

export interface WalReadResult {
  readonly metadata: Uint8Array;
  readonly hardState: HardState | null;
  readonly entries: Entry[];
  /** Every snapshot marker in the WAL, oldest first (etcd's ValidSnapshotEntries). */
  readonly snapshots: WalSnapshot[];
}

const HEADER_BYTES = 9; // u32 length, u32 crc, u8 type

function segmentName(dir: string, seq: number, index: number): string {
  return `${dir}/${seq.toString(16).padStart(16, "0")}-${index.toString(16).padStart(16, "0")}.wal`;
}

function parseSegmentName(path: string): { seq: number; index: number } | null {
  const m = /([0-9a-f]{16})-([0-9a-f]{16})\.wal$/.exec(path);
  return m ? { seq: Number.parseInt(m[1] as string, 16), index: Number.parseInt(m[2] as string, 16) } : null;
}

interface Segment {
  readonly path: string;
  readonly seq: number;
  /** The index the segment starts after (etcd names a segment by the first index it may hold). */
  readonly index: number;
}

/** Segments of `dir`, in sequence order. */
export function listSegments(disk: Disk, dir: string): Segment[] {
  const out: Segment[] = [];
  for (const path of disk.list(dir)) {
    const parsed = parseSegmentName(path);
    if (parsed) out.push({ path, ...parsed });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/**
 * The byte ranges of a segment's record payloads, as [start, end) pairs: where bit rot
 * can only be a corruption. A flip in a frame header at the tail reads as a torn write,
 * which etcd repairs by truncation like a crash mid-write (docs/backup.md).
 */
export function payloadRanges(bytes: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let off = 0; off + HEADER_BYTES <= bytes.length; ) {
    const end = off + HEADER_BYTES + view.getUint32(off);
    if (end > bytes.length) break;
    if (end > off + HEADER_BYTES) out.push([off + HEADER_BYTES, end]);
    off = end;
  }
  return out;
}

export function walExists(disk: Disk, dir: string): boolean {
  return listSegments(disk, dir).length > 0;
}

/**
 * The snapshot markers a restart may use (etcd's ValidSnapshotEntries): every marker in
 * the WAL whose index is at most the commit index of the last hard state. A received
 * snapshot's marker is fsynced before the hard state that commits it; a crash between
 * the two must not leave a snapshot ahead of the commit index (etcd #10219, PR #11888).
 * Stops quietly at an incomplete record; Wal.open judges it.
 */
export function scanSnapshots(disk: Disk, dir: string): WalSnapshot[] {
  const markers: WalSnapshot[] = [{ index: 0, term: 0 }];
  let commit = 0;
  for (const seg of listSegments(disk, dir)) {
    const bytes = disk.read(seg.path);
    let off = 0;
    while (off + HEADER_BYTES <= bytes.length) {
      const view = new DataView(bytes.buffer, bytes.byteOffset + off);
      const length = view.getUint32(0);
      if (off + HEADER_BYTES + length > bytes.length) break;
      const type = view.getUint8(8);
      const data = bytes.subarray(off + HEADER_BYTES, off + HEADER_BYTES + length);
      try {
        if (type === RecordType.Snapshot) {
          const m = decode<WalSnapshot>(data);
          if (!markers.some((x) => x.index === m.index && x.term === m.term)) markers.push(m);
        } else if (type === RecordType.State) commit = decodeHardState(data).commit;
      } catch {
        // a corrupt record: Wal.open reports the CRC mismatch
      }
      off += HEADER_BYTES + length;
    }
  }
  return markers.filter((m) => m.index <= commit);
}

/** The WAL in append mode, after `create` or `Wal.open`. */
export class Wal {
  private crc: number;
  private tail: Segment;
  private tailBytes: number;
  private lastIndex: number;
  /** Segments written since their last fsync (a cut leaves the old tail among them). */
  private unsynced: string[] = [];
  /** The newest snapshot the WAL records; segments wholly before it may be released. */
  private releasedTo = 0;

  private constructor(
    private readonly disk: Disk,
    private readonly dir: string,
    private readonly metadata: Uint8Array,
    private readonly segmentBytes: number,
    tail: Segment,
    crc: number,
    lastIndex: number,
  ) {
    this.tail = tail;
    this.crc = crc;
    this.tailBytes = disk.size(tail.path);
    this.lastIndex = lastIndex;
  }

  /**
   * Creates a new WAL with its first segment (a CRC record, metadata and an empty
   * snapshot marker), fsyncs it and the directory, then calls `done`.
   */
  static create(
    disk: Disk,
    dir: string,
    metadata: Uint8Array,
    segmentBytes: number,
    done: (wal: Wal) => void,
  ): void {
    const seg: Segment = { path: segmentName(dir, 0, 0), seq: 0, index: 0 };
    disk.create(seg.path);
    const wal = new Wal(disk, dir, metadata, segmentBytes, seg, 0, 0);
    wal.writeRecord(RecordType.Crc, encodeAfter(HEADER_BYTES, 0));
    wal.writeRecord(RecordType.Metadata, withHeader(metadata));
    wal.writeRecord(RecordType.Snapshot, encodeAfter(HEADER_BYTES, { index: 0, term: 0 }));
    disk.fsync(seg.path, (err) => {
      if (err) throw err;
      disk.fsyncDir(dir, () => done(wal));
    });
  }

  /**
   * Reads the WAL from the segment that holds `snap` on, and returns it in append mode
   * with what it read. Throws WalTornTail (repairable) or WalError (fatal).
   */
  static open(
    disk: Disk,
    dir: string,
    snap: WalSnapshot,
    segmentBytes: number,
  ): { wal: Wal; read: WalReadResult } {
    const segments = listSegments(disk, dir);
    if (segments.length === 0) throw new WalError("missing", `no WAL in ${dir}`);
    // Start at the last segment that begins at or before the snapshot's index.
    let first = 0;
    for (let i = 0; i < segments.length; i++) if ((segments[i] as Segment).index <= snap.index) first = i;
    let crc = 0;
    let metadata: Uint8Array | null = null;
    let hardState: HardState | null = null;
    const entries: Entry[] = [];
    const snapshots: WalSnapshot[] = [];
    let matched = snap.index === 0;
    let lastIndex = snap.index;
    for (let s = first; s < segments.length; s++) {
      const seg = segments[s] as Segment;
      const bytes = disk.read(seg.path);
      const isLast = s === segments.length - 1;
      let off = 0;
      while (off < bytes.length) {
        if (off + HEADER_BYTES > bytes.length) {
          if (isLast) throw new WalTornTail(seg.path, off);
          throw new WalError("crc-mismatch", `${seg.path}: truncated record at ${off} in a sealed segment`);
        }
        const view = new DataView(bytes.buffer, bytes.byteOffset + off);
        const length = view.getUint32(0);
        const recCrc = view.getUint32(4);
        const type = view.getUint8(8) as RecordType;
        if (off + HEADER_BYTES + length > bytes.length) {
          if (isLast) throw new WalTornTail(seg.path, off);
          throw new WalError("crc-mismatch", `${seg.path}: truncated record at ${off} in a sealed segment`);
        }
        const data = bytes.subarray(off + HEADER_BYTES, off + HEADER_BYTES + length);
        if (!(type >= RecordType.Metadata && type <= RecordType.Snapshot))
          throw new WalError("crc-mismatch", `${seg.path}: unknown record type ${type} at offset ${off}`);
        if (type === RecordType.Crc) {
          // the chain carried over from the previous segment
          let carried: unknown;
          try {
            carried = decode<number>(data);
          } catch {
            carried = null;
          }
          if (typeof carried !== "number" || (s !== first && carried !== crc)) {
            throw new WalError(
              "crc-mismatch",
              `${seg.path}: CRC chain broken (${String(carried)} != ${crc})`,
            );
          }
          crc = carried;
        } else {
          const expected = recordCrc(crc, type, data);
          if (expected !== recCrc) {
            throw new WalError("crc-mismatch", `${seg.path}: CRC mismatch at offset ${off}`);
          }
          crc = recCrc;
          switch (type) {
            case RecordType.Metadata:
              if (metadata !== null && !sameBytes(metadata, data)) {
                throw new WalError("metadata-conflict", `${seg.path}: metadata differs between segments`);
              }
              metadata = data.slice();
              break;
            case RecordType.Entry: {
              const e = decodeEntry(data);
              if (e.index > snap.index) {
                // a later write of an index replaces it and everything after
                const at = e.index - snap.index - 1;
                if (at > entries.length) {
                  throw new WalError(
                    "crc-mismatch",
                    `${seg.path}: entry ${e.index} leaves a gap after ${snap.index + entries.length}`,
                  );
                }
                entries.length = at;
                entries.push(e);
                lastIndex = e.index;
              }
              break;
            }
            case RecordType.State:
              hardState = decodeHardState(data);
              break;
            case RecordType.Snapshot: {
              const marker = decode<WalSnapshot>(data);
              snapshots.push(marker);
              if (marker.index === snap.index) {
                if (marker.term !== snap.term) {
                  throw new WalError(
                    "snapshot-mismatch",
                    `snapshot ${snap.index} has term ${snap.term}, WAL says ${marker.term}`,
                  );
                }
                matched = true;
              }
              break;
            }
            default:
              throw new WalError("crc-mismatch", `${seg.path}: unknown record type ${type}`);
          }
        }
        off += HEADER_BYTES + length;
      }
    }
    if (metadata === null) throw new WalError("missing", `no metadata in ${dir}`);
    if (!matched)
      throw new WalError("snapshot-not-found", `snapshot ${snap.index} is not recorded in the WAL`);
    const tail = segments[segments.length - 1] as Segment;
    const wal = new Wal(disk, dir, metadata, segmentBytes, tail, crc, lastIndex);
    wal.releasedTo = snap.index;
    return { wal, read: { metadata, hardState, entries, snapshots } };
  }

  /** Drops a torn tail, as etcd's wal.Repair does after io.ErrUnexpectedEOF. */
  static repair(disk: Disk, torn: WalTornTail): void {
    disk.truncate(torn.path, torn.goodBytes);
  }

  /** Appends a hard state and entries. Returns true when they must be fsynced before use. */
  save(hardState: HardState | null, entries: readonly Entry[], mustSync: boolean): boolean {
    for (const e of entries) {
      this.writeRecord(RecordType.Entry, entryRecord(e));
      this.lastIndex = e.index;
    }
    if (hardState) this.writeRecord(RecordType.State, hardStateRecord(hardState));
    const sync = mustSync && (entries.length > 0 || hardState !== null);
    if (this.tailBytes >= this.segmentBytes) this.cut();
    return sync;
  }

  /** Records a snapshot marker (etcd's SaveSnapshot); the caller fsyncs. */
  saveSnapshot(meta: SnapshotMetadata): void {
    this.writeRecord(RecordType.Snapshot, encodeAfter(HEADER_BYTES, { index: meta.index, term: meta.term }));
  }

  /** Fsyncs every segment written since its last fsync, then calls `done`. */
  sync(done: (err: Error | null) => void): void {
    const n = this.unsynced.length;
    if (n <= 1) {
      // the usual case, one segment: no list or closure per sync
      const path = n === 1 ? (this.unsynced[0] as string) : this.tail.path;
      this.unsynced.length = 0;
      this.disk.fsync(path, done);
      return;
    }
    const paths = this.unsynced;
    this.unsynced = [];
    let firstError: Error | null = null;
    let left = paths.length;
    for (const path of paths) {
      // The disk completes fsyncs in order, so the last callback comes last.
      this.disk.fsync(path, (err) => {
        firstError ??= err;
        if (--left === 0) done(firstError);
      });
    }
  }

  /**
   * Lets segments wholly before the snapshot at `index` go (etcd's ReleaseLockTo), and
   * removes all but the newest `keep` of those (etcd purges old WAL files).
   */
  releaseTo(index: number, keep: number): void {
    this.releasedTo = Math.max(this.releasedTo, index);
    const segments = listSegments(this.disk, this.dir);
    // A segment can go if the next one starts at or before the released index.
    const removable: Segment[] = [];
    for (let i = 0; i + 1 < segments.length; i++) {
      const next = segments[i + 1] as Segment;
      if (next.index <= this.releasedTo) removable.push(segments[i] as Segment);
    }
    for (const seg of removable.slice(0, Math.max(0, removable.length - keep))) this.disk.remove(seg.path);
  }

  /** Starts a new segment; the CRC chain carries over through its first record. */
  private cut(): void {
    const seg: Segment = {
      path: segmentName(this.dir, this.tail.seq + 1, this.lastIndex + 1),
      seq: this.tail.seq + 1,
      index: this.lastIndex + 1,
    };
    this.disk.create(seg.path);
    this.tail = seg;
    this.tailBytes = 0;
    this.writeRecord(RecordType.Crc, encodeAfter(HEADER_BYTES, this.crc));
    this.writeRecord(RecordType.Metadata, withHeader(this.metadata));
    // No directory fsync here: the new segment's name must become durable together with
    // its header records (at its first fsync, by the ext4 rule), never before them. etcd
    // gets the same effect by writing the segment as a temp file and renaming it.
  }

  /** Writes a record whose data follows HEADER_BYTES of room in `rec` (encodeAfter). */
  private writeRecord(type: RecordType, rec: Uint8Array): void {
    // the data follows the header: checksummed in place (a view per record cost an allocation)
    const crc = type === RecordType.Crc ? 0 : recordCrc(this.crc, type, rec, HEADER_BYTES);
    const n = this.unsynced.length;
    if (n === 0 || this.unsynced[n - 1] !== this.tail.path) this.unsynced.push(this.tail.path);
    putU32(rec, 0, rec.length - HEADER_BYTES);
    putU32(rec, 4, crc);
    rec[8] = type;
    this.disk.append(this.tail.path, rec, true);
    this.tailBytes += rec.length;
    if (type !== RecordType.Crc) this.crc = crc;
  }
}

const TYPE_BYTES = [0, 1, 2, 3, 4, 5].map((t) => Uint8Array.of(t));

/** A record's CRC covers its type and data, chained from the previous record's. */
function recordCrc(prev: number, type: RecordType, data: Uint8Array, from = 0): number {
  return crc32c(crc32c(prev, TYPE_BYTES[type] as Uint8Array), data, from);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function withHeader(data: Uint8Array): Uint8Array {
  const rec = new Uint8Array(HEADER_BYTES + data.length);
  rec.set(data, HEADER_BYTES);
  return rec;
}

// An entry record's data: term (u32), index (u32), type (u8), then the payload as it is.
// A fixed layout rather than msgpack: every member writes every entry, so this is hot.
const ENTRY_HEAD_BYTES = 9;

function entryRecord(e: Entry): Uint8Array {
  const rec = slabBytes(HEADER_BYTES + ENTRY_HEAD_BYTES + e.data.length);
  putU32(rec, HEADER_BYTES, e.term);
  putU32(rec, HEADER_BYTES + 4, e.index);
  rec[HEADER_BYTES + 8] = e.type;
  rec.set(e.data, HEADER_BYTES + ENTRY_HEAD_BYTES);
  return rec;
}

// A hard state record's data: term, vote, commit (u32 each), written with every Ready.
const HARD_STATE_BYTES = 12;

function hardStateRecord(hs: HardState): Uint8Array {
  const rec = slabBytes(HEADER_BYTES + HARD_STATE_BYTES);
  putU32(rec, HEADER_BYTES, hs.term);
  putU32(rec, HEADER_BYTES + 4, hs.vote);
  putU32(rec, HEADER_BYTES + 8, hs.commit);
  return rec;
}

function decodeHardState(data: Uint8Array): HardState {
  if (data.length !== HARD_STATE_BYTES)
    throw new WalError("crc-mismatch", "a hard state record of the wrong size");
  return { term: getU32(data, 0), vote: getU32(data, 4), commit: getU32(data, 8) };
}

function decodeEntry(data: Uint8Array): Entry {
  if (data.length < ENTRY_HEAD_BYTES)
    throw new WalError("crc-mismatch", "an entry record shorter than its head");
  const type = data[8] as number;
  if (type !== EntryType.Normal && type !== EntryType.ConfChange)
    throw new WalError("crc-mismatch", `an entry record of unknown type ${type}`);
  return {
    term: getU32(data, 0),
    index: getU32(data, 4),
    type,
    data: data.slice(ENTRY_HEAD_BYTES),
  };
}
