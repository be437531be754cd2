// The event queue: a binary min-heap keyed by (time, sequence), kept as parallel typed
// arrays (struct of arrays), which measured 1.5-3x faster than a heap of objects here.
// Sequence numbers make the order total, so equal times pop in insertion order.
//
// The heap moves slot numbers, not the items: an item is stored once, in a slot table,
// when it is pushed. Moving object references inside a long-lived array cost a write
// barrier each (the array is in V8's old generation, the events in the young one): about
// ten per event, most of the kernel loop's garbage-collection overhead.

export class EventQueue<T> {
  private timeUs: Float64Array;
  private seqs: Float64Array;
  private slots: Int32Array;
  /** Items by slot; free slots hold undefined and are chained through `freeNext`. */
  private items: (T | undefined)[];
  private freeNext: Int32Array;
  private freeHead = -1;
  private slotsUsed = 0;
  private count = 0;
  private nextSeq = 0;

  constructor(capacity = 1024) {
    this.timeUs = new Float64Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.slots = new Int32Array(capacity);
    this.freeNext = new Int32Array(capacity);
    this.items = new Array(capacity).fill(undefined);
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
    const slot = this.takeSlot();
    this.items[slot] = item;
    const T_ = this.timeUs;
    const S = this.seqs;
    const P = this.slots;
    let i = this.count++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = T_[parent] as number;
      if (pt < timeUs || (pt === timeUs && (S[parent] as number) < seq)) break;
      T_[i] = pt;
      S[i] = S[parent] as number;
      P[i] = P[parent] as number;
      i = parent;
    }
    T_[i] = timeUs;
    S[i] = seq;
    P[i] = slot;
    return seq;
  }

  /** Removes and returns the earliest item. */
  pop(): T | undefined {
    if (this.count === 0) return undefined;
    const slot = this.slots[0] as number;
    const top = this.items[slot];
    this.releaseSlot(slot);
    const m = --this.count;
    if (m > 0) this.siftDown(0, this.timeUs[m] as number, this.seqs[m] as number, this.slots[m] as number);
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
    const P = this.slots;
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const slot = P[i] as number;
      if (!keep(this.items[slot] as T)) {
        this.releaseSlot(slot);
        continue;
      }
      T_[n] = T_[i] as number;
      S[n] = S[i] as number;
      P[n] = slot;
      n++;
    }
    this.count = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i, T_[i] as number, S[i] as number, P[i] as number);
  }

  /** Puts (t, s, slot) in the hole at `i`, moving smaller children up past it. */
  private siftDown(i: number, t: number, s: number, slot: number): void {
    const T_ = this.timeUs;
    const S = this.seqs;
    const P = this.slots;
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
      P[i] = P[c] as number;
      i = c;
    }
    T_[i] = t;
    S[i] = s;
    P[i] = slot;
  }

  private takeSlot(): number {
    const free = this.freeHead;
    if (free >= 0) {
      this.freeHead = this.freeNext[free] as number;
      return free;
    }
    return this.slotsUsed++;
  }

  private releaseSlot(slot: number): void {
    this.items[slot] = undefined;
    this.freeNext[slot] = this.freeHead;
    this.freeHead = slot;
  }

  private grow(): void {
    const capacity = this.timeUs.length * 2;
    const t = new Float64Array(capacity);
    t.set(this.timeUs);
    const s = new Float64Array(capacity);
    s.set(this.seqs);
    const p = new Int32Array(capacity);
    p.set(this.slots);
    const f = new Int32Array(capacity);
    f.set(this.freeNext);
    this.timeUs = t;
    this.seqs = s;
    this.slots = p;
    this.freeNext = f;
    for (let i = this.items.length; i < capacity; i++) this.items.push(undefined);
  }
}
