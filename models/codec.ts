// Binary encoding shared by the models: msgpack for structured records (one Packr with
// records on: byte-identical output across runs, unlike `sequential: true`), and CRC-32C
// (Castagnoli, as etcd's WAL uses) for checksums.
import { Packr } from "msgpackr";
import { slabBytes } from "../sim/index.js";

const packr = new Packr({ useRecords: true, moreTypes: false });
// Raft entry payloads (a proposal: one small object) as plain msgpack maps: a record
// carries its structure in every message, so for one object a map packs faster and
// smaller. This unpacker reads records as well (some payloads are packed by `encode`),
// and gives maps back as objects, which is what every payload holds.
const entryPackr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export function encode(value: unknown): Uint8Array {
  // Copy out of msgpackr's shared slab: callers keep these bytes.
  return new Uint8Array(packr.pack(value));
}

/**
 * `encode` with `headerBytes` zero bytes in front, for the caller to fill: a record bound
 * for a disk's write queue, short-lived, so cut from a slab.
 */
export function encodeAfter(headerBytes: number, value: unknown): Uint8Array {
  const packed = packr.pack(value);
  const n = headerBytes + packed.length;
  const out = slabBytes(n);
  out.set(packed, headerBytes);
  return out;
}

export function getU32(bytes: Uint8Array, at: number): number {
  return (
    (((bytes[at] as number) << 24) |
      ((bytes[at + 1] as number) << 16) |
      ((bytes[at + 2] as number) << 8) |
      (bytes[at + 3] as number)) >>>
    0
  );
}

/** Big-endian u32 at `at` (a DataView per record costs an allocation). */
export function putU32(bytes: Uint8Array, at: number, v: number): void {
  bytes[at] = v >>> 24;
  bytes[at + 1] = (v >>> 16) & 0xff;
  bytes[at + 2] = (v >>> 8) & 0xff;
  bytes[at + 3] = v & 0xff;
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

const decodedOnce = new WeakMap<Uint8Array, unknown>();

/**
 * `encode` for a payload that `decodeShared` will read back (a proposal): the value
 * itself stands for its decoding, so the members that apply it never unpack it. The
 * caller never mutates `value` afterwards.
 */
export function encodeShared(value: unknown): Uint8Array {
  // A view, not a copy: the packer never writes over what it returned (it moves on, and
  // starts a new buffer when this one is full). A plain Uint8Array view, not msgpackr's
  // Buffer, so that byte loops see one kind of array.
  const packed = entryPackr.pack(value);
  const bytes = new Uint8Array(packed.buffer, packed.byteOffset, packed.length);
  decodedOnce.set(bytes, value);
  return bytes;
}

/**
 * `decode` for payloads that reach several nodes as the same bytes (a raft entry's data
 * travels in messages uncopied): decoded once, the value shared. Callers never mutate it.
 * Bytes read back from a disk are new arrays, decoded afresh.
 */
export function decodeShared<T>(bytes: Uint8Array): T {
  let v = decodedOnce.get(bytes);
  if (v === undefined) {
    v = entryPackr.unpack(bytes);
    decodedOnce.set(bytes, v);
  }
  return v as T;
}

/**
 * Eight tables for slicing-by-8: table k maps a byte to its CRC contribution k bytes
 * further on, so the main loop folds 8 bytes per step (every WAL record and db commit
 * is checksummed, so this is a hot loop).
 */
const CRC_TABLES = (() => {
  const t = new Uint32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++)
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + i] as number;
      t[k * 256 + i] = ((t[prev & 0xff] as number) ^ (prev >>> 8)) >>> 0;
    }
  return t;
})();

/** CRC-32C of `bytes` (from `from` on), continuing from `crc` (0 to start a chain). */
export function crc32c(crc: number, bytes: Uint8Array, from = 0): number {
  const T = CRC_TABLES;
  let c = ~crc >>> 0;
  let i = from;
  const n = bytes.length;
  for (; i + 8 <= n; i += 8) {
    const lo =
      (c ^
        ((bytes[i] as number) |
          ((bytes[i + 1] as number) << 8) |
          ((bytes[i + 2] as number) << 16) |
          ((bytes[i + 3] as number) << 24))) >>>
      0;
    c =
      ((T[7 * 256 + (lo & 0xff)] as number) ^
        (T[6 * 256 + ((lo >>> 8) & 0xff)] as number) ^
        (T[5 * 256 + ((lo >>> 16) & 0xff)] as number) ^
        (T[4 * 256 + (lo >>> 24)] as number) ^
        (T[3 * 256 + (bytes[i + 4] as number)] as number) ^
        (T[2 * 256 + (bytes[i + 5] as number)] as number) ^
        (T[256 + (bytes[i + 6] as number)] as number) ^
        (T[bytes[i + 7] as number] as number)) >>>
      0;
  }
  for (; i < n; i++) c = (T[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

export function toBytes(s: string): Uint8Array {
  return utf8.encode(s);
}

export function fromBytes(b: Uint8Array): string {
  return utf8d.decode(b);
}
