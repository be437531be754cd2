// The history format: what clients asked, when, and what they got back, plus every
// watch response. The client model produces it, the checkers in src/ read it, and the
// importers and the real-etcd recorder write it. One format for all of them.
//
// Times are virtual microseconds (real microseconds for a real cluster). Keys and
// values are strings. Revisions follow etcd: the store starts at revision 1.

/** The pseudo-client of operations the servers make themselves (lease expiry revokes). */
export const SERVER_CLIENT = -1;

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  /** 0 when the key has no lease. */
  readonly lease: number;
}

/**
 * A keys-only read's copy of a key-value (etcd's keys_only), field by field: one shape,
 * and no spread (V8's slow path). Readers otherwise get the stored object itself: a
 * KeyValue never changes once stored (where etcd hands out a fresh decoding of the bytes).
 */
export function withoutValue(kv: KeyValue): KeyValue {
  return {
    key: kv.key,
    value: "",
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

export interface RangeRequest {
  readonly type: "range";
  readonly key: string;
  /** etcd's range_end: "" for a single key, "\0" for every key >= key. */
  readonly rangeEnd?: string;
  /** Read at this revision (0 or absent: the latest). */
  readonly revision?: number;
  readonly limit?: number;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  /** Served from the member's local state, possibly stale: not linearizable. */
  readonly serializable?: boolean;
}

export interface PutRequest {
  readonly type: "put";
  readonly key: string;
  readonly value: string;
  readonly lease?: number;
  readonly prevKv?: boolean;
}

export interface DeleteRequest {
  readonly type: "delete";
  readonly key: string;
  readonly rangeEnd?: string;
  readonly prevKv?: boolean;
}

export type CompareTarget = "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";
export type CompareResult = "EQUAL" | "NOT_EQUAL" | "GREATER" | "LESS";

export interface Compare {
  readonly key: string;
  readonly rangeEnd?: string;
  readonly target: CompareTarget;
  readonly result: CompareResult;
  /** A string for VALUE, a number for the others. */
  readonly value: string | number;
}

export type TxnOp = RangeRequest | PutRequest | DeleteRequest;

export interface TxnRequest {
  readonly type: "txn";
  readonly compare: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

export interface CompactRequest {
  readonly type: "compact";
  readonly revision: number;
  readonly physical?: boolean;
}

export interface LeaseGrantRequest {
  readonly type: "lease-grant";
  readonly id: number;
  readonly ttlS: number;
}

export interface LeaseRevokeRequest {
  readonly type: "lease-revoke";
  readonly id: number;
}

export type KvRequest =
  | RangeRequest
  | PutRequest
  | DeleteRequest
  | TxnRequest
  | CompactRequest
  | LeaseGrantRequest
  | LeaseRevokeRequest;

export interface RangeResponse {
  readonly type: "range";
  readonly revision: number;
  readonly kvs: readonly KeyValue[];
  readonly count: number;
  readonly more: boolean;
}

export interface PutResponse {
  readonly type: "put";
  readonly revision: number;
  readonly prevKv?: KeyValue;
}

export interface DeleteResponse {
  readonly type: "delete";
  readonly revision: number;
  readonly deleted: number;
  readonly prevKvs?: readonly KeyValue[];
}

/** Responses of the ops inside a txn carry no header of their own; `revision` is the txn's. */
export type TxnOpResponse = RangeResponse | PutResponse | DeleteResponse;

export interface TxnResponse {
  readonly type: "txn";
  readonly revision: number;
  readonly succeeded: boolean;
  readonly responses: readonly TxnOpResponse[];
}

export interface CompactResponse {
  readonly type: "compact";
  readonly revision: number;
}

export interface LeaseGrantResponse {
  readonly type: "lease-grant";
  readonly revision: number;
  readonly id: number;
  readonly ttlS: number;
}

export interface LeaseRevokeResponse {
  readonly type: "lease-revoke";
  readonly revision: number;
}

/** A request that failed: etcd's gRPC code name and message. */
export interface ErrorResponse {
  readonly type: "error";
  readonly code: string;
  readonly message: string;
}

export type KvResponse =
  | RangeResponse
  | PutResponse
  | DeleteResponse
  | TxnResponse
  | CompactResponse
  | LeaseGrantResponse
  | LeaseRevokeResponse;

export interface Operation {
  readonly id: number;
  readonly client: number;
  /** The member that served the request, when known. */
  readonly member?: string;
  readonly callUs: number;
  /**
   * When the response arrived. Null means the outcome is unknown (a timeout, a lost
   * connection): the request may or may not have taken effect, at any time after its
   * call. Its `response` is then the error the client saw, if any.
   */
  readonly returnUs: number | null;
  readonly request: KvRequest;
  /** The response; an error with a known return time means the request took no effect. */
  readonly response: KvResponse | ErrorResponse | null;
}

export type WatchFilter = "NOPUT" | "NODELETE";

export interface WatchRequest {
  readonly key: string;
  readonly rangeEnd?: string;
  /** 0 or absent: from the next revision. */
  readonly startRevision?: number;
  readonly prevKv?: boolean;
  readonly progressNotify?: boolean;
  readonly filters?: readonly WatchFilter[];
  readonly requireLeader?: boolean;
}

export interface WatchEvent {
  readonly type: "PUT" | "DELETE";
  readonly kv: KeyValue;
  readonly prevKv?: KeyValue;
}

export interface WatchResponse {
  readonly atUs: number;
  readonly member?: string;
  /** The header revision. */
  readonly revision: number;
  readonly events: readonly WatchEvent[];
  readonly progressNotify?: boolean;
  readonly created?: boolean;
  readonly canceled?: boolean;
  /** Set when the watch was canceled because its start revision was compacted. */
  readonly compactRevision?: number;
  readonly error?: string;
  /** On a `created` response: the start revision the client asked for (resumes ask for last + 1). */
  readonly startRevision?: number;
}

/** One watch as the client saw it, across resumes on other members. */
export interface WatchRecord {
  readonly id: number;
  readonly client: number;
  readonly member?: string;
  readonly callUs: number;
  readonly request: WatchRequest;
  readonly responses: readonly WatchResponse[];
}

/**
 * One lease keep-alive as the client saw it. Keep-alives are answered by the leader's
 * lessor without raft, so they are not part of the linearizable history; the lease
 * checkers read them.
 */
export interface KeepAliveRecord {
  readonly client: number;
  readonly lease: number;
  readonly member?: string;
  readonly callUs: number;
  /** Null: no answer (timed out or the connection broke). */
  readonly returnUs: number | null;
  /** The TTL the lessor granted from now on (0: the lease was not found). */
  readonly ttlS: number;
  readonly error?: string;
}

/**
 * A client that came to believe it holds a lock (or leads an election) through the
 * concurrency recipes. `acquiredRevision` is the revision of the read that convinced it:
 * at that revision its key must exist with `createRevision` and be the oldest under
 * `prefix`.
 */
export interface LockRecord {
  readonly kind: "lock" | "election";
  readonly client: number;
  readonly prefix: string;
  readonly key: string;
  readonly lease: number;
  readonly createRevision: number;
  readonly acquiredUs: number;
  readonly acquiredRevision: number;
  /** When the client's unlock or resign returned (null: it never did). */
  readonly releasedUs: number | null;
}

export interface History {
  readonly operations: readonly Operation[];
  readonly watches: readonly WatchRecord[];
  readonly keepAlives?: readonly KeepAliveRecord[];
  readonly locks?: readonly LockRecord[];
}

/** Whether a request changes state when it succeeds (lease grants and compactions included). */
export function isWriteRequest(r: KvRequest): boolean {
  switch (r.type) {
    case "range":
      return false;
    case "txn":
      return r.success.some((o) => o.type !== "range") || r.failure.some((o) => o.type !== "range");
    default:
      return true;
  }
}

/** The end of the range of every key starting with `prefix` (clientv3.GetPrefixRangeEnd, non-empty prefix). */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
