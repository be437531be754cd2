// A linearizability checker of Porcupine's class: Wing & Gong's search with Lowe's
// memoization of (linearized set, model state), over any sequential model.
//
// - Operations with an unknown outcome are *optional*: each may be linearized at any
//   point after its call, or never. (Porcupine closes them at the end of the history;
//   treating them natively keeps the search small.) A configuration whose set of
//   linearized optional operations contains one already explored with the same
//   required set and state is dominated (it has fewer choices left) and is pruned.
// - The budget counts model steps, not time: the same history gets the same verdict on
//   every machine, and a spent budget gives `unknown`, never a hang or a silent pass.
//   The memo table is bounded too: past its cap it stops growing (slower, never wrong).
// - On success it returns a witness order; on failure the longest linearizable prefix,
//   the operations that could not be placed after it, and the state there.

/** A sequential specification: the whole interface a user implements. */
export interface Model<S, I, O> {
  init(): S;
  /**
   * The state after `input` answered `output`, or undefined if that answer is impossible
   * from `state`. With `unknown`, the answer was never seen: apply the effect only.
   */
  step(state: S, input: I, output: O, unknown: boolean): S | undefined;
  hash(state: S): number;
  equal(a: S, b: S): boolean;
  /** Independent groups of operation indexes (e.g. one per key), checked separately. */
  partition?(ops: readonly CheckOp<I, O>[]): number[][];
  describeOperation?(input: I, output: O, unknown: boolean): string;
  describeState?(state: S): string;
  /**
   * A key equal for inputs with the same effect. Among unknown-outcome operations with
   * equal keys only one is tried at a point (the others are interchangeable): the newest
   * called so far with `unknownNewestFirst`, else the earliest not yet placed.
   */
  inputKey?(input: I): string;
  /**
   * A measure that never decreases along any sequence of steps (etcd's revision). With
   * operation deadlines, a step past the deadline of an operation not yet placed is
   * pruned at once: that operation could never be placed after it.
   */
  progress?(state: S): number;
  /**
   * A cheap test, before stepping, that an unknown-outcome operation cannot apply in
   * `state` (it must agree with what step would say).
   */
  rejectUnknown?(state: S, input: I): boolean;
  /**
   * Try unknown-outcome candidates newest first (when the one called last is the likeliest
   * to have taken effect now, as with etcd revisions), instead of oldest first.
   */
  readonly unknownNewestFirst?: boolean;
}

export interface CheckOp<I, O> {
  readonly client: number;
  readonly callUs: number;
  /** Infinity when the operation never returned. */
  readonly returnUs: number;
  readonly input: I;
  readonly output: O;
  /** May be left out of the linearization (an unknown outcome that may not have happened). */
  readonly optional: boolean;
  /** The highest `progress` at which this operation can still be placed (see Model.progress). */
  readonly deadline?: number;
}

export type Verdict = "linearizable" | "not-linearizable" | "unknown";

export interface Failure<S> {
  /** Operation indexes of the partition that failed. */
  readonly partition: readonly number[];
  /** The longest linearizable prefix found, in order. */
  readonly prefix: readonly number[];
  /** Operations that could be called next after the prefix and could not be placed. */
  readonly stuck: readonly number[];
  /** The model state after the prefix. */
  readonly state: S;
}

export interface CheckResult<S> {
  readonly verdict: Verdict;
  readonly steps: number;
  /** Per partition, operation indexes in linearization order (linearizable only). */
  readonly witness?: readonly (readonly number[])[];
  readonly failure?: Failure<S>;
}

export interface CheckOptions {
  /** Model steps allowed in all (default 20 million). */
  readonly budgetSteps?: number;
  /** Memo entries kept at most (default 4 million). */
  readonly maxCacheEntries?: number;
}

export const DEFAULT_BUDGET_STEPS = 20_000_000;

export function checkLinearizability<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly CheckOp<I, O>[],
  options: CheckOptions = {},
): CheckResult<S> {
  const groups = (model.partition ? model.partition(ops) : [ops.map((_, i) => i)]).filter(
    (g) => g.length > 0,
  );
  let budget = options.budgetSteps ?? DEFAULT_BUDGET_STEPS;
  const maxCache = Math.max(
    1,
    Math.floor((options.maxCacheEntries ?? 4_000_000) / Math.max(1, groups.length)),
  );
  const searches = groups.map((g) => new Search(model, ops, g, maxCache));
  const witness: (number[] | null)[] = groups.map(() => null);
  let steps = 0;
  // Partitions run in turns, with growing slices: one that fails is found as soon as its
  // own search ends, however long the others would take (and the order is fixed, so
  // the verdict does not depend on timing).
  let slice = 10_000;
  let running = searches.map((_, i) => i);
  while (running.length > 0) {
    const still: number[] = [];
    for (const i of running) {
      const grant = Math.min(slice, budget);
      if (grant <= 0) return { verdict: "unknown", steps };
      const search = searches[i] as Search<S, I, O>;
      const r = search.run(grant);
      steps += r.spent;
      budget -= r.spent;
      if (r.verdict === "not-linearizable")
        return { verdict: r.verdict, steps, ...(r.failure ? { failure: r.failure } : {}) };
      if (r.verdict === "linearizable") witness[i] = r.order;
      else still.push(i);
    }
    running = still;
    slice *= 2;
  }
  return { verdict: "linearizable", steps, witness: witness as number[][] };
}

const NIL = -1;

/**
 * The memo table, in flat growable arrays (one object per entry would leave the garbage
 * collector most of the work). An entry is a frontier (all required ops of lower rank
 * are linearized), the bitset words of the required ranks from the frontier on, the
 * sorted ids of linearized optional ops, and the model state.
 */
class Memo<S> {
  // An open-addressing table from hash to the newest entry with it (-1: empty slot).
  // (small at first: the etcd fast path runs many tiny searches; the arrays grow)
  private slotHash = new Int32Array(1 << 6);
  private slotHead = new Int32Array(1 << 6).fill(-1);
  private slotsUsed = 0;
  private nextInBucket = new Int32Array(32);
  private frontier = new Int32Array(32);
  private wordsAt = new Int32Array(32);
  private wordsLen = new Int32Array(32);
  private optionalLen = new Int32Array(32);
  private pool = new Int32Array(128);
  private poolUsed = 0;
  private readonly states: S[] = [];
  size = 0;

  /** The slot holding hash h, or the empty slot where it would go. */
  private slot(h: number): number {
    const mask = this.slotHead.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> 0;
    for (;;) {
      i &= mask;
      if (this.slotHead[i] === -1 || this.slotHash[i] === h) return i;
      i++;
    }
  }

  find(
    h: number,
    frontier: number,
    words: Int32Array,
    wordCount: number,
    optional: readonly number[],
    state: S,
    equal: (a: S, b: S) => boolean,
  ): boolean {
    for (let e = this.slotHead[this.slot(h)] as number; e >= 0; e = this.nextInBucket[e] as number) {
      if (
        this.frontier[e] !== frontier ||
        this.wordsLen[e] !== wordCount ||
        this.optionalLen[e] !== optional.length
      )
        continue;
      const at = this.wordsAt[e] as number;
      let same = true;
      for (let i = 0; i < wordCount && same; i++) same = this.pool[at + i] === words[i];
      for (let i = 0; i < optional.length && same; i++) same = this.pool[at + wordCount + i] === optional[i];
      if (same && equal(this.states[e] as S, state)) return true;
    }
    return false;
  }

  add(
    h: number,
    frontier: number,
    words: Int32Array,
    wordCount: number,
    optional: readonly number[],
    state: S,
  ): void {
    const e = this.size++;
    if (e === this.frontier.length) this.growEntries();
    const need = wordCount + optional.length;
    while (this.poolUsed + need > this.pool.length) this.pool = grow(this.pool);
    const at = this.poolUsed;
    for (let i = 0; i < wordCount; i++) this.pool[at + i] = words[i] as number;
    for (let i = 0; i < optional.length; i++) this.pool[at + wordCount + i] = optional[i] as number;
    this.poolUsed += need;
    this.frontier[e] = frontier;
    this.wordsAt[e] = at;
    this.wordsLen[e] = wordCount;
    this.optionalLen[e] = optional.length;
    this.states.push(state);
    const s = this.slot(h);
    if (this.slotHead[s] === -1) {
      this.slotHash[s] = h;
      this.slotsUsed++;
    }
    this.nextInBucket[e] = this.slotHead[s] as number;
    this.slotHead[s] = e;
    if (this.slotsUsed * 2 > this.slotHead.length) this.rehash();
  }

  private rehash(): void {
    const oldHash = this.slotHash;
    const oldHead = this.slotHead;
    this.slotHash = new Int32Array(oldHash.length * 2);
    this.slotHead = new Int32Array(oldHead.length * 2).fill(-1);
    for (let i = 0; i < oldHead.length; i++) {
      if (oldHead[i] === -1) continue;
      const s = this.slot(oldHash[i] as number);
      this.slotHash[s] = oldHash[i] as number;
      this.slotHead[s] = oldHead[i] as number;
    }
  }

  private growEntries(): void {
    this.nextInBucket = grow(this.nextInBucket);
    this.frontier = grow(this.frontier);
    this.wordsAt = grow(this.wordsAt);
    this.wordsLen = grow(this.wordsLen);
    this.optionalLen = grow(this.optionalLen);
  }
}

function grow(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

/** The first index of `xs` (ascending) holding a value >= x. */
function lowerBound(xs: Float64Array, x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The call and return entries of `group`'s ops in time order, each as op * 2 (+1 for a
 * return): calls before returns at equal times (closed intervals), then by op. Sorted as
 * numbers, time * 2^k + the entry (exact below 2^53), without a comparator call per step;
 * times too large for that take the comparator.
 */
function entryOrder<I, O>(
  all: readonly CheckOp<I, O>[],
  group: readonly number[],
  count: number,
): Int32Array {
  const n = group.length;
  const ids = new Int32Array(count);
  const times = new Float64Array(count);
  let k = 0;
  let packable = true;
  let maxTime = 0;
  const add = (id: number, t: number) => {
    ids[k] = id;
    times[k++] = t;
    // a return that never came (a settled unknown outcome) packs as after every other time
    if (t === Number.POSITIVE_INFINITY) return;
    if (!(t >= 0 && Number.isInteger(t))) packable = false;
    else if (t > maxTime) maxTime = t;
  };
  for (let i = 0; i < n; i++) {
    const op = all[group[i] as number] as CheckOp<I, O>;
    add(i * 2, op.callUs);
    if (!op.optional) add(i * 2 + 1, op.returnUs);
  }
  // key: time * scale, then calls (below half) before returns (from half), each by op
  const half = 2 ** Math.ceil(Math.log2(n + 1));
  const scale = 2 * half;
  const never = maxTime + 1;
  if (packable && never * scale + scale < Number.MAX_SAFE_INTEGER) {
    const keys = new Float64Array(count);
    for (let e = 0; e < count; e++) {
      const id = ids[e] as number;
      const t = times[e] as number;
      keys[e] = (t === Number.POSITIVE_INFINITY ? never : t) * scale + (id & 1) * half + (id >> 1);
    }
    keys.sort();
    const out = new Int32Array(count);
    for (let e = 0; e < count; e++) {
      const r = (keys[e] as number) % scale;
      out[e] = r >= half ? (r - half) * 2 + 1 : r * 2;
    }
    return out;
  }
  const idx = Array.from({ length: count }, (_, e) => e);
  idx.sort((a, b) => {
    const d = (times[a] as number) - (times[b] as number);
    if (d !== 0) return d;
    const x = ids[a] as number;
    const y = ids[b] as number;
    return (x & 1) !== (y & 1) ? (x & 1) - (y & 1) : (x >> 1) - (y >> 1);
  });
  return Int32Array.from(idx, (e) => ids[e] as number);
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) as number;
}

class Search<S, I, O> {
  // entries: 2 per required op (call, return), 1 per optional op (call)
  private readonly entryOp: Int32Array;
  private readonly entryIsCall: Uint8Array;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly matchReturn: Int32Array; // call entry -> its return entry, or NIL
  private head = NIL;
  // linearized sets: required ops by rank in call order; optional ops by id
  private readonly requiredRank: Int32Array; // op (local) -> rank among required, or -1
  /** optional op (local) -> the previous optional op with the same input, or -1 */
  private readonly twinBefore: Int32Array;
  /** optional op (local) -> the next optional op with the same input, or -1 */
  private readonly twinAfter: Int32Array;
  /** op (local) -> its call entry */
  private readonly callEntryOf: Int32Array;
  /** optional op (local) -> 1 while it is linearized */
  private readonly optionalPlaced: Uint8Array;
  private readonly linearized: Uint8Array; // by required rank
  private readonly bits: Int32Array; // the same set as a bitset, for the memo
  private readonly scratch: Int32Array;
  /** Deadlines of required ops not yet placed, as counts in a segment tree over sorted values. */
  private readonly deadlineSlot: Int32Array; // local op -> slot, or -1
  private readonly deadlineValue: Float64Array; // slot -> deadline
  private readonly tree: Int32Array;
  private readonly leaves: number;
  /** XOR of a random word per linearized op: the set's hash, kept as ops come and go. */
  private setHash = 0;
  private readonly zobrist: Int32Array; // by local op
  private frontier = 0;
  private extras = 0;
  private readonly optionalOn: number[] = []; // local ids of linearized optional ops, sorted
  private requiredLeft: number;
  private readonly memo = new Memo<S>();
  // failure tracking
  private bestDepth = -1;
  private bestPrefix: number[] = [];
  private bestStuck: number[] = [];
  private bestState: S;

  constructor(
    private readonly model: Model<S, I, O>,
    private readonly all: readonly CheckOp<I, O>[],
    private readonly group: readonly number[],
    private readonly maxCache: number,
  ) {
    const n = group.length;
    const required = group.filter((g) => !(all[g] as CheckOp<I, O>).optional).length;
    const count = n + required;
    this.entryOp = new Int32Array(count);
    this.entryIsCall = new Uint8Array(count);
    this.next = new Int32Array(count);
    this.prev = new Int32Array(count);
    this.matchReturn = new Int32Array(count).fill(NIL);
    this.requiredRank = new Int32Array(n).fill(-1);
    // deadlines of required ops, compressed to slots (sorted, distinct)
    this.deadlineSlot = new Int32Array(n).fill(-1);
    const deadlines = new Float64Array(n);
    let m = 0;
    for (let i = 0; i < n; i++) {
      const o = all[group[i] as number] as CheckOp<I, O>;
      if (!o.optional && o.deadline !== undefined) deadlines[m++] = o.deadline;
    }
    const sorted = deadlines.subarray(0, m).sort();
    let distinct = 0;
    for (let i = 0; i < m; i++)
      if (i === 0 || sorted[i] !== sorted[distinct - 1]) sorted[distinct++] = sorted[i] as number;
    const values = sorted.slice(0, distinct);
    this.deadlineValue = values;
    let leaves = 1;
    while (leaves < Math.max(1, values.length)) leaves *= 2;
    this.leaves = leaves;
    this.tree = new Int32Array(2 * leaves);
    if (model.progress && values.length > 0) {
      for (let i = 0; i < n; i++) {
        const op = all[group[i] as number] as CheckOp<I, O>;
        if (op.optional || op.deadline === undefined) continue;
        const slot = lowerBound(values, op.deadline);
        this.deadlineSlot[i] = slot;
        this.bumpDeadline(slot, 1);
      }
    }
    this.twinBefore = new Int32Array(n).fill(-1);
    this.twinAfter = new Int32Array(n).fill(-1);
    this.optionalPlaced = new Uint8Array(n);
    this.requiredLeft = required;
    this.linearized = new Uint8Array(required);
    this.bits = new Int32Array((required >> 5) + 2);
    this.scratch = new Int32Array(this.bits.length);
    this.zobrist = new Int32Array(n);
    let z = 0x2545f491;
    for (let i = 0; i < n; i++) {
      // xorshift32: a fixed sequence, so hashes (and verdicts) never vary between runs
      z ^= z << 13;
      z ^= z >>> 17;
      z ^= z << 5;
      this.zobrist[i] = z;
    }
    this.bestState = model.init();
    this.state = model.init();
    this.newestFirst = model.unknownNewestFirst === true;
    // build entries sorted by time; calls before returns at equal times (closed intervals)
    const order = entryOrder(all, group, count);
    const callEntry = new Int32Array(n).fill(NIL);
    this.callEntryOf = callEntry;
    let rank = 0;
    for (let e = 0; e < count; e++) {
      const x = order[e] as number;
      const op = x >> 1;
      const call = (x & 1) === 0;
      this.entryOp[e] = op;
      this.entryIsCall[e] = call ? 1 : 0;
      this.prev[e] = e - 1;
      this.next[e] = e + 1 < count ? e + 1 : NIL;
      if (call) {
        callEntry[op] = e;
        if (!(all[group[op] as number] as CheckOp<I, O>).optional) this.requiredRank[op] = rank++;
      } else {
        this.matchReturn[callEntry[op] as number] = e;
      }
    }
    this.head = count > 0 ? 0 : NIL;
    this.entry = this.head;
    if (model.inputKey) {
      const lastByKey = new Map<string, number>();
      for (let e = 0; e < count; e++) {
        if (this.entryIsCall[e] === 0) continue;
        const local = this.entryOp[e] as number;
        const op = all[group[local] as number] as CheckOp<I, O>;
        if (!op.optional) continue;
        const key = model.inputKey(op.input);
        const before = lastByKey.get(key) ?? -1;
        this.twinBefore[local] = before;
        if (before >= 0) this.twinAfter[before] = local;
        lastByKey.set(key, local);
      }
    }
  }

  private readonly stackEntry: number[] = [];
  private readonly stackState: S[] = [];
  private readonly stackPhase: number[] = [];
  private readonly stackWalkStart: number[] = [];
  /** Where the current newest-first pass over unknown outcomes began (an entry; count at the end). */
  private walkStart = 0;
  private state: S;
  private entry: number;
  /**
   * Candidates are tried in two passes over the operations callable now: required ones
   * first (phase 0), then those with an unknown outcome (phase 1). A valid history rarely
   * needs its unknown operations, so it is found without trying them at every step.
   */
  private phase = 0;
  private readonly newestFirst: boolean;

  /**
   * Searches for at most `grant` model steps. Returns the verdict, or "unknown" when the
   * grant ran out first (call again to go on where it stopped).
   */
  run(grant: number): { verdict: Verdict; spent: number; order: number[]; failure?: Failure<S> } {
    const model = this.model;
    const stackEntry = this.stackEntry;
    const stackState = this.stackState;
    const stackPhase = this.stackPhase;
    let state = this.state;
    let entry = this.entry;
    let phase = this.phase;
    let spent = 0;
    for (;;) {
      if (this.requiredLeft === 0) {
        return { verdict: "linearizable", spent, order: stackEntry.map((e) => this.globalOp(e)) };
      }
      if (entry !== NIL && this.entryIsCall[entry] === 1) {
        const local = this.entryOp[entry] as number;
        const op = this.all[this.group[local] as number] as CheckOp<I, O>;
        // Wrong pass for this one; and symmetry among identical unknown-outcome operations:
        // trying one is trying them all, so only one of them is tried. Oldest first, that is
        // the earliest not yet placed; newest first, the newest called so far (an older twin
        // waits while a newer one, already passed in this pass, is not placed), which keeps
        // the newest-first order that finds the likely write (taking the oldest instead
        // made a long history's search guess wrong keys and backtrack far).
        if (
          op.optional !== (phase === 1) ||
          this.twinBlocked(local) ||
          (phase === 1 && model.rejectUnknown?.(state, op.input))
        ) {
          entry = (phase === 1 && this.newestFirst ? this.prev[entry] : this.next[entry]) as number;
          continue;
        }
        if (spent >= grant) {
          this.state = state;
          this.entry = entry;
          this.phase = phase;
          return { verdict: "unknown", spent, order: [] };
        }
        spent++;
        const next = model.step(state, op.input, op.output, op.optional);
        // An unknown-outcome operation with no effect here is never worth placing: leaving
        // it out is equivalent, and keeps it available for later.
        if (next !== undefined && !(op.optional && model.equal(next, state))) {
          this.mark(local, true);
          // Past an unplaced operation's deadline, that operation can never be placed.
          if (model.progress !== undefined && model.progress(next) > this.minDeadline()) {
            this.mark(local, false);
            entry = (phase === 1 && this.newestFirst ? this.prev[entry] : this.next[entry]) as number;
            continue;
          }
          if (this.remember(next)) {
            stackEntry.push(entry);
            stackState.push(state);
            stackPhase.push(phase);
            this.stackWalkStart.push(this.walkStart);
            state = next;
            this.lift(entry);
            entry = this.head;
            phase = 0;
            continue;
          }
          this.mark(local, false);
        }
        entry = (phase === 1 && this.newestFirst ? this.prev[entry] : this.next[entry]) as number;
        continue;
      }
      // A return entry (or the end): after the required pass, try the unknown outcomes
      // called before it (walking back from it when newest first).
      if (phase === 0) {
        phase = 1;
        this.walkStart = entry === NIL ? this.entryOp.length : entry;
        entry = this.newestFirst ? (entry === NIL ? NIL : (this.prev[entry] as number)) : this.head;
        continue;
      }
      // Both passes failed: some operation had to be placed before this return. Back up.
      if (stackEntry.length > this.bestDepth) this.recordBest(stackEntry, state);
      if (stackEntry.length === 0) {
        return {
          verdict: "not-linearizable",
          spent,
          order: [],
          failure: {
            partition: this.group,
            prefix: this.bestPrefix,
            stuck: this.bestStuck,
            state: this.bestState,
          },
        };
      }
      const top = stackEntry.pop() as number;
      state = stackState.pop() as S;
      phase = stackPhase.pop() as number;
      this.walkStart = this.stackWalkStart.pop() as number;
      this.mark(this.entryOp[top] as number, false);
      this.unlift(top);
      entry = (phase === 1 && this.newestFirst ? this.prev[top] : this.next[top]) as number;
    }
  }

  private globalOp(entry: number): number {
    return this.group[this.entryOp[entry] as number] as number;
  }

  private recordBest(stack: readonly number[], state: S): void {
    this.bestDepth = stack.length;
    this.bestPrefix = stack.map((e) => this.globalOp(e));
    this.bestState = state;
    const stuck: number[] = [];
    for (let e = this.head; e !== NIL; e = this.next[e] as number) {
      if (this.entryIsCall[e] === 0) {
        // the operation whose return forced the backtrack, if it is still open
        const op = this.globalOp(e);
        if (!stuck.includes(op)) stuck.push(op);
        break;
      }
      const op = this.globalOp(e);
      if (!(this.all[op] as CheckOp<I, O>).optional) stuck.push(op);
    }
    this.bestStuck = stuck;
  }

  private lift(entry: number): void {
    this.unlink(entry);
    const ret = this.matchReturn[entry] as number;
    if (ret !== NIL) this.unlink(ret);
  }

  private unlift(entry: number): void {
    const ret = this.matchReturn[entry] as number;
    if (ret !== NIL) this.relink(ret);
    this.relink(entry);
  }

  private unlink(e: number): void {
    const p = this.prev[e] as number;
    const n = this.next[e] as number;
    if (p !== NIL) this.next[p] = n;
    else this.head = n;
    if (n !== NIL) this.prev[n] = p;
  }

  private relink(e: number): void {
    const p = this.prev[e] as number;
    const n = this.next[e] as number;
    if (p !== NIL) this.next[p] = e;
    else this.head = e;
    if (n !== NIL) this.prev[n] = e;
  }

  /** Adds or removes an operation from the linearized set, keeping frontier and extras. */
  private bumpDeadline(slot: number, delta: number): void {
    for (let i = slot + this.leaves; i >= 1; i >>= 1) this.tree[i] = (this.tree[i] as number) + delta;
  }

  /** The earliest deadline among required ops not placed yet (Infinity if none). */
  private minDeadline(): number {
    if ((this.tree[1] as number) === 0) return Number.POSITIVE_INFINITY;
    let i = 1;
    while (i < this.leaves) i = (this.tree[2 * i] as number) > 0 ? 2 * i : 2 * i + 1;
    return this.deadlineValue[i - this.leaves] as number;
  }

  private twinBlocked(local: number): boolean {
    if (this.newestFirst) {
      const after = this.twinAfter[local] as number;
      return (
        after >= 0 && this.optionalPlaced[after] === 0 && (this.callEntryOf[after] as number) < this.walkStart
      );
    }
    const before = this.twinBefore[local] as number;
    return before >= 0 && this.optionalPlaced[before] === 0;
  }

  private mark(local: number, on: boolean): void {
    this.setHash ^= this.zobrist[local] as number;
    const slot = this.deadlineSlot[local] as number;
    if (slot >= 0) this.bumpDeadline(slot, on ? -1 : 1);
    const rank = this.requiredRank[local] as number;
    if (rank < 0) {
      this.optionalPlaced[local] = on ? 1 : 0;
      const list = this.optionalOn;
      if (on) {
        let i = list.length;
        while (i > 0 && (list[i - 1] as number) > local) i--;
        list.splice(i, 0, local);
      } else {
        list.splice(list.indexOf(local), 1);
      }
      return;
    }
    const lin = this.linearized;
    this.bits[rank >> 5] = (this.bits[rank >> 5] as number) ^ (1 << (rank & 31));
    if (on) {
      lin[rank] = 1;
      this.requiredLeft--;
      if (rank === this.frontier) {
        let f = rank + 1;
        while (f < lin.length && lin[f] === 1) {
          f++;
          this.extras--;
        }
        this.frontier = f;
      } else {
        this.extras++;
      }
    } else {
      lin[rank] = 0;
      this.requiredLeft++;
      if (rank < this.frontier) {
        this.extras += this.frontier - rank - 1;
        this.frontier = rank;
      } else {
        this.extras--;
      }
    }
  }

  /**
   * Records the configuration (linearized set, state) just reached. Returns false if it
   * was seen before: that path is already known to fail.
   */
  private remember(state: S): boolean {
    const h = (Math.imul(this.setHash, 0x27d4eb2d) ^ this.model.hash(state)) | 0;
    // The set's words from the frontier's word until every extra is covered.
    const first = this.frontier >> 5;
    let count = 0;
    let seen = 0;
    const bits = this.bits;
    const words = this.scratch;
    do {
      const w = bits[first + count] as number;
      words[count] = w;
      // bits at or above the frontier in this word
      seen += popcount(count === 0 ? w & ~((1 << (this.frontier & 31)) - 1) : w);
      count++;
    } while (seen < this.extras);
    if (this.memo.find(h, this.frontier, words, count, this.optionalOn, state, this.model.equal))
      return false;
    if (this.memo.size < this.maxCache) this.memo.add(h, this.frontier, words, count, this.optionalOn, state);
    return true;
  }
}
