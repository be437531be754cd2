// The trace: every delivered event is mixed into a rolling 64-bit hash (two 32-bit
// murmur-style lanes, no serialisation: ~60 ns an event). Two runs of one seed must end
// with the same hash; when they do not, a captured trace names the first divergence.

/** One delivered event, as captured when full tracing is on. */
export interface TraceRecord {
  readonly index: number;
  readonly timeUs: number;
  readonly kind: string;
  readonly node: string;
  readonly label: string;
  readonly digest: number;
  /** The rolling hash after this event, so a divergence can be bisected on hashes alone. */
  readonly hash: string;
}

export interface Divergence {
  readonly index: number;
  readonly a: TraceRecord | undefined;
  readonly b: TraceRecord | undefined;
}

const labelHashes = new Map<string, number>();

/** A 32-bit hash of a string (FNV-1a), cached: labels are a small fixed vocabulary. */
export function hashLabel(label: string): number {
  let h = labelHashes.get(label);
  if (h === undefined) {
    h = hashString(label);
    labelHashes.set(label, h);
  }
  return h;
}

/** FNV-1a over UTF-16 code units; for digests of short strings (keys, values). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** FNV-1a over bytes; for digests of payloads. */
export function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) {
    h ^= b[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Mixes a 32-bit word into a running hash (murmur3's body step). */
export function mix32(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function hex32(h: number): string {
  return (h >>> 0).toString(16).padStart(8, "0");
}

export class Trace {
  private lane1 = 0x12345678;
  private lane2 = 0x9abcdef0 | 0;
  private count = 0;
  private records: TraceRecord[] | null = null;

  constructor(capture = false) {
    if (capture) this.records = [];
  }

  get events(): number {
    return this.count;
  }

  get captured(): readonly TraceRecord[] | null {
    return this.records;
  }

  /**
   * Mixes one event. `kind` and `node` are small integers, `labelHash` a cached label
   * hash, `digest` a 32-bit summary of the payload chosen by the sender.
   */
  add(timeUs: number, kind: number, node: number, labelHash: number, digest: number): void {
    const lo = timeUs >>> 0;
    const hi = (timeUs / 4294967296) >>> 0;
    const tag = (kind << 16) ^ (node & 0xffff);
    let a = this.lane1;
    a = mix32(a, lo);
    a = mix32(a, hi);
    a = mix32(a, tag);
    a = mix32(a, labelHash);
    a = mix32(a, digest);
    this.lane1 = a;
    let b = this.lane2 ^ a;
    b = mix32(b, digest ^ lo);
    b = mix32(b, labelHash ^ tag);
    this.lane2 = b;
    this.count++;
  }

  /** Records the event just added, with readable names, when capturing. */
  capture(timeUs: number, kind: string, node: string, label: string, digest: number): void {
    this.records?.push({
      index: this.count - 1,
      timeUs,
      kind,
      node,
      label,
      digest: digest >>> 0,
      hash: this.hash,
    });
  }

  /** The rolling hash so far, 16 hex digits. */
  get hash(): string {
    return hex32(this.lane1) + hex32(this.lane2);
  }
}

/** The first event at which two captured traces differ, or null when they are equal. */
export function firstDivergence(a: readonly TraceRecord[], b: readonly TraceRecord[]): Divergence | null {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as TraceRecord;
    const y = b[i] as TraceRecord;
    if (x.hash !== y.hash) return { index: i, a: x, b: y };
  }
  if (a.length !== b.length) return { index: n, a: a[n], b: b[n] };
  return null;
}

export function describeRecord(r: TraceRecord | undefined): string {
  if (!r) return "(end of trace)";
  return `#${r.index} at ${(r.timeUs / 1000).toFixed(3)} ms: ${r.kind} on ${r.node} '${r.label}' digest ${r.digest.toString(16)}`;
}
