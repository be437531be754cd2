// etcd's errors as clients see them: the gRPC code name and etcd's message
// (api/v3rpc/rpctypes and server/etcdserver/errors.go in etcd v3.5).
import type { ErrorResponse } from "../client/history.js";

function err(code: string, message: string): ErrorResponse {
  return { type: "error", code, message };
}

export const Errors = {
  compacted: err("OutOfRange", "etcdserver: mvcc: required revision has been compacted"),
  futureRevision: err("OutOfRange", "etcdserver: mvcc: required revision is a future revision"),
  leaseNotFound: err("NotFound", "etcdserver: requested lease not found"),
  leaseExists: err("FailedPrecondition", "etcdserver: lease already exists"),
  leaseTtlTooLarge: err("OutOfRange", "etcdserver: too large lease TTL"),
  tooManyOps: err("InvalidArgument", "etcdserver: too many operations in txn request"),
  duplicateKey: err("InvalidArgument", "etcdserver: duplicate key given in txn request"),
  emptyKey: err("InvalidArgument", "etcdserver: key is not provided"),
  noLeader: err("Unavailable", "etcdserver: no leader"),
  notLeader: err("Unavailable", "etcdserver: not leader"),
  /** lease.ErrNotPrimary: a keep-alive reached a lessor that turned out not to lead. */
  notPrimary: err("Unavailable", "not a primary lessor"),
  leaderChanged: err("Unavailable", "etcdserver: leader changed"),
  timeout: err("Unavailable", "etcdserver: request timed out"),
  timeoutDueToLeaderFail: err(
    "Unavailable",
    "etcdserver: request timed out, possibly due to previous leader failure",
  ),
  timeoutDueToConnectionLost: err(
    "Unavailable",
    "etcdserver: request timed out, possibly due to connection lost",
  ),
  stopped: err("Unavailable", "etcdserver: server stopped"),
  tooManyRequests: err("ResourceExhausted", "etcdserver: too many requests"),
  corrupt: err("DataLoss", "etcdserver: corrupt cluster"),
  memberNotFound: err("NotFound", "etcdserver: member not found"),
  memberExists: err("FailedPrecondition", "etcdserver: member ID already exist"),
  memberNotLearner: err("FailedPrecondition", "etcdserver: can only promote a learner member"),
  tooManyLearners: err("FailedPrecondition", "etcdserver: too many learner members in cluster"),
  unhealthy: err("Unavailable", "etcdserver: unhealthy cluster"),
  learnerNotReady: err(
    "FailedPrecondition",
    "etcdserver: can only promote a learner member which is in sync with leader",
  ),
  /** raft dropped the proposal (no leader known); etcd passes raft's error on as Unknown. */
  proposalDropped: err("Unknown", "raft proposal dropped"),
  /** The client gave up waiting (grpc's context deadline). */
  deadlineExceeded: err("DeadlineExceeded", "context deadline exceeded"),
  /** The member does not serve clients yet (its client port is closed): nothing was sent. */
  connectionRefused: err("Unavailable", "connection refused"),
  /** The connection to the member failed (it is down, or a partition cut the client off). */
  connectionLost: err("Unavailable", "transport is closing"),
} as const;

/** Errors after which a write may or may not have taken effect. */
export function isIndefinite(e: ErrorResponse): boolean {
  return (
    e.code === "Unavailable" || e.code === "DeadlineExceeded" || e.code === "Canceled" || e.code === "Unknown"
  );
}

/** etcd's limit on operations in one txn (--max-txn-ops). */
export const MAX_TXN_OPS = 128;

/** etcd's --max-learners default (membership.ValidateMaxLearnerConfig). */
export const MAX_LEARNERS = 1;
