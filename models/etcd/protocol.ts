// Messages between clients and members, and between members besides raft. Every
// message has a `kind`; raft messages have kind "raft".
import type { ErrorResponse, KvRequest, KvResponse } from "../client/history.js";
import type { WatchMessage, WatchRequestMsg } from "./watch.js";

export type ClientMessage =
  | {
      readonly kind: "kv";
      readonly reqId: number;
      readonly request: KvRequest;
      /**
       * The history's operation id. Not etcd's: it rides along so that the simulator's
       * record of applied entries can name the call (for durability and settling unknown
       * outcomes); nothing in the server acts on it.
       */
      readonly callId?: number;
    }
  | { readonly kind: "lease-keepalive"; readonly reqId: number; readonly id: number }
  | { readonly kind: "lease-ttl"; readonly reqId: number; readonly id: number }
  | {
      readonly kind: "watch-create";
      readonly streamId: number;
      readonly reqId: number;
      readonly request: WatchRequestMsg;
      readonly requireLeader: boolean;
    }
  | { readonly kind: "watch-cancel"; readonly streamId: number; readonly watchId: number }
  | { readonly kind: "watch-progress"; readonly streamId: number }
  | { readonly kind: "watch-close"; readonly streamId: number }
  | { readonly kind: "maintenance"; readonly reqId: number; readonly op: MaintenanceOp }
  /** gRPC keepalive on the client's connection. */
  | { readonly kind: "ping"; readonly reqId: number };

export type MaintenanceOp =
  | { readonly type: "status" }
  | { readonly type: "hashkv"; readonly revision: number }
  | { readonly type: "defrag" }
  | { readonly type: "member-list" }
  | { readonly type: "member-add"; readonly memberId: number; readonly learner: boolean }
  | { readonly type: "member-remove"; readonly memberId: number }
  | { readonly type: "member-promote"; readonly memberId: number };

export interface Status {
  readonly revision: number;
  readonly dbSizeBytes: number;
  /** raft id of the leader this member knows (0: none). */
  readonly leader: number;
  readonly raftIndex: number;
  readonly raftTerm: number;
  readonly appliedIndex: number;
  readonly isLearner: boolean;
  readonly memberId: number;
}

export interface HashKv {
  readonly hash: number;
  readonly compactRevision: number;
  readonly revision: number;
}

export type MaintenanceResult =
  | { readonly type: "status"; readonly status: Status }
  | { readonly type: "hashkv"; readonly hashKv: HashKv }
  | { readonly type: "defrag" }
  | {
      readonly type: "members";
      readonly members: readonly { readonly id: number; readonly learner: boolean }[];
    };

export type ServerMessage =
  | {
      readonly kind: "kv-resp";
      readonly reqId: number;
      readonly response: KvResponse | ErrorResponse;
      readonly member: string;
    }
  | {
      readonly kind: "lease-resp";
      readonly reqId: number;
      readonly ttlS: number;
      readonly grantedTtlS?: number;
      readonly error?: ErrorResponse;
      readonly member: string;
    }
  | {
      readonly kind: "maintenance-resp";
      readonly reqId: number;
      readonly result: MaintenanceResult | ErrorResponse;
      readonly member: string;
    }
  | WatchMessage
  /** The answer to a ping, with the member's incarnation: a new one means the connection broke. */
  | { readonly kind: "pong"; readonly reqId: number; readonly incarnation: number; readonly member: string };

/** Between members: a keep-alive forwarded to the leader, and its answer. */
export type PeerMessage =
  | {
      readonly kind: "lease-fwd";
      readonly fwdId: number;
      readonly op: "keepalive" | "ttl";
      readonly id: number;
    }
  | {
      readonly kind: "lease-fwd-resp";
      readonly fwdId: number;
      readonly ttlS: number;
      readonly grantedTtlS?: number;
      readonly error?: ErrorResponse;
    };

/**
 * A request id: `member.incarnation.counter`, unique per proposal. The first two parts
 * name the process that proposed it (`proposerOf`).
 */
export function requestId(proposer: string, counter: number): string {
  return `${proposer}.${counter}`;
}

/** The process that proposed a request, from its id. */
export function proposerOf(id: string): string {
  return id.slice(0, id.lastIndexOf("."));
}

/** What a raft entry carries: a request, who proposed it, and its id. */
export interface InternalRequest {
  /** Unique per proposal: see `requestId`. */
  readonly id: string;
  /** raft id of the member that received the client's request. */
  readonly origin: number;
  readonly op: KvRequest | LeaseCheckpointRequest | PublishRequest;
  /** A revoke the leader's lessor proposed on expiry (the server pseudo-client). */
  readonly expiry?: boolean;
  /** The client's history operation id (see ClientMessage "kv"). */
  readonly callId?: number;
}

export interface LeaseCheckpointRequest {
  readonly type: "lease-checkpoint";
  readonly checkpoints: readonly { readonly id: number; readonly remainingS: number }[];
}

/**
 * A member publishes its attributes through raft when it starts (etcd's publishV3), and
 * serves clients only once it applied that entry: by then its commit index covers every
 * entry a previous leader may have acknowledged.
 */
export interface PublishRequest {
  readonly type: "publish";
  readonly memberId: number;
}
