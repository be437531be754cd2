// Linearizability of an etcd history, with the revision fast path.
//
// etcd answers every request with a header revision, and every write transaction takes
// exactly one revision, so a history carries most of its own order:
// 1. Settle unknown outcomes from evidence. Written values are unique, so a value that a
//    later response shows (with its mod revision) was written by exactly one operation,
//    which therefore took effect at that revision. An unknown write seen nowhere, when
//    every revision up to the highest one observed is taken by known writes, can only
//    have happened after all of them, invisibly, or not at all: it is dropped.
// 2. If every operation then has a forced place (a write at its revision, anything that
//    does not write in the group of the revision it saw), check in O(n log n): replay
//    the writes in revision order, order each group by a small local search, and check
//    real time across groups. Operations that failed with an error (no revision) are
//    placed in a group their time window allows.
// 3. Otherwise, or when step 2 cannot decide, run the full search on the settled history.
// Either way the verdict is the full search's: a test compares them on random histories.
import type { History, KeyValue, KvRequest, Operation, PutRequest } from "../../models/client/history.js";
import { isIndefinite } from "../../models/etcd/errors.js";
import {
  describeOutput,
  describeRequest,
  type EtcdOutput,
  type EtcdState,
  etcdModel,
  INITIAL_ETCD_STATE,
} from "./etcd.js";
import {
  type CheckOp,
  type CheckOptions,
  type CheckResult,
  checkLinearizability,
  DEFAULT_BUDGET_STEPS,
  type Model,
} from "./linearizability.js";

export type EtcdCheckOp = CheckOp<KvRequest, EtcdOutput>;

export interface EtcdCheckResult extends CheckResult<EtcdState> {
  /** The operations checked (index space of witness and failure), each with its source. */
  readonly ops: readonly EtcdCheckOp[];
  readonly sources: readonly Operation[];
  /** Which path decided: the revision fast path, or the full search. */
  readonly path: "fast" | "search";
  /** Unknown outcomes settled as applied, and dropped, before checking. */
  readonly settled: number;
  readonly dropped: number;
}

/**
 * The operations the linearizability check covers: serializable reads are left to the
 * stale-read check; reads with an unknown outcome, and calls that failed as unavailable,
 * tell nothing.
 */
export function toCheckOps(history: History): { ops: EtcdCheckOp[]; sources: Operation[] } {
  const ops: EtcdCheckOp[] = [];
  const sources: Operation[] = [];
  for (const op of history.operations) {
    const r = op.request;
    if (r.type === "range" && r.serializable) continue;
    const unknown = op.returnUs === null;
    if (unknown && !writes(r)) continue;
    // an unavailability error that returned took no effect and tells nothing of the state
    if (!unknown && op.response?.type === "error" && isIndefinite(op.response)) continue;
    ops.push({
      client: op.client,
      callUs: op.callUs,
      returnUs: unknown ? Number.POSITIVE_INFINITY : (op.returnUs as number),
      input: r,
      output: unknown || op.response === null ? { type: "persisted", revision: null } : op.response,
      optional: unknown,
    });
    sources.push(op);
  }
  return { ops, sources };
}

function writes(r: KvRequest): boolean {
  if (r.type === "range") return false;
  if (r.type === "txn") return [...r.success, ...r.failure].some((o) => o.type !== "range");
  return true;
}

const NO_PUTS: readonly PutRequest[] = [];

/** The puts of a request (a txn's in both branches); most requests have none, or one. */
function putsOf(r: KvRequest): readonly PutRequest[] {
  if (r.type === "put") return [r];
  if (r.type !== "txn") return NO_PUTS;
  const out: PutRequest[] = [];
  for (const o of r.success) if (o.type === "put") out.push(o);
  for (const o of r.failure) if (o.type === "put") out.push(o);
  return out;
}

/** Every key-value a response shows (reads, previous values), with the revision it names. */
function observedKvs(resp: EtcdOutput, into: (kv: KeyValue) => void): void {
  switch (resp.type) {
    case "range":
      for (const kv of resp.kvs) into(kv);
      break;
    case "put":
      if (resp.prevKv) into(resp.prevKv);
      break;
    case "delete":
      for (const kv of resp.prevKvs ?? []) into(kv);
      break;
    case "txn":
      for (const r of resp.responses) observedKvs(r as EtcdOutput, into);
      break;
  }
}

/** Whether a known, successful response took a new revision (and so claims it). */
function claimsRevision(input: KvRequest, output: EtcdOutput): boolean | "maybe" {
  switch (output.type) {
    case "put":
      return true;
    case "delete":
      return output.deleted > 0;
    case "txn": {
      if (input.type !== "txn") return false;
      const branch = output.succeeded ? input.success : input.failure;
      return output.responses.some(
        (r, i) => branch[i]?.type === "put" || (r.type === "delete" && r.deleted > 0),
      );
    }
    case "lease-revoke":
      return "maybe"; // bumps only if the lease had keys
    case "persisted":
      return output.revision !== null;
    default:
      return false;
  }
}

function revisionOf(output: EtcdOutput): number | null {
  if (output.type === "error") return null;
  if (output.type === "persisted") return output.revision;
  return output.revision;
}

/** Lease ids an operation depends on, and whether it saw the lease alive. */
function leaseUse(input: KvRequest, output: EtcdOutput): { id: number; alive: boolean }[] {
  const out: { id: number; alive: boolean }[] = [];
  const ok = output.type !== "error";
  const lost = output.type === "error" && output.code === "NotFound";
  for (const p of putsOf(input)) if (p.lease) out.push({ id: p.lease, alive: ok && !lost });
  if (input.type === "lease-revoke") out.push({ id: input.id, alive: ok });
  return out;
}

/** The value given to unknown puts whose own value no response shows (see settleUnknown). */
export const UNSEEN_VALUE = "\u0000(a value never read)";

/** Step 1: settle unknown outcomes from evidence; returns the new operation list. */
export interface Settled {
  readonly ops: EtcdCheckOp[];
  readonly settled: number;
  readonly dropped: number;
  /** Indexes into the input of the operations kept. */
  readonly kept: number[];
  /** Revisions that known (or settled) writes certainly took. */
  readonly claimed: ReadonlySet<number>;
  /** The highest revision any response showed. */
  readonly maxRevision: number;
  /** What latest reads showed, per key. */
  readonly reads: Map<string, [number, number][]>;
}

/** `base`: the revision the store starts at (1, or an epoch's after a restore). */
export function settleUnknown(ops: readonly EtcdCheckOp[], base = 1): Settled {
  if (!ops.some((op) => op.optional)) return nothingToSettle(ops, base);
  // Only the values that unknown puts wrote are asked about below (who else wrote them,
  // and where a read showed them): the rest is not recorded. By key, then value: no
  // string built per put and per key-value read.
  const wanted = new Map<string, Set<string>>();
  for (const op of ops) {
    if (!op.optional) continue;
    for (const p of putsOf(op.input)) {
      let values = wanted.get(p.key);
      if (!values) wanted.set(p.key, (values = new Set()));
      values.add(p.value);
    }
  }
  const isWanted = (key: string, value: string) => wanted.size > 0 && wanted.get(key)?.has(value) === true;
  const writers = new Map<string, Map<string, number[]>>();
  ops.forEach((op, i) => {
    for (const p of putsOf(op.input)) {
      if (!isWanted(p.key, p.value)) continue;
      let byValue = writers.get(p.key);
      if (!byValue) writers.set(p.key, (byValue = new Map()));
      const list = byValue.get(p.value);
      if (list) list.push(i);
      else byValue.set(p.value, [i]);
    }
  });
  const seenAt = new Map<string, Map<string, number>>();
  let maxRev = base;
  const claimed = new Set<number>();
  const maybeClaimed = new Set<number>();
  /** per lease id: whether any known operation saw it alive, or used it at all */
  const leaseAlive = new Map<number, boolean>();
  /** the lowest revision any read at a revision, or compaction, asks for */
  let minPastArg = Number.POSITIVE_INFINITY;
  const observe = (kv: KeyValue) => {
    if (kv.lease) leaseAlive.set(kv.lease, true);
    if (!isWanted(kv.key, kv.value)) return;
    let byValue = seenAt.get(kv.key);
    if (!byValue) seenAt.set(kv.key, (byValue = new Map()));
    byValue.set(kv.value, kv.modRevision);
  };
  for (const op of ops) {
    if (op.optional) continue;
    observedKvs(op.output, observe);
    for (const u of leaseUse(op.input, op.output))
      leaseAlive.set(u.id, (leaseAlive.get(u.id) ?? false) || u.alive);
    if (op.input.type === "range" && op.input.revision) minPastArg = Math.min(minPastArg, op.input.revision);
    if (op.input.type === "compact") minPastArg = Math.min(minPastArg, op.input.revision);
    const rev = revisionOf(op.output);
    if (rev !== null) {
      maxRev = Math.max(maxRev, rev);
      // A revoke's header is the revision it took if its lease had keys, else one that
      // someone else made: it may or may not have claimed it.
      const claims = claimsRevision(op.input, op.output);
      if (claims === true) claimed.add(rev);
      else if (claims === "maybe") maybeClaimed.add(rev);
    }
  }
  let settled = 0;
  const dropIt = new Set<number>();
  const out: EtcdCheckOp[] = ops.map((op, i) => {
    if (!op.optional) return op;
    // a unique value seen later: applied, at the revision it was seen with
    for (const p of putsOf(op.input)) {
      const at = seenAt.get(p.key)?.get(p.value);
      const w = writers.get(p.key)?.get(p.value) ?? [];
      if (at !== undefined && w.length === 1 && w[0] === i) {
        settled++;
        claimed.add(at);
        maxRev = Math.max(maxRev, at);
        return { ...op, optional: false, output: { type: "persisted", revision: at } };
      }
    }
    if (op.input.type === "lease-grant") {
      const used = leaseAlive.get(op.input.id);
      // seen alive: it was granted; never used, or only found missing: as if never granted
      if (used === true) {
        settled++;
        return { ...op, optional: false, output: { type: "persisted", revision: null } };
      }
      dropIt.add(i);
    }
    // a compaction nothing could notice (no read or compaction at or below its revision)
    if (op.input.type === "compact" && op.input.revision < minPastArg) dropIt.add(i);
    return op;
  });
  // A revision no known write took must have been taken by an unknown write: if only one
  // unknown write could have taken it (called before anything saw that revision), it did.
  // (A revision a known revoke may have taken is no such gap.)
  const gaps: number[] = [];
  for (let r = base + 1; r <= maxRev; r++) if (!claimed.has(r) && !maybeClaimed.has(r)) gaps.push(r);
  if (gaps.length > 0) {
    const firstSeen = new Map<number, number>(); // revision -> earliest return of an op seeing >= it
    const seen = out
      .filter((o) => !o.optional && revisionOf(o.output) !== null)
      .sort((a, b) => (revisionOf(b.output) as number) - (revisionOf(a.output) as number));
    let minRet = Number.POSITIVE_INFINITY;
    let k = 0;
    for (let r = maxRev; r > base; r--) {
      while (k < seen.length && (revisionOf((seen[k] as EtcdCheckOp).output) as number) >= r)
        minRet = Math.min(minRet, (seen[k++] as EtcdCheckOp).returnUs);
      firstSeen.set(r, minRet);
    }
    const reads = latestReads(out);
    // A write at revision r is ruled out by a later read that shows its key as it was
    // before r: that read would have seen the write. A txn needs one branch that fits.
    const possible = (o: EtcdCheckOp, r: number): boolean => {
      const input = o.input;
      if (input.type === "put") return writeFits(reads, input.key, r);
      if (input.type === "txn") {
        return [input.success, input.failure].some(
          (branch) =>
            branch.some((b) => b.type !== "range") &&
            branch.every((b) => b.type !== "put" || writeFits(reads, b.key, r)),
        );
      }
      return true;
    };
    // Any unknown operation that can take a revision is a candidate; a revoke can (when
    // its lease had keys).
    const canTake = (o: EtcdCheckOp) => bumps(o.input) || o.input.type === "lease-revoke";
    const unknownIdx = out.map((o, i) => (o.optional && canTake(o) ? i : -1)).filter((i) => i >= 0);
    const candidates = gaps.map((r) =>
      unknownIdx.filter(
        (i) =>
          (out[i] as EtcdCheckOp).callUs <= (firstSeen.get(r) as number) &&
          possible(out[i] as EtcdCheckOp, r),
      ),
    );
    // Settle gaps with a single candidate, repeatedly (taking one narrows the others).
    for (let changed = true; changed; ) {
      changed = false;
      gaps.forEach((r, g) => {
        if (claimed.has(r)) return;
        const c = (candidates[g] as number[]).filter((i) => out[i]?.optional);
        if (c.length !== 1) return;
        const i = c[0] as number;
        settled++;
        claimed.add(r);
        out[i] = { ...(out[i] as EtcdCheckOp), optional: false, output: { type: "persisted", revision: r } };
        changed = true;
      });
    }
  }
  // Revisions an unknown operation may still have taken: unfilled gaps, and those a
  // known revoke may not have taken after all.
  const free =
    gaps.filter((r) => !claimed.has(r)).length + [...maybeClaimed].filter((r) => !claimed.has(r)).length;
  // An unknown revoke without a free revision deleted no keys; if nothing saw its lease
  // missing afterwards, it made no difference before the end.
  out.forEach((op, i) => {
    if (!op.optional || op.input.type !== "lease-revoke" || free > 0) return;
    const id = op.input.id;
    const noticed = out.some(
      (o) =>
        !o.optional &&
        o.returnUs > op.callUs &&
        leaseUse(o.input, o.output).some((u) => u.id === id && !u.alive),
    );
    if (!noticed) dropIt.add(i);
  });
  // An unknown put whose value no response ever shows, on a key no txn compares by value,
  // matters only by the revision and version it takes: its value can be any other never
  // seen. Giving all of those one placeholder per key makes them twins, tried one at a
  // time (without it, a crash that leaves many puts unknown explodes the search).
  const valueCompared = new Set<string>();
  for (const op of out)
    if (op.input.type === "txn")
      for (const c of op.input.compare) if (c.target === "VALUE") valueCompared.add(c.key);
  let dropped = 0;
  const kept: number[] = [];
  const result: EtcdCheckOp[] = [];
  out.forEach((op, i) => {
    // Without a free revision, an unknown put, delete or txn either did nothing visible or
    // happened after everything: leaving it out is equivalent.
    if (op.optional && ((free === 0 && bumps(op.input)) || dropIt.has(i))) {
      dropped++;
      return;
    }
    kept.push(i);
    const input = op.input;
    if (
      op.optional &&
      input.type === "put" &&
      !seenAt.get(input.key)?.has(input.value) &&
      !valueCompared.has(input.key)
    ) {
      result.push({ ...op, input: { ...input, value: UNSEEN_VALUE } });
      return;
    }
    result.push(op);
  });
  const certain = new Set<number>();
  for (const op of result) {
    const rev = revisionOf(op.output);
    if (!op.optional && rev !== null && claimsRevision(op.input, op.output) === true) certain.add(rev);
  }
  return {
    ops: result,
    settled,
    dropped,
    kept,
    claimed: certain,
    maxRevision: maxRev,
    // only unknown writes are pruned by what reads showed
    reads: result.some((o) => o.optional) ? latestReads(result) : new Map(),
  };
}

/**
 * `settleUnknown` when every outcome is known (the simulator's reference settles them
 * all): nothing to settle or drop, only the revisions the writes took.
 */
function nothingToSettle(ops: readonly EtcdCheckOp[], base: number): Settled {
  let maxRevision = base;
  const claimed = new Set<number>();
  const kept: number[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as EtcdCheckOp;
    kept.push(i);
    const rev = revisionOf(op.output);
    if (rev === null) continue;
    if (rev > maxRevision) maxRevision = rev;
    if (claimsRevision(op.input, op.output) === true) claimed.add(rev);
  }
  return { ops: [...ops], settled: 0, dropped: 0, kept, claimed, maxRevision, reads: new Map() };
}

/**
 * What latest reads showed: per key, (header revision, mod revision seen). Only keys a
 * read shows present count: an absent key may have been written and deleted since.
 */
function latestReads(ops: readonly EtcdCheckOp[]): Map<string, [number, number][]> {
  const byKey = new Map<string, [number, number][]>();
  for (const o of ops) {
    if (
      o.optional ||
      o.input.type !== "range" ||
      o.input.revision ||
      o.output.type !== "range" ||
      o.input.countOnly
    )
      continue;
    for (const kv of o.output.kvs) {
      const list = byKey.get(kv.key);
      const entry: [number, number] = [o.output.revision, kv.modRevision];
      if (list) list.push(entry);
      else byKey.set(kv.key, [entry]);
    }
  }
  return byKey;
}

/**
 * Whether writing `key` at revision r fits what later reads show: a latest read with
 * header revision >= r that shows the key with a mod revision below r saw no write to
 * it in between, so there was none at r.
 */
function writeFits(reads: Map<string, [number, number][]>, key: string, r: number): boolean {
  for (const [h, m] of reads.get(key) ?? []) if (h >= r && m < r) return false;
  return true;
}

/** A request whose only possible effects are a new revision, or nothing. */
function bumps(r: KvRequest): boolean {
  return r.type === "put" || r.type === "delete" || r.type === "txn";
}

/**
 * The etcd model for a settled history, pruned with what the revisions and later reads
 * say: an unknown outcome can only take a revision that no known write took, none
 * beyond the highest revision seen (after all responses it would change nothing), and
 * only if no later read shows one of the keys it changes as it was before.
 */
function withRevisionPruning(
  claimed: ReadonlySet<number>,
  maxRevision: number,
  reads: Map<string, [number, number][]>,
  initial: EtcdState,
): Model<EtcdState, KvRequest, EtcdOutput> {
  // spelt out, every field in one order: the search reads the model on every step, and
  // models spread from others (one for each start state) deoptimized it run after run
  return {
    init: () => initial,
    hash: etcdModel.hash,
    equal: etcdModel.equal,
    inputKey: etcdModel.inputKey,
    describeOperation: etcdModel.describeOperation,
    describeState: etcdModel.describeState,
    progress: (s) => s.revision,
    unknownNewestFirst: true,
    // an unknown write cannot take a revision a known write took, nor one past all seen
    rejectUnknown: (s, input) =>
      bumps(input) && (claimed.has(s.revision + 1) || s.revision + 1 > maxRevision),
    step(state, input, output, unknown) {
      const next = etcdModel.step(state, input, output, unknown);
      if (!unknown || next === undefined || next.revision === state.revision) return next;
      const r = next.revision;
      if (claimed.has(r) || r > maxRevision) return undefined;
      for (const key of changedKeys(state, next)) if (!writeFits(reads, key, r)) return undefined;
      return next;
    },
  };
}

/** Keys whose value differs between two states (written or deleted). */
function changedKeys(a: EtcdState, b: EtcdState): string[] {
  const out: string[] = [];
  for (const k of b.kvs.keys) if (a.kvs.get(k) !== b.kvs.get(k)) out.push(k);
  for (const k of a.kvs.keys) if (!b.kvs.has(k)) out.push(k);
  return out;
}

/** One slot of the forced order: the write at a revision, or the group that saw a revision. */
interface Unit {
  readonly revision: number;
  readonly write: boolean;
  readonly ops: number[];
}

type FastVerdict =
  | { verdict: "linearizable"; order: number[] }
  | { verdict: "not-linearizable"; at: number[] }
  | { verdict: "undecided" };

/** Step 2: the positional check. */
function fastCheck(ops: readonly EtcdCheckOp[], budget: { left: number }, initial: EtcdState): FastVerdict {
  const base = initial.revision;
  if (ops.some((o) => o.optional)) return { verdict: "undecided" };
  const writeAt = new Map<number, number>();
  const groupAt = new Map<number, number[]>();
  const floating: number[] = [];
  let maxRev = base;
  // Revokes bump the revision only when the lease had keys: at a revision some other
  // write certainly made, none did; at one only revokes answered with, a lone revoke did,
  // and two or more are for the full search to tell apart.
  const certain = new Set<number>();
  const maybes = new Map<number, number>();
  for (const op of ops) {
    const rev = revisionOf(op.output);
    if (rev === null) continue;
    const c = claimsRevision(op.input, op.output);
    if (c === true) certain.add(rev);
    else if (c === "maybe") maybes.set(rev, (maybes.get(rev) ?? 0) + 1);
  }
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as EtcdCheckOp;
    const rev = revisionOf(op.output);
    if (rev === null) {
      floating.push(i);
      continue;
    }
    maxRev = Math.max(maxRev, rev);
    let claims = claimsRevision(op.input, op.output);
    if (claims === "maybe") {
      if (certain.has(rev)) claims = false;
      else if ((maybes.get(rev) as number) > 1) return { verdict: "undecided" };
      else claims = true;
    }
    if (claims) {
      // a write always makes a revision later than the one the store starts at
      if (rev <= base) return { verdict: "not-linearizable", at: [i] };
      if (writeAt.has(rev)) return { verdict: "not-linearizable", at: [writeAt.get(rev) as number, i] };
      writeAt.set(rev, i);
    } else {
      const g = groupAt.get(rev);
      if (g) g.push(i);
      else groupAt.set(rev, [i]);
    }
  }
  for (let r = base + 1; r <= maxRev; r++) if (!writeAt.has(r)) return { verdict: "undecided" }; // a gap no known write fills
  const units: Unit[] = [];
  for (let r = base; r <= maxRev; r++) {
    if (r > base) units.push({ revision: r, write: true, ops: [writeAt.get(r) as number] });
    units.push({ revision: r, write: false, ops: groupAt.get(r) ?? [] });
  }
  // Floating operations go to the earliest group their time window allows and their
  // answer fits; if none fits or the group then fails, the full search decides.
  const unitOf = new Int32Array(ops.length).fill(-1);
  units.forEach((u, k) => {
    for (const i of u.ops) unitOf[i] = k;
  });
  if (floating.length > 0) {
    const byReturn = units.map((u) => Math.min(...u.ops.map((i) => (ops[i] as EtcdCheckOp).returnUs)));
    const byCall = units.map((u) => Math.max(...u.ops.map((i) => (ops[i] as EtcdCheckOp).callUs)));
    const states = replayStates(units, ops, initial);
    if (states === null) return { verdict: "undecided" };
    for (const f of floating) {
      const op = ops[f] as EtcdCheckOp;
      let lo = 0;
      let hi = units.length - 1;
      units.forEach((u, k) => {
        if (u.ops.length === 0) return;
        if ((byReturn[k] as number) < op.callUs) lo = Math.max(lo, u.write ? k + 1 : k);
        if ((byCall[k] as number) > op.returnUs) hi = Math.min(hi, u.write ? k - 1 : k);
      });
      let placed = false;
      for (let k = lo; k <= hi && !placed; k++) {
        const u = units[k] as Unit;
        if (u.write) continue;
        const st = states[k] as EtcdState;
        if (--budget.left < 0) return { verdict: "undecided" };
        if (etcdModel.step(st, op.input, op.output, false) !== undefined) {
          u.ops.push(f);
          placed = true;
        }
      }
      if (!placed) return { verdict: "undecided" };
    }
  }
  // Real time across units: nothing in a later unit may return before something in an
  // earlier one was called.
  let minReturnAfter = Number.POSITIVE_INFINITY;
  let minReturnOp = -1;
  for (let k = units.length - 1; k >= 0; k--) {
    const u = units[k] as Unit;
    for (const i of u.ops) {
      if ((ops[i] as EtcdCheckOp).callUs > minReturnAfter) {
        return floating.length > 0
          ? { verdict: "undecided" }
          : { verdict: "not-linearizable", at: [i, minReturnOp] };
      }
    }
    for (const i of u.ops) {
      const r = (ops[i] as EtcdCheckOp).returnUs;
      if (r < minReturnAfter) {
        minReturnAfter = r;
        minReturnOp = i;
      }
    }
  }
  // Replay: each write steps the model; each group is ordered by a local search.
  let state = initial;
  const order: number[] = [];
  for (const u of units) {
    if (u.ops.length === 0) continue;
    if (u.write || u.ops.length === 1) {
      // a write, or a lone read: nothing to order
      const i = u.ops[0] as number;
      const op = ops[i] as EtcdCheckOp;
      if (--budget.left < 0) return { verdict: "undecided" };
      const next = etcdModel.step(state, op.input, op.output, false);
      if (next === undefined)
        return floating.length > 0 ? { verdict: "undecided" } : { verdict: "not-linearizable", at: [i] };
      state = next;
      order.push(i);
      continue;
    }
    const start = state;
    const local: Model<EtcdState, KvRequest, EtcdOutput> = { ...etcdModel, init: () => start };
    const sub = u.ops.map((i) => ops[i] as EtcdCheckOp);
    const r = checkLinearizability(local, sub, { budgetSteps: Math.max(1, budget.left) });
    budget.left -= r.steps;
    if (r.verdict !== "linearizable") {
      return r.verdict === "not-linearizable" && floating.length === 0
        ? { verdict: "not-linearizable", at: u.ops }
        : { verdict: "undecided" };
    }
    const localOrder = (r.witness?.[0] ?? []).map((k) => u.ops[k] as number);
    for (const i of localOrder)
      state = etcdModel.step(
        state,
        (ops[i] as EtcdCheckOp).input,
        (ops[i] as EtcdCheckOp).output,
        false,
      ) as EtcdState;
    order.push(...localOrder);
  }
  // Every operation must be in the witness; anything else is a bug here, not a verdict.
  if (order.length !== ops.length) return { verdict: "undecided" };
  return { verdict: "linearizable", order };
}

/**
 * The model state at the start of each unit: writes are stepped (they must fit), and
 * the effects of a group's operations (compactions, lease grants) applied in any order,
 * which gives the same state whenever the group can be ordered at all.
 */
function replayStates(
  units: readonly Unit[],
  ops: readonly EtcdCheckOp[],
  initial: EtcdState,
): EtcdState[] | null {
  const states: EtcdState[] = [];
  let state = initial;
  for (const u of units) {
    states.push(state);
    for (const i of u.ops) {
      const op = ops[i] as EtcdCheckOp;
      const next = etcdModel.step(state, op.input, op.output, !u.write);
      if (next === undefined) return null;
      state = next;
    }
  }
  return states;
}

/** The quick search's budget, per operation (see checkEtcdOps). */
const QUICK_STEPS_PER_OP = 3;

export interface EtcdCheckOptions extends CheckOptions {
  /** Skip the fast path (to compare the two). */
  readonly fullSearchOnly?: boolean;
  /** Steps per operation for the full search tried before the fast path (0: none). */
  readonly quickStepsPerOp?: number;
  /** Skip settling unknown outcomes (the raw full search). */
  readonly noSettle?: boolean;
  /** The store before the first operation (default: empty, at revision 1). */
  readonly initial?: EtcdState;
}

export function checkEtcdHistory(history: History, options: EtcdCheckOptions = {}): EtcdCheckResult {
  const { ops: raw, sources: rawSources } = toCheckOps(history);
  return checkEtcdOps(raw, rawSources, options);
}

export function checkEtcdOps(
  raw: readonly EtcdCheckOp[],
  rawSources: readonly Operation[],
  options: EtcdCheckOptions = {},
): EtcdCheckResult {
  const initial = options.initial ?? INITIAL_ETCD_STATE;
  const s = options.noSettle ? null : settleUnknown(raw, initial.revision);
  const ops = s ? s.ops : [...raw];
  const model = s
    ? withRevisionPruning(s.claimed, s.maxRevision, s.reads, initial)
    : initial === INITIAL_ETCD_STATE
      ? etcdModel
      : { ...etcdModel, init: () => initial };
  if (s) {
    // Each operation that answered with a revision must be placed while the store is at
    // it: a deadline for the search.
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as EtcdCheckOp;
      const rev = revisionOf(op.output);
      // spelt out: a spread with an added field takes V8's slow path (thousands per run)
      if (!op.optional && rev !== null)
        ops[i] = {
          client: op.client,
          callUs: op.callUs,
          returnUs: op.returnUs,
          input: op.input,
          output: op.output,
          optional: false,
          deadline: rev,
        };
    }
  }
  const sources = s ? s.kept.map((i) => rawSources[i] as Operation) : [...rawSources];
  const base = { ops, sources, settled: s?.settled ?? 0, dropped: s?.dropped ?? 0 };
  const budget = { left: options.budgetSteps ?? DEFAULT_BUDGET_STEPS };
  if (!options.fullSearchOnly) {
    // A short full search first: on most histories it takes little more than one step
    // per operation, and costs half of the fast path's two replays; a hard one spends
    // only this small budget before the fast path takes over.
    const quickSteps = Math.min(budget.left, (options.quickStepsPerOp ?? QUICK_STEPS_PER_OP) * ops.length);
    if (quickSteps > 0) {
      const q = checkLinearizability(model, ops, { ...options, budgetSteps: quickSteps });
      if (q.verdict !== "unknown") return { ...base, ...q, path: "search" };
      budget.left -= q.steps;
    }
    const before = budget.left;
    const fast = fastCheck(ops, budget, initial);
    const steps = before - Math.max(0, budget.left);
    if (fast.verdict === "linearizable")
      return { ...base, verdict: "linearizable", steps, witness: [fast.order], path: "fast" };
    if (fast.verdict === "not-linearizable") {
      // The full search confirms, and says where, for the report; its verdict stands.
      const r = checkLinearizability(model, ops, { ...options, budgetSteps: Math.max(1, budget.left) });
      if (r.verdict === "linearizable") return { ...base, ...r, steps: steps + r.steps, path: "search" };
      const failure = r.failure ?? {
        partition: ops.map((_, i) => i),
        prefix: [],
        stuck: fast.at,
        state: initial,
      };
      return { ...base, verdict: "not-linearizable", steps: steps + r.steps, failure, path: "fast" };
    }
  }
  const r = checkLinearizability(model, ops, { ...options, budgetSteps: Math.max(1, budget.left) });
  return { ...base, ...r, path: "search" };
}

/** Lines that explain a failed check: where the search got stuck, and with what. */
export function explainEtcdFailure(r: EtcdCheckResult): string[] {
  const f = r.failure;
  if (!f) return [];
  const at = (i: number) => {
    const op = r.ops[i] as EtcdCheckOp;
    const src = r.sources[i];
    const when = `${(op.callUs / 1000).toFixed(3)}ms..${Number.isFinite(op.returnUs) ? `${(op.returnUs / 1000).toFixed(3)}ms` : "never returned"}`;
    return `client ${op.client}${src?.member ? ` via ${src.member}` : ""} [${when}] ${describeRequest(op.input)} -> ${op.optional ? "?" : describeOutput(op.output)}`;
  };
  const lines = [
    `the longest linearizable prefix has ${f.prefix.length} of ${r.ops.length} operations; after it the store is at revision ${f.state.revision} (compacted at ${f.state.compactRevision})`,
  ];
  const last = f.prefix.slice(-3);
  if (last.length > 0) lines.push("the prefix ends with:", ...last.map((i) => `  ${at(i)}`));
  lines.push("none of these could be placed next:", ...f.stuck.map((i) => `  ${at(i)}`));
  return lines;
}
