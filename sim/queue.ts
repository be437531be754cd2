// The event queue: a binary min-heap keyed by (time, sequence), kept as parallel typed
// arrays (struct of arrays), which measured 1.5-3x faster than a heap of objects here.
// Sequence numbers make the order total, so equal times pop in insertion order.

export class EventQueue<T> {
  private timeUs: Float64Array;
  private seqs: Float64Array;
  private items: (T | undefined)[];
  private count = 0;
  private nextSeq = 0;

  constructor(capacity = 1024) {
    this.timeUs = new Float64Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.items = new Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Time of the earliest item, or +Infinity when empty. */
  peekTimeUs(): number {
    return this.count > 0 ? (this.timeUs[0] as number) : Number.POSITIVE_INFINITY;
  }

  /** Adds an item; returns the sequence number that breaks ties at equal times. */
  push(timeUs: number, item: T): number {
    if (this.count === this.timeUs.length) this.grow();
    const seq = this.nextSeq++;
    const T_ = this.timeUs;
    const S = this.seqs;
    const P = this.items;
    let i = this.count++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = T_[parent] as number;
      if (pt < timeUs || (pt === timeUs && (S[parent] as number) < seq)) break;
      T_[i] = pt;
      S[i] = S[parent] as number;
      P[i] = P[parent];
      i = parent;
    }
    T_[i] = timeUs;
    S[i] = seq;
    P[i] = item;
    return seq;
  }

  /** Removes and returns the earliest item. */
  pop(): T | undefined {
    if (this.count === 0) return undefined;
    const P = this.items;
    const top = P[0];
    const m = --this.count;
    if (m > 0) this.siftDown(0, this.timeUs[m] as number, this.seqs[m] as number, P[m]);
    P[m] = undefined;
    return top;
  }

  /**
   * Drops every item `keep` refuses, keeping the order of the rest (their keys are
   * unchanged, and unique): for lazily cancelled timers, which would otherwise stay in
   * the heap until their time and make every push and pop deeper.
   */
  compact(keep: (item: T) => boolean): void {
    const T_ = this.timeUs;
    const S = this.seqs;
    const P = this.items;
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const item = P[i] as T;
      if (!keep(item)) continue;
      T_[n] = T_[i] as number;
      S[n] = S[i] as number;
      P[n] = item;
      n++;
    }
    for (let i = n; i < this.count; i++) P[i] = undefined;
    this.count = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i, T_[i] as number, S[i] as number, P[i]);
  }

  /** Puts (t, s, p) in the hole at `i`, moving smaller children up past it. */
  private siftDown(i: number, t: number, s: number, p: T | undefined): void {
    const T_ = this.timeUs;
    const S = this.seqs;
    const P = this.items;
    const m = this.count;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= m) break;
      let ct = T_[c] as number;
      let cs = S[c] as number;
      const r = c + 1;
      if (r < m) {
        const rt = T_[r] as number;
        const rs = S[r] as number;
        if (rt < ct || (rt === ct && rs < cs)) {
          c = r;
          ct = rt;
          cs = rs;
        }
      }
      if (t < ct || (t === ct && s < cs)) break;
      T_[i] = ct;
      S[i] = cs;
      P[i] = P[c];
      i = c;
    }
    T_[i] = t;
    S[i] = s;
    P[i] = p;
  }

  private grow(): void {
    const capacity = this.timeUs.length * 2;
    const t = new Float64Array(capacity);
    t.set(this.timeUs);
    const s = new Float64Array(capacity);
    s.set(this.seqs);
    this.timeUs = t;
    this.seqs = s;
    this.items.length = capacity;
  }
}
