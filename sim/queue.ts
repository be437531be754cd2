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
    const T_ = this.timeUs;
    const S = this.seqs;
    const P = this.items;
    const top = P[0];
    const m = --this.count;
    if (m > 0) {
      const lt = T_[m] as number;
      const ls = S[m] as number;
      const lp = P[m];
      let i = 0;
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
        if (lt < ct || (lt === ct && ls < cs)) break;
        T_[i] = ct;
        S[i] = cs;
        P[i] = P[c];
        i = c;
      }
      T_[i] = lt;
      S[i] = ls;
      P[i] = lp;
    }
    P[m] = undefined;
    return top;
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
