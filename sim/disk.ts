// A node's virtual disk: files with a page cache in front of durable storage.
//
// Writes land in the cache at once (reads see them); fsync makes them durable after a
// latency drawn from the disk's own stream, one fsync after another (a disk has one
// queue). A crash keeps exactly what was fsynced, unless the crash mode says otherwise.
//
// Directory rule (ext4, data=ordered, as documented in docs/architecture.md):
// - creating a file is durable once the file or its directory is fsynced (ext4 commits
//   the new directory entry in the same journal transaction as the inode);
// - rename and remove are durable only once the directory is fsynced.
import type { Random } from "./random.js";

/** What happens to unsynced data when the node crashes. */
export type DiskCrashMode =
  /** The process dies but the OS lives on: the page cache survives, nothing is lost. */
  | "keep"
  /** Power loss: every unsynced write and directory change vanishes. */
  | "lose"
  /** Each file keeps a random prefix of its unsynced writes, in order. */
  | "prefix"
  /** As `prefix`, and the next write is torn at a block boundary. */
  | "torn";

export type DiskErrorCode = "EIO" | "ENOSPC" | "ENOENT";

export class DiskError extends Error {
  readonly code: DiskErrorCode;
  constructor(code: DiskErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

/** Fault switches, changed by the fault schedule while the run goes on. */
export interface DiskFaults {
  /** Reads of paths starting with this prefix fail with EIO ("" = every path). */
  readEioPrefix: string | null;
  /** Writes and fsyncs of paths starting with this prefix fail with EIO. */
  writeEioPrefix: string | null;
  /** fsync reports success and persists nothing (outside etcd's assumptions). */
  fsyncLies: boolean;
  /** Added to every fsync: a slow or overloaded disk. */
  fsyncExtraUs: number;
  /**
   * When the slowness ends: an fsync issued near the end is slow only until then (a
   * disk that recovers finishes its queued work at its normal speed).
   */
  fsyncExtraUntilUs: number;
  /** Writes that would grow the disk past this fail with ENOSPC. */
  capacityBytes: number;
}

export interface DiskOptions {
  readonly fsyncMinUs: number;
  readonly fsyncMeanExtraUs: number;
  readonly fsyncMaxUs: number;
  /** Torn writes break at multiples of this. */
  readonly blockBytes: number;
}

export const DEFAULT_DISK_OPTIONS: DiskOptions = {
  fsyncMinUs: 500,
  fsyncMeanExtraUs: 1_500,
  fsyncMaxUs: 50_000,
  blockBytes: 512,
};

/** What the disk needs from the simulator: the time, and a way to complete an fsync later. */
export interface DiskHost {
  readonly nowUs: number;
  scheduleDisk(node: number, atUs: number, label: string, fn: () => void): void;
}

// A file's bytes in pages of 64 KiB: a growing WAL segment or db file never copies what it
// already holds (doubling one array copied every file twice over, in the cache and in the
// durable image). Every page but the first is full size; the first grows by doubling from
// 4 KiB, so that small files stay small.
const PAGE_SHIFT = 16;
const PAGE_BYTES = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_BYTES - 1;

/** A growable byte buffer. */
class Buf {
  pages: Uint8Array[] = [];
  length = 0;

  /** Makes [0, end) addressable; new bytes are zero. */
  private reserve(end: number): void {
    const pages = this.pages;
    const last = (end - 1) >>> PAGE_SHIFT;
    // every page before the last is full size
    if (pages.length > 0 && pages.length - 1 < last) this.grow(pages.length - 1, PAGE_BYTES);
    while (pages.length < last) pages.push(new Uint8Array(PAGE_BYTES));
    const need = end - (last << PAGE_SHIFT);
    if (last < pages.length) this.grow(last, need);
    else if (last > 0) pages.push(new Uint8Array(PAGE_BYTES));
    else {
      let cap = 4096;
      while (cap < need) cap *= 2;
      pages.push(new Uint8Array(cap));
    }
  }

  private grow(i: number, need: number): void {
    const page = this.pages[i] as Uint8Array;
    if (need <= page.length) return;
    let cap = page.length * 2;
    while (cap < need) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(page);
    this.pages[i] = b;
  }

  write(offset: number, src: Uint8Array): void {
    const end = offset + src.length;
    if (end === offset) return;
    this.reserve(end);
    // Bytes between the old end and `offset` stay zero: truncate() zeroes what it cuts.
    let at = offset;
    let from = 0;
    while (at < end) {
      const po = at & PAGE_MASK;
      const n = Math.min(end - at, PAGE_BYTES - po);
      const page = this.pages[at >>> PAGE_SHIFT] as Uint8Array;
      page.set(n === src.length ? src : src.subarray(from, from + n), po);
      at += n;
      from += n;
    }
    if (end > this.length) this.length = end;
  }

  truncate(n: number): void {
    if (n < this.length) {
      // Whole pages past the cut go; the rest of the cut page is zeroed.
      this.pages.length = (n + PAGE_MASK) >>> PAGE_SHIFT;
      if (n & PAGE_MASK) {
        const page = this.pages[n >>> PAGE_SHIFT] as Uint8Array;
        page.fill(0, n & PAGE_MASK, Math.min(page.length, this.length - (n & ~PAGE_MASK)));
      }
    } else if (n > this.length) {
      this.reserve(n);
    }
    this.length = n;
  }

  /** A copy of [from, to). */
  slice(from: number, to: number): Uint8Array {
    const out = new Uint8Array(Math.max(0, to - from));
    let at = from;
    while (at < to) {
      const po = at & PAGE_MASK;
      const n = Math.min(to - at, PAGE_BYTES - po);
      out.set((this.pages[at >>> PAGE_SHIFT] as Uint8Array).subarray(po, po + n), at - from);
      at += n;
    }
    return out;
  }

  /** Flips the bits of `mask` in byte `i` (< length). */
  xor(i: number, mask: number): void {
    const page = this.pages[i >>> PAGE_SHIFT] as Uint8Array;
    page[i & PAGE_MASK] = (page[i & PAGE_MASK] as number) ^ mask;
  }

  clone(): Buf {
    const b = new Buf();
    for (const page of this.pages) b.pages.push(page.slice());
    b.length = this.length;
    return b;
  }
}

// Short-lived byte buffers (writes waiting for an fsync, WAL records) carved out of
// shared slabs: a typed array over 64 bytes otherwise costs V8 an off-heap allocation
// each. A slab lives as long as any buffer cut from it.
const SLAB_BYTES = 256 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

/** `n` zeroed bytes that nothing else shares; cheap for small, short-lived buffers. */
export function slabBytes(n: number): Uint8Array {
  if (n > SLAB_BYTES / 8) return new Uint8Array(n);
  if (slabUsed + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += (n + 7) & ~7;
  return out;
}

function slabCopy(bytes: Uint8Array): Uint8Array {
  const out = slabBytes(bytes.length);
  out.set(bytes);
  return out;
}

/**
 * A write (bytes) or a truncation (bytes = null) not yet durable, with what it replaced:
 * the durable image is the cache with its pending ops undone, newest first, so that a
 * file is held once and an fsync moves no bytes.
 */
interface PendingOp {
  readonly offset: number;
  readonly bytes: Uint8Array | null;
  /** The file's length before the op. */
  readonly oldLength: number;
  /** The bytes the op overwrote or cut, from `offset` (null: none, as for an append). */
  readonly old: Uint8Array | null;
}

class Inode {
  /** The file as the page cache holds it; the durable image is `durable()`. */
  data = new Buf();
  pending: PendingOp[] = [];
  /** Ops ever issued, and ops moved into the durable image: fsync targets are counts. */
  opsIssued = 0;
  opsDurable = 0;
  name: string | null;
  durableName: string | null = null;
  /** Byte ranges [from, to) a fault corrupted and nothing has rewritten since (an oracle). */
  corrupted: [number, number][] = [];

  constructor(name: string) {
    this.name = name;
  }

  /** The durable image: a copy of the cache with the pending ops undone. */
  durable(): Buf {
    const b = this.data.clone();
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const op = this.pending[i] as PendingOp;
      b.truncate(op.oldLength);
      if (op.old !== null) b.write(op.offset, op.old);
    }
    return b;
  }

  /** Forgets corruption the file no longer holds: cut off, or overwritten by [from, to). */
  clean(length: number, from = 0, to = 0): void {
    if (this.corrupted.length === 0) return;
    this.corrupted = this.corrupted
      .filter(([a, b]) => a < length && !(a >= from && b <= to))
      .map(([a, b]) => [a, Math.min(b, length)]);
  }
}

/** A volume's durable files: what an old copy of it, or another pod's volume, holds. */
export type DiskImage = ReadonlyMap<
  string,
  { readonly bytes: Uint8Array; readonly corrupted: [number, number][] }
>;

function applyOp(buf: Buf, op: PendingOp): void {
  if (op.bytes === null) buf.truncate(op.offset);
  else buf.write(op.offset, op.bytes);
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

export interface DiskStats {
  fsyncs: number;
  bytesWritten: number;
  crashes: number;
}

export class Disk {
  readonly faults: DiskFaults = Disk.healthy();
  readonly stats: DiskStats = { fsyncs: 0, bytesWritten: 0, crashes: 0 };
  private names = new Map<string, Inode>();
  private durableNames = new Map<string, Inode>();
  private busyUntilUs = 0;
  private usedBytes = 0;

  /** The switches of a disk without faults. */
  static healthy(): DiskFaults {
    return {
      readEioPrefix: null,
      writeEioPrefix: null,
      fsyncLies: false,
      fsyncExtraUs: 0,
      fsyncExtraUntilUs: Number.POSITIVE_INFINITY,
      capacityBytes: Number.POSITIVE_INFINITY,
    };
  }

  /** Turns every fault switch off. */
  clearFaults(): void {
    Object.assign(this.faults, Disk.healthy());
  }

  constructor(
    private readonly host: DiskHost,
    private readonly node: number,
    private readonly random: Random,
    private readonly options: DiskOptions = DEFAULT_DISK_OPTIONS,
  ) {}

  // ---- reads -------------------------------------------------------------------------

  exists(path: string): boolean {
    return this.names.has(path);
  }

  /** Paths under `dir` (recursively), sorted, so that iteration order is deterministic. */
  list(dir: string): string[] {
    const prefix = dir === "" ? "" : `${dir}/`;
    const out: string[] = [];
    for (const p of this.names.keys()) if (p.startsWith(prefix)) out.push(p);
    return out.sort();
  }

  size(path: string): number {
    return this.inode(path).data.length;
  }

  /** A copy of `length` bytes at `offset` (default: to the end of the file). */
  read(path: string, offset = 0, length?: number): Uint8Array {
    const f = this.inode(path);
    const p = this.faults.readEioPrefix;
    if (p !== null && path.startsWith(p)) throw new DiskError("EIO", `read ${path}`);
    const end = length === undefined ? f.data.length : Math.min(f.data.length, offset + length);
    return f.data.slice(Math.min(offset, end), end);
  }

  // ---- writes (into the page cache) ---------------------------------------------------

  /** Creates an empty file, or empties an existing one (O_CREAT|O_TRUNC). */
  create(path: string): void {
    if (this.names.has(path)) this.truncate(path, 0);
    else this.names.set(path, new Inode(path));
  }

  /** `handOver`: the caller never changes `bytes` again, so the disk keeps them uncopied. */
  write(path: string, offset: number, bytes: Uint8Array, handOver = false): void {
    const f = this.names.get(path) ?? this.newInode(path);
    const oldLength = f.data.length;
    const growth = Math.max(0, offset + bytes.length - oldLength);
    this.checkWrite(path, growth);
    const old = offset < oldLength ? f.data.slice(offset, Math.min(offset + bytes.length, oldLength)) : null;
    f.data.write(offset, bytes);
    f.clean(f.data.length, offset, offset + bytes.length);
    this.usedBytes += growth;
    this.record(f, { offset, bytes: handOver ? bytes : slabCopy(bytes), oldLength, old });
    this.stats.bytesWritten += bytes.length;
  }

  append(path: string, bytes: Uint8Array, handOver = false): void {
    const f = this.names.get(path) ?? this.newInode(path);
    this.write(path, f.data.length, bytes, handOver);
  }

  truncate(path: string, length: number): void {
    const f = this.inode(path);
    const oldLength = f.data.length;
    this.checkWrite(path, Math.max(0, length - oldLength));
    this.usedBytes += length - oldLength;
    const old = length < oldLength ? f.data.slice(length, oldLength) : null;
    f.data.truncate(length);
    f.clean(length);
    this.record(f, { offset: length, bytes: null, oldLength, old });
  }

  /** Replaces `to` if it exists. Durable only after fsyncDir of the directory. */
  rename(from: string, to: string): void {
    const f = this.inode(from);
    const old = this.names.get(to);
    if (old && old !== f) {
      this.usedBytes -= old.data.length;
      old.name = null;
    }
    this.names.delete(from);
    this.names.set(to, f);
    f.name = to;
  }

  /** Removes a file. Durable only after fsyncDir of its directory. */
  remove(path: string): void {
    const f = this.inode(path);
    this.names.delete(path);
    f.name = null;
    this.usedBytes -= f.data.length;
  }

  // ---- durability ----------------------------------------------------------------------

  /**
   * Makes the writes issued to `path` so far durable, then calls `done` (on this node,
   * unless it crashes first). Writes issued after the call are not covered.
   */
  fsync(path: string, done: (err: DiskError | null) => void): void {
    const f = this.inode(path);
    const target = f.opsIssued;
    const p = this.faults.writeEioPrefix;
    const fail = p !== null && path.startsWith(p);
    this.stats.fsyncs++;
    this.host.scheduleDisk(this.node, this.nextFsyncDoneUs(), "disk.fsync", () => {
      if (fail) return done(new DiskError("EIO", `fsync ${path}`));
      if (!this.faults.fsyncLies) this.persist(f, target);
      done(null);
    });
  }

  /** Makes creations, renames and removals in `dir` durable, then calls `done`. */
  fsyncDir(dir: string, done: (err: DiskError | null) => void): void {
    this.stats.fsyncs++;
    this.host.scheduleDisk(this.node, this.nextFsyncDoneUs(), "disk.fsyncDir", () => {
      if (!this.faults.fsyncLies) this.persistDir(dir);
      done(null);
    });
  }

  // ---- faults ------------------------------------------------------------------------

  /** Applies a crash to the disk: what was not durable is lost according to `mode`. */
  crash(mode: DiskCrashMode): void {
    this.stats.crashes++;
    this.busyUntilUs = this.host.nowUs;
    if (mode === "keep") {
      for (const f of this.names.values()) {
        this.persist(f, f.opsIssued);
        f.durableName = f.name;
      }
      this.durableNames = new Map(this.names);
      return;
    }
    const survivors = new Map<string, Inode>();
    for (const [name, f] of this.durableNames) {
      const data = f.durable();
      const ops = f.pending;
      if (mode !== "lose" && ops.length > 0) {
        const k = this.random.int(0, ops.length + 1);
        for (let i = 0; i < k; i++) applyOp(data, ops[i] as PendingOp);
        if (mode === "torn" && k < ops.length) this.tear(data, ops[k] as PendingOp);
      }
      f.data = data;
      f.pending = [];
      f.opsDurable = f.opsIssued;
      f.name = name;
      survivors.set(name, f);
    }
    this.names = survivors;
    this.durableNames = new Map(survivors);
    this.recountUsed();
  }

  /**
   * Flips one random bit in each byte of [offset, offset+length), in the cache and on disk,
   * and remembers the range (`corruptedFiles`), so that a checker can tell whether a
   * process later runs on these bytes.
   */
  corrupt(path: string, offset: number, length: number): void {
    const f = this.inode(path);
    const end = offset + length;
    if (offset < f.data.length) f.corrupted.push([offset, Math.min(end, f.data.length)]);
    for (let i = offset; i < end; i++) {
      const mask = 1 << this.random.int(0, 8);
      if (i < f.data.length) f.data.xor(i, mask);
      // on disk too: the bytes pending ops replaced are what the disk holds
      for (const op of f.pending) {
        const at = i - op.offset;
        if (op.old !== null && at >= 0 && at < op.old.length) op.old[at] = (op.old[at] as number) ^ mask;
      }
    }
  }

  /** Everything gone, durably: a new, empty volume (member replace, a wiped data dir). */
  wipe(): void {
    this.names = new Map();
    this.durableNames = new Map();
    this.usedBytes = 0;
  }

  /** Files under `dir` still holding corrupted bytes, sorted. */
  corruptedFiles(dir = ""): string[] {
    return this.list(dir).filter((p) => (this.names.get(p) as Inode).corrupted.length > 0);
  }

  /** A copy of the durable files: the volume as a snapshot of it would keep it. */
  image(): DiskImage {
    const out = new Map<string, { bytes: Uint8Array; corrupted: [number, number][] }>();
    for (const [name, f] of [...this.durableNames].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const durable = f.durable();
      out.set(name, {
        bytes: durable.slice(0, durable.length),
        corrupted: f.corrupted.map(([a, b]) => [a, b]),
      });
    }
    return out;
  }

  /** Mounts `image` in place of the volume (the node must be down): all of it durable. */
  mount(image: DiskImage): void {
    this.wipe();
    for (const [name, { bytes, corrupted }] of image) {
      const f = new Inode(name);
      f.data.write(0, bytes);
      f.durableName = name;
      f.corrupted = corrupted.map(([a, b]) => [a, b]);
      this.names.set(name, f);
      this.durableNames.set(name, f);
    }
    this.recountUsed();
  }

  /** Bytes currently used by files. */
  get used(): number {
    return this.usedBytes;
  }

  /** Unsynced write operations across files (for tests and statistics). */
  get pendingOps(): number {
    let n = 0;
    for (const f of this.names.values()) n += f.pending.length;
    return n;
  }

  // ---- internals -------------------------------------------------------------------------

  private inode(path: string): Inode {
    const f = this.names.get(path);
    if (!f) throw new DiskError("ENOENT", path);
    return f;
  }

  private newInode(path: string): Inode {
    const f = new Inode(path);
    this.names.set(path, f);
    return f;
  }

  private checkWrite(path: string, growthBytes: number): void {
    const p = this.faults.writeEioPrefix;
    if (p !== null && path.startsWith(p)) throw new DiskError("EIO", `write ${path}`);
    if (this.usedBytes + growthBytes > this.faults.capacityBytes)
      throw new DiskError("ENOSPC", `write ${path}`);
  }

  private record(f: Inode, op: PendingOp): void {
    f.pending.push(op);
    f.opsIssued++;
  }

  private recountUsed(): void {
    let n = 0;
    for (const f of this.names.values()) n += f.data.length;
    this.usedBytes = n;
  }

  private nextFsyncDoneUs(): number {
    const o = this.options;
    const start = Math.max(this.host.nowUs, this.busyUntilUs);
    const done =
      start +
      this.random.latencyUs(o.fsyncMinUs, o.fsyncMeanExtraUs, o.fsyncMaxUs) +
      Math.min(this.faults.fsyncExtraUs, Math.max(0, this.faults.fsyncExtraUntilUs - start));
    this.busyUntilUs = done;
    return done;
  }

  /** Makes ops up to count `target` durable (ext4: also the file's name). */
  private persist(f: Inode, target: number): void {
    const n = Math.min(target - f.opsDurable, f.pending.length);
    if (n > 0) {
      f.pending.splice(0, n);
      f.opsDurable += n;
    }
    if (f.durableName === null && f.name !== null && this.names.get(f.name) === f) {
      f.durableName = f.name;
      this.durableNames.set(f.name, f);
    }
  }

  private persistDir(dir: string): void {
    for (const [name, f] of [...this.durableNames]) {
      if (dirOf(name) === dir && this.names.get(name) !== f) {
        this.durableNames.delete(name);
        if (f.durableName === name) f.durableName = null;
      }
    }
    for (const [name, f] of this.names) {
      if (dirOf(name) !== dir) continue;
      if (f.durableName !== null && f.durableName !== name) this.durableNames.delete(f.durableName);
      this.durableNames.set(name, f);
      f.durableName = name;
    }
  }

  /** Applies the part of a write that reached whole blocks before the power went. */
  private tear(data: Buf, op: PendingOp): void {
    if (op.bytes === null) return;
    const block = this.options.blockBytes;
    const first = Math.floor(op.offset / block) + 1;
    const last = Math.ceil((op.offset + op.bytes.length) / block) - 1;
    if (last < first) return; // no block boundary inside the write: none of it landed
    const cut = this.random.int(first, last + 1) * block;
    data.write(op.offset, op.bytes.subarray(0, cut - op.offset));
  }
}
