// The sequential specification of etcd's KV API, for the linearizability check: a state
// (revision, compact revision, keys with their create/mod revisions, versions and
// leases, live leases) and the effect and answer of each request, as etcd v3.5 gives
// them. It is written from etcd's documented rules, independently of the server model
// under test:
// - every write transaction takes one revision; a delete of nothing and a read-only txn
//   take none; a put always does;
// - a txn runs exactly one branch; its reads see its own earlier writes;
// - a range at a past revision answers from history, which this model does not keep:
//   only its header revision (and errors) are checked here, the content by the
//   stale-read check against the reference history;
// - compaction, lease grant and revoke change the state (a revoke deletes the lease's
//   keys in one revision).
import {
  type Compare,
  type DeleteRequest,
  type ErrorResponse,
  type KeyValue,
  type KvRequest,
  type KvResponse,
  type PutRequest,
  type RangeRequest,
  type TxnOp,
  type TxnOpResponse,
  withoutValue,
} from "../../models/client/history.js";
import type { StoreState } from "../../models/etcd/cluster.js";
import { Errors, MAX_TXN_OPS } from "../../models/etcd/errors.js";
import { hashString } from "../../sim/index.js";
import type { Model } from "./linearizability.js";

/** What a checked operation answered: a response, an error, or only that it was persisted. */
export type EtcdOutput = KvResponse | ErrorResponse | PersistedOutput;

/** An unknown outcome settled by evidence: it took effect (at `revision`, when known). */
export interface PersistedOutput {
  readonly type: "persisted";
  readonly revision: number | null;
}

/**
 * A set of lease ids, copied on write by bucket: a change copies one small bucket and
 * the bucket table, never the whole set (a long history holds thousands of leases).
 */
export class LeaseSet {
  static readonly BUCKETS = 64;
  static readonly empty = new LeaseSet(new Array<readonly number[]>(LeaseSet.BUCKETS).fill([]), 0);

  private constructor(
    private readonly buckets: readonly (readonly number[])[],
    readonly size: number,
  ) {}

  has(id: number): boolean {
    return (this.buckets[id & (LeaseSet.BUCKETS - 1)] as readonly number[]).includes(id);
  }

  with(id: number, alive: boolean): LeaseSet {
    if (this.has(id) === alive) return this;
    const b = id & (LeaseSet.BUCKETS - 1);
    const buckets = this.buckets.slice();
    const old = buckets[b] as readonly number[];
    buckets[b] = alive ? [...old, id] : old.filter((x) => x !== id);
    return new LeaseSet(buckets, this.size + (alive ? 1 : -1));
  }

  /** Whether both hold the same ids. */
  same(o: LeaseSet): boolean {
    if (this.size !== o.size) return false;
    for (let b = 0; b < LeaseSet.BUCKETS; b++) {
      const x = this.buckets[b] as readonly number[];
      const y = o.buckets[b] as readonly number[];
      if (x === y) continue;
      if (x.length !== y.length || !x.every((id) => y.includes(id))) return false;
    }
    return true;
  }
}

/**
 * A key as the store holds it: a client's key-value itself, so that reads and previous
 * values hand out the stored object (immutable) instead of a copy each time.
 */
type Kv = KeyValue;

/**
 * A state's keys in ascending order with their values, as two parallel arrays: a change
 * copies both with a slice (a memcpy) where a Map copy rehashed every key, and the
 * specification copies a state on every write it tries.
 */
export class KvTable {
  static readonly empty = new KvTable([], []);

  constructor(
    readonly keys: readonly string[],
    readonly values: readonly Kv[],
  ) {}

  get size(): number {
    return this.keys.length;
  }

  /** The key's position, or -(insertion point) - 1 when absent. */
  find(key: string): number {
    return findKey(this.keys, key);
  }

  get(key: string): Kv | undefined {
    const i = findKey(this.keys, key);
    return i >= 0 ? this.values[i] : undefined;
  }

  has(key: string): boolean {
    return findKey(this.keys, key) >= 0;
  }
}

function findKey(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const k = keys[mid] as string;
    if (k === key) return mid;
    if (k < key) lo = mid + 1;
    else hi = mid;
  }
  return -lo - 1;
}

export interface EtcdState {
  readonly revision: number;
  readonly compactRevision: number;
  readonly kvs: KvTable;
  readonly leases: LeaseSet;
  /** XOR of per-key and per-lease hashes, kept as the state changes. */
  readonly contentHash: number;
}

export const INITIAL_ETCD_STATE: EtcdState = {
  revision: 1,
  compactRevision: -1,
  kvs: KvTable.empty,
  leases: LeaseSet.empty,
  contentHash: 0,
};

/** A store holding `kvs` and `leases` at `revision` (an epoch's start after a restore). */
export function etcdStateOf(o: StoreState): EtcdState {
  const byKey = new Map<string, Kv>();
  for (const x of o.kvs)
    byKey.set(x.key, {
      key: x.key,
      value: x.value,
      createRevision: x.createRevision,
      modRevision: x.modRevision,
      version: x.version,
      lease: x.lease,
    });
  const keys = [...byKey.keys()].sort();
  const values = keys.map((k) => byKey.get(k) as Kv);
  let contentHash = 0;
  keys.forEach((k, i) => {
    contentHash ^= kvHash(k, values[i] as Kv);
  });
  let leases = LeaseSet.empty;
  for (const id of o.leases) {
    leases = leases.with(id, true);
    contentHash ^= leaseHash(id);
  }
  return {
    revision: o.revision,
    compactRevision: o.compactRevision,
    kvs: new KvTable(keys, values),
    leases,
    contentHash,
  };
}

function kvHash(key: string, kv: Kv): number {
  let h = hashString(key) ^ Math.imul(hashString(kv.value), 0x9e3779b1);
  h = Math.imul(h ^ kv.modRevision, 0x85ebca6b) ^ Math.imul(kv.createRevision + 7 * kv.version, 0xc2b2ae35);
  return (h ^ Math.imul(kv.lease, 0x27d4eb2d)) | 0;
}

function leaseHash(id: number): number {
  return Math.imul(id ^ 0x5bd1e995, 0x1b873593) | 0;
}

/** True when `key` falls in etcd's range [key, rangeEnd). */
export function inRange(key: string, from: string, rangeEnd: string | undefined): boolean {
  if (rangeEnd === undefined || rangeEnd === "") return key === from;
  if (rangeEnd === "\0") return key >= from;
  return key >= from && key < rangeEnd;
}

/** A key as a client would see it in `state` (undefined: absent). */
export function keyValueAt(state: EtcdState, key: string): KeyValue | undefined {
  return state.kvs.get(key);
}

/** A state under construction: copies the key table on the first change only. */
class Draft {
  keys: string[] | null = null;
  values: Kv[] | null = null;
  leases: LeaseSet;
  contentHash: number;
  changed = false;

  constructor(readonly base: EtcdState) {
    this.contentHash = base.contentHash;
    this.leases = base.leases;
  }

  get(key: string): Kv | undefined {
    if (this.keys === null) return this.base.kvs.get(key);
    const i = findKey(this.keys, key);
    return i >= 0 ? (this.values as Kv[])[i] : undefined;
  }

  currentKeys(): readonly string[] {
    return this.keys ?? this.base.kvs.keys;
  }

  hasLease(id: number): boolean {
    return this.leases.has(id);
  }

  private own(): void {
    if (this.keys !== null) return;
    this.keys = this.base.kvs.keys.slice();
    this.values = this.base.kvs.values.slice();
  }

  put(key: string, kv: Kv): void {
    this.own();
    const keys = this.keys as string[];
    const values = this.values as Kv[];
    const i = findKey(keys, key);
    if (i >= 0) {
      this.contentHash ^= kvHash(key, values[i] as Kv);
      values[i] = kv;
    } else {
      keys.splice(-i - 1, 0, key);
      values.splice(-i - 1, 0, kv);
    }
    this.contentHash ^= kvHash(key, kv);
    this.changed = true;
  }

  delete(key: string): void {
    const i = findKey(this.currentKeys(), key);
    if (i < 0) return;
    this.own();
    const values = this.values as Kv[];
    this.contentHash ^= kvHash(key, values[i] as Kv);
    (this.keys as string[]).splice(i, 1);
    values.splice(i, 1);
    this.changed = true;
  }

  setLease(id: number, alive: boolean): void {
    if (this.leases.has(id) === alive) return;
    this.leases = this.leases.with(id, alive);
    this.contentHash ^= leaseHash(id);
  }

  build(revision: number, compactRevision: number): EtcdState {
    return {
      revision,
      compactRevision,
      kvs: this.keys === null ? this.base.kvs : new KvTable(this.keys, this.values as Kv[]),
      leases: this.leases,
      contentHash: this.contentHash,
    };
  }
}

interface Applied {
  readonly state: EtcdState;
  readonly response: KvResponse | ErrorResponse;
  /** A range at a past revision (or, for a txn, which of its ops are): content unchecked here. */
  readonly historical?: boolean | readonly boolean[];
}

function compareHolds(d: Draft, c: Compare): boolean {
  const keys =
    c.rangeEnd === undefined || c.rangeEnd === ""
      ? [c.key]
      : d.currentKeys().filter((k) => inRange(k, c.key, c.rangeEnd));
  const present = keys.map((k) => d.get(k)).filter((kv): kv is Kv => kv !== undefined);
  // etcd: a VALUE compare on keys that do not exist always fails; the others compare
  // against a zero key-value (version 0, revisions 0, lease 0).
  if (present.length === 0) {
    if (c.target === "VALUE") return false;
    return compareOne({ key: c.key, value: "", createRevision: 0, modRevision: 0, version: 0, lease: 0 }, c);
  }
  return present.every((kv) => compareOne(kv, c));
}

function compareOne(kv: Kv, c: Compare): boolean {
  let a: number | string;
  switch (c.target) {
    case "VERSION":
      a = kv.version;
      break;
    case "CREATE":
      a = kv.createRevision;
      break;
    case "MOD":
      a = kv.modRevision;
      break;
    case "LEASE":
      a = kv.lease;
      break;
    case "VALUE":
      a = kv.value;
      break;
  }
  const b = c.value;
  switch (c.result) {
    case "EQUAL":
      return a === b;
    case "NOT_EQUAL":
      return a !== b;
    case "GREATER":
      return a > b;
    case "LESS":
      return a < b;
  }
}

/** Keys written by puts and deletes of a txn's branches must not overlap (etcd's checkIntervals). */
function txnValidation(ops: readonly TxnOp[]): ErrorResponse | null {
  // Pairwise: a branch holds a handful of ops, and this runs on every try of the search.
  for (let i = 0; i < ops.length; i++) {
    const a = ops[i] as TxnOp;
    if (a.type !== "put") continue;
    for (let j = 0; j < ops.length; j++) {
      const b = ops[j] as TxnOp;
      if (
        b.type === "put" ? j < i && b.key === a.key : b.type === "delete" && inRange(a.key, b.key, b.rangeEnd)
      )
        return Errors.duplicateKey;
    }
  }
  return null;
}

function applyRange(
  d: Draft,
  r: RangeRequest,
  revision: number,
  compactRevision: number,
): { resp: KvResponse | ErrorResponse; historical: boolean } {
  const at = r.revision ?? 0;
  if (at > revision) return { resp: Errors.futureRevision, historical: false };
  if (at > 0 && at < compactRevision) return { resp: Errors.compacted, historical: false };
  const historical = at > 0 && at < revision;
  const keys = d.currentKeys();
  const matching =
    r.rangeEnd === undefined || r.rangeEnd === ""
      ? d.get(r.key)
        ? [r.key]
        : []
      : keys.filter((k) => inRange(k, r.key, r.rangeEnd));
  const count = matching.length;
  const limit = r.limit ?? 0;
  const shown = r.countOnly ? [] : limit > 0 ? matching.slice(0, limit) : matching;
  const stored = shown.map((k) => d.get(k) as Kv);
  const kvs = r.keysOnly ? stored.map(withoutValue) : stored;
  return {
    resp: { type: "range", revision, kvs, count, more: !r.countOnly && limit > 0 && count > limit },
    historical,
  };
}

function applyPut(d: Draft, p: PutRequest, newRevision: number): KvResponse | ErrorResponse {
  const lease = p.lease ?? 0;
  if (lease !== 0 && !d.hasLease(lease)) return Errors.leaseNotFound;
  const old = d.get(p.key);
  d.put(p.key, {
    key: p.key,
    value: p.value,
    createRevision: old ? old.createRevision : newRevision,
    modRevision: newRevision,
    version: old ? old.version + 1 : 1,
    lease,
  });
  return p.prevKv && old
    ? { type: "put", revision: newRevision, prevKv: old }
    : { type: "put", revision: newRevision };
}

function applyDelete(d: Draft, r: DeleteRequest, newRevision: number): KvResponse {
  const keys =
    r.rangeEnd === undefined || r.rangeEnd === ""
      ? d.get(r.key)
        ? [r.key]
        : []
      : d.currentKeys().filter((k) => inRange(k, r.key, r.rangeEnd));
  const prev: KeyValue[] = [];
  for (const k of keys) {
    const kv = d.get(k);
    if (!kv) continue;
    if (r.prevKv) prev.push(kv);
    d.delete(k);
  }
  return r.prevKv
    ? { type: "delete", revision: newRevision, deleted: keys.length, prevKvs: prev }
    : { type: "delete", revision: newRevision, deleted: keys.length };
}

/** The effect and answer of `req` on `s`. */
export function applyRequest(s: EtcdState, req: KvRequest): Applied {
  const d = new Draft(s);
  const next = s.revision + 1;
  switch (req.type) {
    case "range": {
      const { resp, historical } = applyRange(d, req, s.revision, s.compactRevision);
      return { state: s, response: resp, historical };
    }
    case "put": {
      const resp = applyPut(d, req, next);
      return resp.type === "error"
        ? { state: s, response: resp }
        : { state: d.build(next, s.compactRevision), response: resp };
    }
    case "delete": {
      const resp = applyDelete(d, req, next) as KvResponse & { deleted: number };
      if (resp.deleted === 0) return { state: s, response: { ...resp, revision: s.revision } };
      return { state: d.build(next, s.compactRevision), response: resp };
    }
    case "txn": {
      if (req.success.length > MAX_TXN_OPS || req.failure.length > MAX_TXN_OPS)
        return { state: s, response: Errors.tooManyOps };
      const invalid = txnValidation(req.success) ?? txnValidation(req.failure);
      if (invalid) return { state: s, response: invalid };
      const succeeded = req.compare.every((c) => compareHolds(d, c));
      const ops = succeeded ? req.success : req.failure;
      // Checked before anything applies, in op order (etcd's checkRequests): a range's
      // revision against the revision the txn began at, a put's lease.
      for (const op of ops) {
        if (op.type === "range" && op.revision) {
          if (op.revision > s.revision) return { state: s, response: Errors.futureRevision };
          if (op.revision < s.compactRevision) return { state: s, response: Errors.compacted };
        }
        if (op.type === "put" && (op.lease ?? 0) !== 0 && !d.hasLease(op.lease ?? 0))
          return { state: s, response: Errors.leaseNotFound };
      }
      const responses: TxnOpResponse[] = [];
      const historical: boolean[] = [];
      for (const op of ops) {
        historical.push(false);
        if (op.type === "range") {
          // reads inside a txn see its own earlier writes, at the revision it will take
          const rev = d.changed ? next : s.revision;
          const { resp, historical: past } = applyRange(d, op, rev, s.compactRevision);
          if (resp.type === "error") return { state: s, response: resp };
          historical[historical.length - 1] = past;
          responses.push(resp as TxnOpResponse);
        } else if (op.type === "put") {
          responses.push(applyPut(d, op, next) as TxnOpResponse);
        } else {
          responses.push(applyDelete(d, op, next) as TxnOpResponse);
        }
      }
      const revision = d.changed ? next : s.revision;
      // the ops' own headers are the txn's: normalise them to the final revision
      const normalised = responses.map((r) => ({ ...r, revision }) as TxnOpResponse);
      return {
        state: d.changed ? d.build(next, s.compactRevision) : s,
        response: { type: "txn", revision, succeeded, responses: normalised },
        historical,
      };
    }
    case "compact": {
      if (req.revision <= s.compactRevision) return { state: s, response: Errors.compacted };
      if (req.revision > s.revision) return { state: s, response: Errors.futureRevision };
      return {
        // spelt out: a spread made states of another shape, which the search then met
        state: {
          revision: s.revision,
          compactRevision: req.revision,
          kvs: s.kvs,
          leases: s.leases,
          contentHash: s.contentHash,
        },
        response: { type: "compact", revision: s.revision },
      };
    }
    case "lease-grant": {
      if (d.hasLease(req.id)) return { state: s, response: Errors.leaseExists };
      d.setLease(req.id, true);
      return {
        state: d.build(s.revision, s.compactRevision),
        response: { type: "lease-grant", revision: s.revision, id: req.id, ttlS: req.ttlS },
      };
    }
    case "lease-revoke": {
      if (!d.hasLease(req.id)) return { state: s, response: Errors.leaseNotFound };
      d.setLease(req.id, false);
      s.kvs.keys.forEach((k, i) => {
        if ((s.kvs.values[i] as Kv).lease === req.id) d.delete(k);
      });
      const revision = d.changed ? next : s.revision;
      return { state: d.build(revision, s.compactRevision), response: { type: "lease-revoke", revision } };
    }
  }
}

/** Field by field, as a client compares what it got with what it should have got. */
export function sameKv(a: KeyValue | undefined, b: KeyValue | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.key === b.key &&
    a.value === b.value &&
    a.createRevision === b.createRevision &&
    a.modRevision === b.modRevision &&
    a.version === b.version &&
    (a.lease ?? 0) === (b.lease ?? 0)
  );
}

export function sameKvs(a: readonly KeyValue[] | undefined, b: readonly KeyValue[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((kv, i) => sameKv(kv, y[i]));
}

/** Whether an observed response matches the model's (a past-revision range: header only). */
export function sameResponse(
  model: KvResponse,
  seen: KvResponse,
  historical: boolean | readonly boolean[] = false,
): boolean {
  if (model.type !== seen.type || model.revision !== seen.revision) return false;
  switch (model.type) {
    case "range": {
      if (historical === true) return true;
      const s = seen as typeof model;
      return model.count === s.count && model.more === s.more && sameKvs(model.kvs, s.kvs);
    }
    case "put": {
      const s = seen as typeof model;
      return model.prevKv === undefined
        ? s.prevKv === undefined
        : s.prevKv !== undefined && sameKv(model.prevKv, s.prevKv);
    }
    case "delete": {
      const s = seen as typeof model;
      return (
        model.deleted === s.deleted && (model.prevKvs === undefined || sameKvs(model.prevKvs, s.prevKvs))
      );
    }
    case "txn": {
      const s = seen as typeof model;
      return (
        model.succeeded === s.succeeded &&
        model.responses.length === s.responses.length &&
        model.responses.every((r, i) =>
          sameResponse(
            { ...r, revision: model.revision } as KvResponse,
            { ...(s.responses[i] as TxnOpResponse), revision: model.revision } as KvResponse,
            Array.isArray(historical) ? (historical[i] ?? false) : false,
          ),
        )
      );
    }
    case "lease-grant": {
      const s = seen as typeof model;
      return model.id === s.id;
    }
    default:
      return true;
  }
}

/**
 * Whether an answer's header revision can follow `s`. Every request leaves the store at
 * its revision or one above (see `applyRequest`), and an answer must name that revision
 * exactly, so any other fails without applying the request: most of the candidates the
 * search tries fail this way (a write answered at a later revision), and applying each
 * was most of the search's time.
 */
export function revisionCanFollow(s: EtcdState, output: EtcdOutput): boolean {
  if (output.type === "error") return true;
  const r = output.revision;
  return r === null || r === s.revision || r === s.revision + 1;
}

/** The step with the request applied in every case (`etcdModel.step` skips hopeless ones). */
export function stepByApplying(
  state: EtcdState,
  input: KvRequest,
  output: EtcdOutput,
  unknown: boolean,
): EtcdState | undefined {
  const applied = applyRequest(state, input);
  if (unknown) return applied.state;
  const r = applied.response;
  if (output.type === "persisted") {
    if (r.type === "error") return undefined;
    if (output.revision !== null && r.revision !== output.revision) return undefined;
    return applied.state;
  }
  if (output.type === "error") return r.type === "error" && r.message === output.message ? state : undefined;
  if (r.type === "error") return undefined;
  return sameResponse(r, output, applied.historical ?? false) ? applied.state : undefined;
}

export const etcdModel = {
  init: () => INITIAL_ETCD_STATE,
  step: (state, input, output, unknown) =>
    unknown || revisionCanFollow(state, output) ? stepByApplying(state, input, output, unknown) : undefined,
  hash: (s) =>
    (Math.imul(s.revision, 0x9e3779b1) ^ Math.imul(s.compactRevision + 2, 0x85ebca6b) ^ s.contentHash) | 0,
  equal(a, b) {
    if (a === b) return true;
    if (
      a.revision !== b.revision ||
      a.compactRevision !== b.compactRevision ||
      a.contentHash !== b.contentHash
    )
      return false;
    if (a.kvs.size !== b.kvs.size || !a.leases.same(b.leases)) return false;
    const ak = a.kvs.keys;
    const bk = b.kvs.keys;
    for (let i = 0; i < ak.length; i++) {
      const k = ak[i] as string;
      if (k !== bk[i] || !sameKv(a.kvs.values[i], b.kvs.values[i])) return false;
    }
    return true;
  },
  // equal requests with unknown outcomes are interchangeable (see Model.inputKey)
  inputKey: (input) => JSON.stringify(input),
  describeOperation: (input, output, unknown) =>
    `${describeRequest(input)} -> ${unknown ? "?" : describeOutput(output)}`,
  describeState: (s) =>
    `revision ${s.revision}, compacted at ${s.compactRevision}, ${s.kvs.keys.map((k, i) => `${k}=${(s.kvs.values[i] as Kv).value}@${(s.kvs.values[i] as Kv).modRevision}`).join(" ") || "no keys"}`,
} satisfies Model<EtcdState, KvRequest, EtcdOutput>;

export function describeRequest(r: KvRequest): string {
  switch (r.type) {
    case "range":
      return `${r.serializable ? "stale " : ""}get ${r.key}${r.rangeEnd ? `..${r.rangeEnd === "\0" ? "" : r.rangeEnd}` : ""}${r.revision ? ` @${r.revision}` : ""}${r.limit ? ` limit ${r.limit}` : ""}`;
    case "put":
      return `put ${r.key}=${r.value}${r.lease ? ` lease ${r.lease}` : ""}`;
    case "delete":
      return `delete ${r.key}${r.rangeEnd ? `..${r.rangeEnd}` : ""}`;
    case "txn":
      return `txn if ${r.compare.map((c) => `${c.target.toLowerCase()}(${c.key})${cmpSymbol(c.result)}${JSON.stringify(c.value)}`).join(" && ") || "true"} then [${r.success.map(describeRequest).join("; ")}] else [${r.failure.map(describeRequest).join("; ")}]`;
    case "compact":
      return `compact ${r.revision}`;
    case "lease-grant":
      return `lease grant ${r.id} ttl ${r.ttlS}s`;
    case "lease-revoke":
      return `lease revoke ${r.id}`;
  }
}

function cmpSymbol(r: Compare["result"]): string {
  return r === "EQUAL" ? "=" : r === "NOT_EQUAL" ? "!=" : r === "GREATER" ? ">" : "<";
}

export function describeOutput(o: EtcdOutput): string {
  switch (o.type) {
    case "error":
      return `error "${o.message}"`;
    case "persisted":
      return o.revision === null ? "persisted" : `persisted at rev ${o.revision}`;
    case "range":
      return `rev ${o.revision}: ${o.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`).join(" ") || "(none)"}${o.more ? " (more)" : ""}`;
    case "txn":
      return `rev ${o.revision} ${o.succeeded ? "succeeded" : "failed"}`;
    case "delete":
      return `rev ${o.revision}, deleted ${o.deleted}`;
    default:
      return `rev ${o.revision}`;
  }
}
