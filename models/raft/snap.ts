// Snapshot files (etcd's snap.Snapshotter): `snap/<term>-<index>.snap`, each a CRC-32C
// followed by the encoded snapshot. Loading picks the newest file that the WAL also
// records; a file that fails its CRC is renamed `.broken` and skipped, as etcd does.
import type { Disk } from "../../sim/index.js";
import { crc32c, decode, encode } from "../codec.js";
import type { Snapshot } from "./types.js";
import type { WalSnapshot } from "./wal.js";

function snapName(dir: string, term: number, index: number): string {
  return `${dir}/${term.toString(16).padStart(16, "0")}-${index.toString(16).padStart(16, "0")}.snap`;
}

function parseSnapName(path: string): WalSnapshot | null {
  const m = /([0-9a-f]{16})-([0-9a-f]{16})\.snap$/.exec(path);
  return m ? { term: Number.parseInt(m[1] as string, 16), index: Number.parseInt(m[2] as string, 16) } : null;
}

export class Snapshotter {
  constructor(
    private readonly disk: Disk,
    private readonly dir: string,
  ) {}

  /** Writes and fsyncs a snapshot file, then calls `done`. */
  save(snap: Snapshot, done: (err: Error | null) => void): void {
    const body = encode({ metadata: snap.metadata, data: snap.data });
    const bytes = new Uint8Array(4 + body.length);
    new DataView(bytes.buffer).setUint32(0, crc32c(0, body));
    bytes.set(body, 4);
    const path = snapName(this.dir, snap.metadata.term, snap.metadata.index);
    this.disk.create(path);
    this.disk.append(path, bytes);
    this.disk.fsync(path, done);
  }

  /** The newest readable snapshot whose (index, term) the WAL records, or null. */
  loadNewestAvailable(walSnaps: readonly WalSnapshot[]): Snapshot | null {
    for (const f of this.recorded(walSnaps)) {
      const snap = this.read(f.path);
      if (snap) return snap;
    }
    return null;
  }

  /**
   * The newest snapshot file the WAL records, checked without touching anything (a
   * data-dir validation): its id (null: none), or `broken` naming a file failing its CRC.
   */
  inspectNewest(walSnaps: readonly WalSnapshot[]): { id: WalSnapshot | null; broken: string | null } {
    const files = this.recorded(walSnaps);
    const newest = files[0];
    if (!newest) return { id: null, broken: null };
    return this.intact(newest.path) ? { id: newest.id, broken: null } : { id: null, broken: newest.path };
  }

  private recorded(walSnaps: readonly WalSnapshot[]): { path: string; id: WalSnapshot }[] {
    return this.disk
      .list(this.dir)
      .map((path) => ({ path, id: parseSnapName(path) }))
      .filter((f): f is { path: string; id: WalSnapshot } => f.id !== null)
      .filter((f) => walSnaps.some((w) => w.index === f.id.index && w.term === f.id.term))
      .sort((a, b) => b.id.index - a.id.index);
  }

  private intact(path: string): boolean {
    const bytes = this.disk.read(path);
    return (
      bytes.length > 4 &&
      new DataView(bytes.buffer, bytes.byteOffset).getUint32(0) === crc32c(0, bytes.subarray(4))
    );
  }

  private read(path: string): Snapshot | null {
    const bytes = this.disk.read(path);
    const body = bytes.subarray(4);
    if (!this.intact(path)) {
      this.disk.rename(path, `${path}.broken`);
      return null;
    }
    const s = decode<Snapshot>(body);
    return { metadata: s.metadata, data: new Uint8Array(s.data) };
  }

  /** Removes all but the newest `keep` snapshot files (etcd's purge of old snapshots). */
  purge(keep: number): void {
    const files = this.disk.list(this.dir).filter((p) => p.endsWith(".snap"));
    for (const p of files.slice(0, Math.max(0, files.length - keep))) this.disk.remove(p);
  }
}
