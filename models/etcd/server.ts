// The etcd server (etcd's server/etcdserver): raft below, MVCC, lessor and watch above,
// files on the member's virtual disk. Requests come from clients as messages; writes go
// through raft and are answered when this member applies them.
//
// Apply runs as etcd's apply goroutine does: committed entries queue up and are applied
// one after another (each takes `applyCostUs`), behind the raft loop. Entries at or below
// the consistent index (persisted in the backend by the pre-commit hook) are skipped, so
// replaying the WAL after a crash applies each entry once.
//
// Boot: open the db (refuse on corruption), open raft (WAL, snapshot), swap in a database
// received with a snapshot (`<index>.snap.db`) if the db is older, rebuild MVCC, leases
// and the key index, then start raft.
import type { NodeContext, NodeProgram, TimerHandle } from "../../sim/index.js";
import { Delivery, NodeCrash } from "../../sim/index.js";
import type { Bugs } from "../bugs.js";
import type {
  ErrorResponse,
  KeyValue,
  KvRequest,
  KvResponse,
  RangeRequest,
  TxnOp,
  TxnOpResponse,
} from "../client/history.js";
import { decode, decodeShared, encode, encodeShared } from "../codec.js";
import type { RaftInvariants } from "../raft/invariants.js";
import { electionTimeoutUs, type RaftApp, RaftNode, type RaftNodeConfig } from "../raft/node.js";
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  isRaftMessage,
  type Message,
  Msg,
  type ReadState,
  type Snapshot,
  StateType,
} from "../raft/types.js";
import { Backend, BackendCorrupt, type BackendHost, type BackendTx, type StoredKv } from "./backend.js";
import { Errors, MAX_LEARNERS, MAX_TXN_OPS } from "./errors.js";
import { LEASE_EXPIRY_CHECK_US, Lessor } from "./lease.js";
import { inKeyRange, Mvcc, type RangeResult } from "./mvcc.js";
import {
  type ClientMessage,
  type InternalRequest,
  type MaintenanceOp,
  type MaintenanceResult,
  type PeerMessage,
  requestId,
  type ServerMessage,
} from "./protocol.js";
import { WatchableStore, type WatchMessage, WatchStream, watchMessage } from "./watch.js";

export const MEMBER_DIR = "member";
export const DB_PATH = `${MEMBER_DIR}/snap/db`;

export interface EtcdServerConfig {
  /** This member's id (its raft id). */
  readonly memberId: number;
  /** Voters of a new cluster; empty when joining an existing one. */
  readonly initialCluster: readonly number[];
  readonly raft: Partial<Omit<RaftNodeConfig, "id" | "initialPeers" | "route" | "invariants">>;
  readonly backendBatchIntervalUs: number;
  readonly backendBatchLimit: number;
  readonly compactionBatchLimit: number;
  readonly compactionBatchIntervalUs: number;
  /** Time the apply goroutine takes per entry. */
  readonly applyCostUs: number;
  /** etcd's ReqTimeout: 5 s + 2 election timeouts. */
  readonly requestTimeoutUs: number;
  readonly readIndexRetryUs: number;
  /** --experimental-watch-progress-notify-interval (etcd: 10 min; Kubernetes: 5 s). */
  readonly progressNotifyIntervalUs: number;
  /** Lease checkpoints (0: off). */
  readonly leaseCheckpointIntervalUs: number;
  readonly bugs: Bugs;
  /** Simulator node of a member id (-1 when unknown). */
  readonly route: (memberId: number) => number;
  readonly memberName: (memberId: number) => string;
  readonly invariants: RaftInvariants | null;
  readonly observer: EtcdObserver | null;
  /**
   * Start without publishing (no clients served) until `openGate`: the embedded etcd of
   * etcd-backup-restore's second revision check, which applies the WAL tail only.
   */
  readonly gated?: boolean;
  /** A new cluster restored from a snapshot (its db is there; see RaftNodeConfig). */
  readonly restored?: boolean;
}

export const DEFAULT_ETCD: Omit<
  EtcdServerConfig,
  "memberId" | "initialCluster" | "bugs" | "route" | "memberName" | "invariants" | "observer"
> = {
  raft: {},
  backendBatchIntervalUs: 100_000,
  backendBatchLimit: 10_000,
  compactionBatchLimit: 1000,
  compactionBatchIntervalUs: 10_000,
  applyCostUs: 20,
  requestTimeoutUs: 7_000_000,
  readIndexRetryUs: 500_000,
  progressNotifyIntervalUs: 600_000_000,
  leaseCheckpointIntervalUs: 0,
};

/** A configuration as callers give it: what has no default, and any defaults to override. */
export type EtcdServerOptions = Pick<
  EtcdServerConfig,
  "memberId" | "initialCluster" | "bugs" | "route" | "memberName" | "invariants" | "observer"
> &
  Partial<EtcdServerConfig>;

/**
 * A full configuration, defaults filled in, every field in one order: the server reads it
 * on every request, and configurations built by spreads had a shape per scenario (each
 * new one deoptimized the apply loop).
 */
export function etcdServerConfig(c: EtcdServerOptions): EtcdServerConfig {
  const d = DEFAULT_ETCD;
  return {
    memberId: c.memberId,
    initialCluster: c.initialCluster,
    raft: c.raft ?? d.raft,
    backendBatchIntervalUs: c.backendBatchIntervalUs ?? d.backendBatchIntervalUs,
    backendBatchLimit: c.backendBatchLimit ?? d.backendBatchLimit,
    compactionBatchLimit: c.compactionBatchLimit ?? d.compactionBatchLimit,
    compactionBatchIntervalUs: c.compactionBatchIntervalUs ?? d.compactionBatchIntervalUs,
    applyCostUs: c.applyCostUs ?? d.applyCostUs,
    requestTimeoutUs: c.requestTimeoutUs ?? d.requestTimeoutUs,
    readIndexRetryUs: c.readIndexRetryUs ?? d.readIndexRetryUs,
    progressNotifyIntervalUs: c.progressNotifyIntervalUs ?? d.progressNotifyIntervalUs,
    leaseCheckpointIntervalUs: c.leaseCheckpointIntervalUs ?? d.leaseCheckpointIntervalUs,
    bugs: c.bugs,
    route: c.route,
    memberName: c.memberName,
    invariants: c.invariants,
    observer: c.observer,
    gated: c.gated ?? false,
    restored: c.restored ?? false,
  };
}

/** What a member applied, for the reference history (the simulator sees every member). */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly requestId: string;
  /** raft id of the member the client sent the request to (0: a server-side request). */
  readonly origin: number;
  readonly request: KvRequest;
  readonly response: KvResponse | ErrorResponse;
  /** The store's revision after the entry. */
  readonly revision: number;
  /** A revoke proposed by the leader's lessor on expiry. */
  readonly expiry: boolean;
  /** The client's history operation id, when a client call proposed it. */
  readonly callId: number | undefined;
}

/** Told what members do, at the simulator's true time (the builder reads its clock). */
export interface EtcdObserver {
  applied(member: string, e: AppliedEntry): void;
  /** The leader's lessor proposed a revoke of an expired lease. */
  expiryProposed(member: string, requestId: string, leaseId: number): void;
  /** A member stopped for good (removed from the cluster). */
  removed(member: string): void;
  /** A member began serving clients (its publish entry applied), at `revision`. */
  serving?(member: string, server: EtcdServer): void;
}

type ApplyItem =
  | { readonly kind: "entry"; readonly e: Entry }
  | { readonly kind: "conf"; readonly e: Entry; readonly cc: ConfChange }
  | { readonly kind: "snap"; readonly snap: Snapshot };

interface Waiter {
  readonly client: number;
  readonly reqId: number;
  readonly timer: TimerHandle;
  readonly kind: "kv" | "maintenance";
}

interface PendingRead {
  readonly client: number;
  readonly reqId: number;
  readonly request: RangeRequest;
}

/** A snapshot as members send it: raft's data plus the whole database. */
interface SnapshotPayload {
  readonly raft: Uint8Array;
  readonly db: Uint8Array;
}

export const META_CI = "consistent_index";
const PUBLISH_RETRY_US = 500_000;
export const META_TERM = "term";

function hex16(n: number): string {
  return n.toString(16).padStart(16, "0");
}

/** Where a database received with the snapshot at `index` is saved. */
function snapDbPath(index: number): string {
  return `${MEMBER_DIR}/snap/${hex16(index)}.snap.db`;
}

export class EtcdServer implements NodeProgram, RaftApp {
  readonly raft: RaftNode;
  backend: Backend;
  readonly mvcc: Mvcc;
  readonly lessor: Lessor;
  readonly watch: WatchableStore;
  /** The consistent index: the last entry whose effects the backend holds. */
  ci = 0;
  private ciTerm = 0;
  /** The last entry the apply goroutine finished. */
  applied = 0;
  private readonly applyQueue: ApplyItem[] = [];
  private applyScheduled = false;
  private applyStalledUntilUs = 0;
  /** An entry past its failpoint whose writes are still to come (a stall, or the #13766 window). */
  private applying: { item: ApplyItem; early: boolean; ready: boolean } | null = null;
  /** A backend generation: timers of a replaced backend stop. */
  private backendGen = 0;
  private readonly waits = new Map<string, Waiter>();
  private reqCounter = 0;
  lead = 0;
  private readonly streams = new Map<string, WatchStream>();
  private readonly leaseFwds = new Map<number, { client: number; reqId: number; timer: TimerHandle }>();
  private fwdCounter = 0;
  readonly members = new Map<number, { learner: boolean }>();
  private readonly removedMembers = new Set<number>();
  /**
   * The membership in raft's log order, ahead of `members` while the apply queue lags:
   * what a committed membership change is validated against (confChangeAllowed).
   */
  private readonly confMembers = new Map<number, { learner: boolean }>();
  private readonly confRemoved = new Set<number>();
  /** Membership changes refused at apply (by log index): their callers get the error. */
  private readonly refusedConf = new Map<number, ErrorResponse>();
  private defragging = false;
  /** Whether clients are served: after this incarnation's publish entry is applied. */
  serving = false;
  private publishId = "";
  private snapReceipts = 0;
  private removed = false;
  private gated: boolean;
  // linearizable reads (etcd's linearizableReadLoop)
  private readonly readQueue: PendingRead[] = [];
  private readRound: {
    /** The request ids of the round's attempts; an answer to any of them confirms it. */
    ctxs: string[];
    reads: PendingRead[];
    retry: TimerHandle;
    deadline: TimerHandle;
    index: number;
  } | null = null;
  private readonly applyWaiters: { index: number; fn: () => void }[] = [];
  /** This process's part of its request ids: one per member and incarnation. */
  readonly proposer: string;
  readonly cfg: EtcdServerConfig;

  constructor(
    private readonly ctx: NodeContext,
    options: EtcdServerOptions,
  ) {
    const cfg = etcdServerConfig(options);
    this.cfg = cfg;
    this.proposer = `${cfg.memberId}.${ctx.incarnation}`;
    this.gated = cfg.gated === true;
    this.backend = this.openBackend();
    this.loadConsistentIndex();
    this.mvcc = new Mvcc(
      this.backend,
      this.mvccHost(),
      {
        dropTombstoneAtRev:
          cfg.bugs.has("compaction-drops-tombstone-at-rev") || cfg.bugs.has("compaction-revision-rollback"),
        restoreSkipsLoneTombstone: cfg.bugs.has("restore-ignores-lone-tombstone"),
        restoreIgnoresCompactRev: cfg.bugs.has("compaction-revision-rollback"),
      },
      { batchLimit: cfg.compactionBatchLimit, batchIntervalUs: cfg.compactionBatchIntervalUs },
    );
    const electionUs = electionTimeoutUs(cfg.raft);
    this.lessor = new Lessor(this.backend, Math.ceil((1.5 * electionUs) / 1_000_000));
    this.watch = new WatchableStore(this.mvcc, this.watchHost(), {
      minRevStale: cfg.bugs.has("watch-minrev-stale-on-restore"),
      progressAheadOfEvents: cfg.bugs.has("progress-notify-ahead-of-events"),
      compactionGap: cfg.bugs.has("slow-watcher-compaction-gap"),
      futureRevOldEvents: cfg.bugs.has("future-rev-watch-old-events"),
    });
    this.raft = new RaftNode(ctx, {
      ...cfg.raft,
      dir: MEMBER_DIR,
      id: cfg.memberId,
      initialPeers: cfg.initialCluster,
      bootstrapAsSnapshot: cfg.restored === true,
      route: cfg.route,
      invariants: cfg.invariants,
      commitBeforeLeaderPersist: cfg.bugs.has("single-node-ack-before-fsync"),
      voteBeforePersist: cfg.bugs.has("vote-granted-before-persist"),
      readOnlyOption: cfg.bugs.has("lease-read-under-clock-skew") ? "lease-based" : "safe",
    });
    // A database received with a snapshot replaces an older one (etcd's recoverSnapshotBackend).
    const snap = this.raft.bootSnapshot;
    if (snap && snap.metadata.index > this.ci) {
      if (!this.swapInSnapshotDb(snap.metadata.index))
        this.refuse(
          `failed to find database snapshot file (${snapDbPath(snap.metadata.index)}) for snapshot ${snap.metadata.index}`,
        );
    }
    try {
      this.restoreStores();
    } catch (e) {
      if (e instanceof BackendCorrupt) this.refuse(e.message);
      throw e;
    }
    this.restoreMembers();
    // what etcd validates against: the backend's members, none before the bootstrap entries
    this.readMembers(this.confMembers, this.confRemoved);
    this.applied = Math.max(this.ci, snap?.metadata.index ?? 0);
    this.backend.startTicker();
    this.startLoops();
    this.raft.start(this);
    this.publish();
  }

  // ---- boot -------------------------------------------------------------------------------

  private openBackend(): Backend {
    const gen = ++this.backendGen;
    const host: BackendHost = {
      setTimer: (us, label, fn) => {
        this.ctx.setTimer(us, label, () => {
          if (gen === this.backendGen) fn();
        });
      },
      failpoint: (name) => this.crashPoint(name),
      preCommit: (tx) => this.saveConsistentIndex(tx),
      fatal: (reason) => this.exit(reason),
      dedupeOffByOne: this.cfg.bugs.has("txbuf-dedupe-duplicate-event"),
    };
    try {
      return Backend.open(
        this.ctx.disk,
        {
          path: DB_PATH,
          batchIntervalUs: this.cfg.backendBatchIntervalUs,
          batchLimit: this.cfg.backendBatchLimit,
        },
        host,
      );
    } catch (e) {
      if (e instanceof BackendCorrupt) this.refuse(e.message);
      throw e;
    }
  }

  /** Opens the db file again, and points everything that reads it at the new one. */
  private reopenBackend(): void {
    this.backend = this.openBackend();
    this.mvcc.backend = this.backend;
    this.lessor.backend = this.backend;
  }

  /**
   * A database received with a snapshot becomes the db (etcd's recoverSnapshotBackend and
   * applySnapshot): false when its `<index>.snap.db` is missing.
   */
  private swapInSnapshotDb(index: number): boolean {
    const path = snapDbPath(index);
    if (!this.ctx.disk.exists(path)) return false;
    this.ctx.disk.rename(path, DB_PATH);
    this.ctx.disk.fsyncDir(`${MEMBER_DIR}/snap`, () => {});
    this.reopenBackend();
    this.loadConsistentIndex();
    return true;
  }

  private loadConsistentIndex(): void {
    this.ci = (this.backend.get("meta", META_CI) as number | undefined) ?? 0;
    this.ciTerm = (this.backend.get("meta", META_TERM) as number | undefined) ?? 0;
  }

  /** The pre-commit hook: the consistent index goes into every commit. */
  private saveConsistentIndex(tx: BackendTx): void {
    if (this.ci === 0) return;
    tx.put("meta", META_CI, this.ci);
    tx.put("meta", META_TERM, this.ciTerm);
  }

  private restoreStores(): void {
    this.mvcc.restore();
    this.lessor.restore();
    // re-attach keys to their leases
    for (const key of this.mvcc.keys("", "\0")) {
      const r = this.mvcc.range(key, undefined);
      if ("kvs" in r) for (const kv of r.kvs) if (kv.lease) this.lessor.attach(kv.lease, kv.key);
    }
  }

  /** The membership the backend holds (etcd's MustReadMembersFromBackend). */
  private readMembers(members: Map<number, { learner: boolean }>, removed: Set<number>): void {
    members.clear();
    removed.clear();
    for (const [k] of this.backend.range("members_removed", 0, Number.MAX_SAFE_INTEGER))
      removed.add(k as number);
    for (const [k, v] of this.backend.range("members", 0, Number.MAX_SAFE_INTEGER))
      members.set(k as number, { learner: (v as { learner: boolean }).learner });
  }

  private restoreMembers(): void {
    this.readMembers(this.members, this.removedMembers);
    // a new cluster's members are known from its configuration before the bootstrap
    // entries that add them apply
    if (this.members.size === 0)
      for (const id of this.cfg.initialCluster) this.members.set(id, { learner: false });
  }

  private startLoops(): void {
    const leaseLoop = () => {
      this.revokeExpiredLeases();
      this.ctx.setTimer(LEASE_EXPIRY_CHECK_US, "lease.expiry", leaseLoop);
    };
    this.ctx.setTimer(LEASE_EXPIRY_CHECK_US, "lease.expiry", leaseLoop);
    if (this.cfg.leaseCheckpointIntervalUs > 0) {
      const checkpoint = () => {
        this.checkpointLeases();
        this.ctx.setTimer(this.cfg.leaseCheckpointIntervalUs, "lease.checkpoint", checkpoint);
      };
      this.ctx.setTimer(this.cfg.leaseCheckpointIntervalUs, "lease.checkpoint", checkpoint);
    }
    const progress = () => {
      for (const s of this.streams.values()) this.watch.progressAll(s);
      this.ctx.setTimer(this.cfg.progressNotifyIntervalUs, "watch.progress", progress);
    };
    this.ctx.setTimer(this.cfg.progressNotifyIntervalUs, "watch.progress", progress);
    const electionUs = electionTimeoutUs(this.cfg.raft);
    const monitorLeader = () => {
      if (this.lead === 0) this.cancelRequireLeaderStreams();
      this.ctx.setTimer(electionUs, "watch.monitor-leader", monitorLeader);
    };
    this.ctx.setTimer(electionUs, "watch.monitor-leader", monitorLeader);
  }

  /**
   * etcd's publishV3: propose this member's attributes through raft, again until one is
   * applied; clients are served from then on.
   */
  private publish(): void {
    if (this.serving || this.removed || this.gated) return;
    this.publishId = this.nextRequestId();
    this.raft.propose(
      encode({
        id: this.publishId,
        origin: this.cfg.memberId,
        op: { type: "publish", memberId: this.cfg.memberId },
      } satisfies InternalRequest),
    );
    this.ctx.setTimer(PUBLISH_RETRY_US, "publish.retry", () => this.publish());
  }

  /** Lets a gated member publish itself and serve clients. */
  openGate(): void {
    this.gated = false;
    this.publish();
  }

  // ---- failure ------------------------------------------------------------------------------

  /** A failpoint that may crash the member, or stall its apply loop (etcd's backend lock). */
  private crashPoint(name: string): void {
    const stallUs = this.ctx.failpoint(name);
    if (stallUs > 0)
      this.applyStalledUntilUs = Math.max(this.applyStalledUntilUs, this.ctx.monoUs() + stallUs);
  }

  /** The member will not start on this data (etcd exits with a fatal log). */
  private refuse(reason: string): never {
    throw new NodeCrash(`refusing to start: ${reason}`, "keep");
  }

  private exit(reason: string): never {
    throw new NodeCrash(reason, "keep");
  }

  /** A broken internal invariant (etcd panics): reported, and the member dies. */
  private panic(reason: string): never {
    this.ctx.report("raft.panic", `etcd panic on ${this.ctx.name}: ${reason}`, {});
    throw new NodeCrash(`panic: ${reason}`, "keep");
  }

  // ---- messages -----------------------------------------------------------------------------

  onMessage(from: number, msg: unknown): void {
    if (this.removed) return;
    if (isRaftMessage(msg)) {
      this.receiveRaft(msg);
      return;
    }
    const m = msg as ClientMessage | PeerMessage;
    if (!this.serving && m.kind !== "lease-fwd" && m.kind !== "lease-fwd-resp") {
      // etcd opens its client port only once published: the connection is refused
      if (m.kind === "kv")
        this.reply(from, {
          kind: "kv-resp",
          reqId: m.reqId,
          response: Errors.connectionRefused,
          member: this.ctx.name,
        });
      else if (m.kind === "lease-keepalive" || m.kind === "lease-ttl")
        this.reply(from, {
          kind: "lease-resp",
          reqId: m.reqId,
          ttlS: 0,
          error: Errors.connectionRefused,
          member: this.ctx.name,
        });
      else if (m.kind === "maintenance")
        this.reply(from, {
          kind: "maintenance-resp",
          reqId: m.reqId,
          result: Errors.connectionRefused,
          member: this.ctx.name,
        });
      else if (m.kind === "watch-create")
        this.watchReply(from, {
          streamId: m.streamId,
          watchId: -1,
          revision: 0,
          canceled: true,
          cancelReason: Errors.connectionRefused.message,
          reqId: m.reqId,
        });
      return;
    }
    switch (m.kind) {
      case "kv":
        this.handleKv(from, m.reqId, m.request, m.callId);
        return;
      case "lease-keepalive":
      case "lease-ttl":
        this.handleLease(from, m.reqId, m.id, m.kind === "lease-keepalive" ? "keepalive" : "ttl");
        return;
      case "watch-create":
      case "watch-cancel":
      case "watch-progress":
      case "watch-close":
        this.handleWatch(from, m);
        return;
      case "maintenance":
        this.handleMaintenance(from, m.reqId, m.op);
        return;
      case "ping":
        this.reply(from, {
          kind: "pong",
          reqId: m.reqId,
          incarnation: this.ctx.incarnation,
          member: this.ctx.name,
        });
        return;
      case "lease-fwd":
        this.handleLeaseForward(from, m);
        return;
      case "lease-fwd-resp": {
        const f = this.leaseFwds.get(m.fwdId);
        if (!f) return;
        this.leaseFwds.delete(m.fwdId);
        this.ctx.cancelTimer(f.timer);
        this.reply(f.client, {
          kind: "lease-resp",
          reqId: f.reqId,
          ttlS: m.ttlS,
          ...(m.grantedTtlS !== undefined ? { grantedTtlS: m.grantedTtlS } : {}),
          ...(m.error ? { error: m.error } : {}),
          member: this.ctx.name,
        });
        return;
      }
    }
  }

  private reply(client: number, msg: ServerMessage): void {
    this.ctx.send(client, msg, msg.kind, "reqId" in msg ? msg.reqId : 0, 0, Delivery.Stream); // gRPC
  }

  /**
   * A raft message. A snapshot arrives with the whole database: etcd's snapshot receiver
   * saves it as `<index>.snap.db` (a temp file, fsynced, renamed) before raft sees the
   * message. We also fsync the directory, so a crash cannot keep the raft snapshot and
   * lose its database (etcd relies on ext4 ordering there).
   */
  private receiveRaft(m: Message): void {
    // rafthttp refuses messages from removed members
    if (this.removedMembers.has(m.from)) return;
    if (m.type !== Msg.Snap || !m.snapshot) {
      this.raft.step(m);
      return;
    }
    const meta = m.snapshot.metadata;
    const payload = decode<SnapshotPayload>(m.snapshot.data);
    const path = snapDbPath(meta.index);
    // a duplicate delivery may arrive while the first is being saved: each has its own temp
    const tmp = `${MEMBER_DIR}/snap/tmp${++this.snapReceipts}`;
    this.ctx.disk.create(tmp);
    this.ctx.disk.append(tmp, payload.db);
    this.ctx.disk.fsync(tmp, (err) => {
      if (err) this.exit(`failed to save database snapshot: ${err.message}`);
      this.ctx.disk.rename(tmp, path);
      this.ctx.disk.fsyncDir(`${MEMBER_DIR}/snap`, (dirErr) => {
        if (dirErr) this.exit(`failed to save database snapshot: ${dirErr.message}`);
        this.raft.step({ ...m, snapshot: { metadata: meta, data: new Uint8Array(payload.raft) } });
      });
    });
  }

  // ---- the KV API -----------------------------------------------------------------------------

  private handleKv(client: number, reqId: number, req: KvRequest, callId?: number): void {
    const invalid = validate(req);
    if (invalid) {
      this.reply(client, { kind: "kv-resp", reqId, response: invalid, member: this.ctx.name });
      return;
    }
    if (req.type === "range" || (req.type === "txn" && isReadOnlyTxn(req))) {
      if (req.type === "range" && req.serializable) {
        this.reply(client, { kind: "kv-resp", reqId, response: this.serveRange(req), member: this.ctx.name });
        return;
      }
      if (req.type === "range") {
        this.readQueue.push({ client, reqId, request: req });
        this.maybeStartReadRound();
        return;
      }
    }
    this.propose(req, client, reqId, "kv", callId);
  }

  /** A range on local state, now. */
  private serveRange(req: RangeRequest): KvResponse | ErrorResponse {
    const r = this.mvcc.range(req.key, req.rangeEnd, {
      rev: req.revision ?? 0,
      limit: req.limit ?? 0,
      countOnly: req.countOnly ?? false,
      keysOnly: req.keysOnly ?? false,
    });
    if (!("kvs" in r)) return r;
    return rangeResponse(this.mvcc.currentRev, r, req);
  }

  private nextRequestId(): string {
    return requestId(this.proposer, ++this.reqCounter);
  }

  /** Proposes a write; the waiter answers when this member applies it (or times out). */
  private propose(
    op: KvRequest,
    client: number,
    reqId: number,
    kind: "kv" | "maintenance",
    callId?: number,
  ): void {
    const id = this.nextRequestId();
    const timer = this.ctx.setTimer(this.cfg.requestTimeoutUs, "request.timeout", () => {
      this.waits.delete(id);
      const e = this.lead === 0 ? Errors.timeoutDueToLeaderFail : Errors.timeout;
      this.reply(
        client,
        kind === "kv"
          ? { kind: "kv-resp", reqId, response: e, member: this.ctx.name }
          : { kind: "maintenance-resp", reqId, result: e, member: this.ctx.name },
      );
    });
    this.waits.set(id, { client, reqId, timer, kind });
    const origin = this.cfg.memberId;
    // (no conditional spread: V8's slow path, once per proposal)
    const entry: InternalRequest = callId !== undefined ? { id, origin, op, callId } : { id, origin, op };
    if (!this.raft.propose(encodeShared(entry))) {
      // etcd returns raft's ErrProposalDropped at once (v3_server.go)
      this.waits.delete(id);
      this.ctx.cancelTimer(timer);
      const e = Errors.proposalDropped;
      this.reply(
        client,
        kind === "kv"
          ? { kind: "kv-resp", reqId, response: e, member: this.ctx.name }
          : { kind: "maintenance-resp", reqId, result: e, member: this.ctx.name },
      );
    }
  }

  // ---- linearizable reads (ReadIndex) ---------------------------------------------------------

  private maybeStartReadRound(): void {
    if (this.readRound || this.readQueue.length === 0) return;
    const reads = this.readQueue.splice(0);
    const ctx = this.nextRequestId();
    const retry = this.ctx.setTimer(this.cfg.readIndexRetryUs, "read.retry", () => this.retryRead());
    const deadline = this.ctx.setTimer(this.cfg.requestTimeoutUs, "read.timeout", () =>
      this.failReadRound(Errors.timeout),
    );
    this.readRound = { ctxs: [ctx], reads, retry, deadline, index: -1 };
    this.raft.readIndex(ctx);
  }

  /**
   * No answer yet: ask again. etcd sends a new request id and accepts the answer to any
   * of the round's ids (requestCurrentIndex since #21399): with the leader more than the
   * retry interval away, only an earlier attempt's answer can arrive in time. The planted
   * #20418 sends the same id again, which the leader drops while the first is pending.
   */
  private retryRead(): void {
    const round = this.readRound;
    if (!round) return;
    if (!this.cfg.bugs.has("readindex-reused-request-id")) round.ctxs.push(this.nextRequestId());
    round.retry = this.ctx.setTimer(this.cfg.readIndexRetryUs, "read.retry", () => this.retryRead());
    this.raft.readIndex(round.ctxs[round.ctxs.length - 1] as string);
  }

  private failReadRound(e: ErrorResponse): void {
    const round = this.readRound;
    if (!round) return;
    this.readRound = null;
    this.ctx.cancelTimer(round.retry);
    this.ctx.cancelTimer(round.deadline);
    for (const r of round.reads)
      this.reply(r.client, { kind: "kv-resp", reqId: r.reqId, response: e, member: this.ctx.name });
    this.maybeStartReadRound();
  }

  onReadStates(states: readonly ReadState[]): void {
    if (this.leadershipChecks.length > 0) this.resolveLeadershipChecks(states);
    const round = this.readRound;
    if (!round || round.index >= 0) return;
    // out-of-date answers to earlier rounds are ignored
    const mine = states.find((s) => round.ctxs.includes(s.requestCtx));
    if (!mine) return;
    round.index = mine.index;
    this.ctx.cancelTimer(round.retry);
    this.whenApplied(mine.index, () => {
      if (this.readRound !== round) return;
      this.readRound = null;
      this.ctx.cancelTimer(round.deadline);
      for (const r of round.reads)
        this.reply(r.client, {
          kind: "kv-resp",
          reqId: r.reqId,
          response: this.serveRange(r.request),
          member: this.ctx.name,
        });
      this.maybeStartReadRound();
    });
  }

  private whenApplied(index: number, fn: () => void): void {
    if (this.applied >= index) fn();
    else this.applyWaiters.push({ index, fn });
  }

  private wakeAppliedWaiters(): void {
    if (this.applyWaiters.length === 0) return;
    const ready = this.applyWaiters.filter((w) => w.index <= this.applied);
    if (ready.length === 0) return;
    for (let i = this.applyWaiters.length - 1; i >= 0; i--)
      if ((this.applyWaiters[i] as { index: number }).index <= this.applied) this.applyWaiters.splice(i, 1);
    for (const w of ready) w.fn();
  }

  // ---- raft callbacks -------------------------------------------------------------------------

  onSoftState(state: StateType, lead: number, _term: number): void {
    const changed = lead !== this.lead;
    this.lead = lead;
    if (changed) {
      // a ReadIndex round in flight fails: its answer may never come (etcd's leaderChanged)
      if (this.readRound && this.readRound.index < 0) this.failReadRound(Errors.leaderChanged);
    }
    if (state !== StateType.Leader && this.lessor.primary) this.lessor.demote();
  }

  applyEntry(e: Entry): void {
    this.enqueue({ kind: "entry", e });
  }

  /**
   * etcd's ValidateConfigurationChange, at apply, against the membership as applied so
   * far (membership/cluster.go): a removed ID is refused (ErrIDRemoved), a promotion needs
   * a learner, an addition a new ID and room for one learner at most, a removal an
   * existing member. Entries the backend already holds (index <= consistent index, a
   * replay after a restart) are not validated, as etcd's shouldApplyV3 = false.
   */
  confChangeAllowed(e: Entry, cc: ConfChange): boolean {
    const err = e.index <= this.ci ? null : this.confChangeError(cc);
    if (err) {
      this.refusedConf.set(e.index, err);
      return false;
    }
    if (cc.type === ConfChangeType.RemoveNode) {
      this.confMembers.delete(cc.nodeId);
      this.confRemoved.add(cc.nodeId);
    } else {
      this.confMembers.set(cc.nodeId, { learner: cc.type === ConfChangeType.AddLearnerNode });
    }
    return true;
  }

  private confChangeError(cc: ConfChange): ErrorResponse | null {
    // etcd's api/v3rpc maps ErrIDRemoved and ErrIDNotFound to "member not found"
    if (this.confRemoved.has(cc.nodeId)) return Errors.memberNotFound;
    const m = this.confMembers.get(cc.nodeId);
    if (cc.type === ConfChangeType.RemoveNode) return m ? null : Errors.memberNotFound;
    const promote = cc.context !== undefined && decode<{ promote?: boolean }>(cc.context).promote === true;
    if (promote) return !m ? Errors.memberNotFound : m.learner ? null : Errors.memberNotLearner;
    if (m) return Errors.memberExists;
    if (cc.type === ConfChangeType.AddLearnerNode) {
      let learners = 0;
      for (const x of this.confMembers.values()) if (x.learner) learners++;
      if (learners + 1 > MAX_LEARNERS) return Errors.tooManyLearners;
    }
    return null;
  }

  applyConfChange(e: Entry, cc: ConfChange, _cs: ConfState): void {
    this.enqueue({ kind: "conf", e, cc });
  }

  applySnapshot(snap: Snapshot): void {
    // raft took the snapshot's configuration: so does the log-order membership (members
    // it no longer lists were removed meanwhile)
    const cs = snap.metadata.confState;
    const listed = new Set([...cs.voters, ...cs.learners]);
    for (const id of this.confMembers.keys()) if (!listed.has(id)) this.confRemoved.add(id);
    this.confMembers.clear();
    for (const id of cs.voters) this.confMembers.set(id, { learner: false });
    for (const id of cs.learners) this.confMembers.set(id, { learner: true });
    this.enqueue({ kind: "snap", snap });
  }

  appliedIndex(): number {
    return this.applied;
  }

  snapshotData(): Uint8Array {
    // etcd commits the backend first, so the consistent index on disk reaches the snapshot
    this.backend.commit();
    return encode({ members: [...this.members].map(([id, m]) => [id, m.learner]) });
  }

  /**
   * etcd's createMergedSnapshotMessage: the snapshot a follower gets is the leader's state
   * as applied now (the whole db, the applied index and term, the current membership),
   * not raft's stored snapshot, which may predate the conf change that added the
   * follower: it would refuse that one (etcd #13741).
   */
  decorateSnapshot(m: Message): Message {
    if (!m.snapshot) return m;
    this.backend.commit();
    const index = this.applied;
    const term = this.raft.raw.raft.raftLog.term(index);
    const confState = this.raft.raw.raft.trk.confState();
    const payload: SnapshotPayload = { raft: this.snapshotData(), db: this.backend.snapshot() };
    return { ...m, snapshot: { metadata: { index, term, confState }, data: encode(payload) } };
  }

  onFatal(): void {}

  // ---- the apply goroutine --------------------------------------------------------------------

  private enqueue(item: ApplyItem): void {
    this.applyQueue.push(item);
    this.scheduleApply();
  }

  private scheduleApply(): void {
    if (this.applyScheduled || this.applyQueue.length === 0) return;
    this.applyScheduled = true;
    const waitUs = Math.max(this.cfg.applyCostUs, this.applyStalledUntilUs - this.ctx.monoUs());
    this.ctx.setTimer(waitUs, "apply", () => {
      this.applyScheduled = false;
      this.applyNext();
    });
  }

  private applyNext(): void {
    if (this.defragging) return;
    if (this.backend.syncing) {
      // the backend is committing: apply waits for the batch lock (a slow disk slows apply)
      this.applyScheduled = true;
      this.backend.whenIdle(() => {
        this.applyScheduled = false;
        this.scheduleApply();
      });
      return;
    }
    if (this.applyStalledUntilUs > this.ctx.monoUs()) {
      this.scheduleApply();
      return;
    }
    const cur = this.applying;
    if (cur) {
      if (!cur.ready) return;
      this.applying = null;
      this.applyItem(cur.item, cur.early);
      return;
    }
    const item = this.applyQueue[0];
    if (!item) return;
    if (item.kind === "entry") {
      // etcd 3.5.0–3.5.2 (#13766): the consistent index moved before the entry's writes,
      // so a backend commit in between persisted an index whose writes were not there.
      // (3.5.3+ keeps it as the "applying" index, saved inside the entry's own txn.)
      const early = this.cfg.bugs.has("ci-persisted-before-apply") && item.e.index > this.ci;
      if (early) {
        this.ci = item.e.index;
        this.ciTerm = item.e.term;
      }
      // etcd's gofail point, just after that index is set (robustness sleeps here)
      const stallUs = this.ctx.failpoint("beforeApplyOneEntryNormal");
      const waitUs = stallUs + (early ? this.cfg.applyCostUs : 0);
      if (waitUs > 0) {
        const next = { item, early, ready: false };
        this.applying = next;
        this.applyScheduled = true;
        this.ctx.setTimer(waitUs, "apply.entry", () => {
          next.ready = true;
          this.applyScheduled = false;
          this.applyNext();
        });
        return;
      }
    }
    this.applyItem(item, false);
  }

  private applyItem(item: ApplyItem, ciAlreadySet: boolean): void {
    if (this.applyQueue[0] !== item) return;
    this.applyQueue.shift();
    switch (item.kind) {
      case "entry":
        this.applyNormal(item.e, ciAlreadySet);
        this.applied = Math.max(this.applied, item.e.index);
        break;
      case "conf":
        this.applyConf(item.e, item.cc);
        this.applied = Math.max(this.applied, item.e.index);
        break;
      case "snap":
        this.applySnapshotNow(item.snap);
        break;
    }
    this.wakeAppliedWaiters();
    this.raft.applied();
    if (!this.removed) this.scheduleApply();
  }

  private setCi(e: Entry): void {
    if (e.index > this.ci) {
      this.ci = e.index;
      this.ciTerm = e.term;
    }
  }

  private applyNormal(e: Entry, ciAlreadySet: boolean): void {
    if (e.data.length === 0) {
      // the new leader's empty entry: its lessor becomes primary (leases restart)
      this.setCi(e);
      if (this.raft.isLeader && this.raft.term === e.term) {
        this.lessor.promote(this.ctx.monoUs(), electionTimeoutUs(this.cfg.raft));
      }
      return;
    }
    if (e.index <= this.ci && !ciAlreadySet) return; // already in the backend
    const req = decodeShared<InternalRequest>(e.data);
    let response: KvResponse | ErrorResponse;
    try {
      response = this.applyRequest(req, e);
    } catch (err) {
      if (err instanceof NodeCrash) throw err;
      this.panic((err as Error).message);
    }
    this.setCi(e);
    const w = this.waits.get(req.id);
    if (w) {
      this.waits.delete(req.id);
      this.ctx.cancelTimer(w.timer);
      this.reply(
        w.client,
        w.kind === "kv"
          ? { kind: "kv-resp", reqId: w.reqId, response, member: this.ctx.name }
          : {
              kind: "maintenance-resp",
              reqId: w.reqId,
              result: response.type === "error" ? response : { type: "defrag" },
              member: this.ctx.name,
            },
      );
    }
    if (req.op.type !== "lease-checkpoint" && req.op.type !== "publish") {
      this.cfg.observer?.applied(this.ctx.name, {
        index: e.index,
        term: e.term,
        requestId: req.id,
        origin: req.expiry ? 0 : req.origin,
        request: req.op,
        response,
        revision: this.mvcc.currentRev,
        expiry: req.expiry ?? false,
        callId: req.callId,
      });
    }
  }

  /** The effect and answer of one request (etcd's applierV3). */
  private applyRequest(req: InternalRequest, e: Entry): KvResponse | ErrorResponse {
    const op = req.op;
    switch (op.type) {
      case "put": {
        if (op.lease && !this.lessor.get(op.lease)) return Errors.leaseNotFound;
        const txn = this.mvcc.write();
        const { prev } = txn.put(op.key, op.value, op.lease ?? 0);
        this.reattach(op.key, prev, op.lease ?? 0);
        txn.end();
        return op.prevKv && prev
          ? { type: "put", revision: this.mvcc.currentRev, prevKv: { ...prev } }
          : { type: "put", revision: this.mvcc.currentRev };
      }
      case "delete": {
        const txn = this.mvcc.write();
        const deleted = txn.deleteRange(op.key, op.rangeEnd);
        for (const kv of deleted) if (kv.lease) this.lessor.detach(kv.lease, kv.key);
        txn.end();
        return {
          type: "delete",
          revision: this.mvcc.currentRev,
          deleted: deleted.length,
          ...(op.prevKv ? { prevKvs: deleted.map((kv) => ({ ...kv })) } : {}),
        };
      }
      case "txn":
        return this.applyTxn(op, req.origin === this.cfg.memberId);
      case "compact": {
        const r = this.mvcc.compact(op.revision);
        if (r.error) return r.error;
        return { type: "compact", revision: this.mvcc.currentRev };
      }
      case "lease-grant": {
        const r = this.lessor.grant(op.id, op.ttlS, this.ctx.monoUs());
        if ("type" in r) return r;
        this.backend.unlock();
        return { type: "lease-grant", revision: this.mvcc.currentRev, id: r.id, ttlS: r.ttlS };
      }
      case "lease-revoke": {
        const keys = this.lessor.revoke(op.id);
        if (keys === null) {
          this.backend.unlock();
          return Errors.leaseNotFound;
        }
        if (keys.length > 0) {
          const txn = this.mvcc.write();
          for (const k of keys) txn.deleteRange(k, undefined);
          txn.end();
        } else {
          this.backend.unlock();
        }
        return { type: "lease-revoke", revision: this.mvcc.currentRev };
      }
      case "lease-checkpoint": {
        for (const c of op.checkpoints) this.lessor.checkpoint(c.id, c.remainingS);
        this.backend.unlock();
        return { type: "lease-revoke", revision: this.mvcc.currentRev };
      }
      case "publish":
        if (req.id === this.publishId) {
          this.serving = true;
          this.cfg.observer?.serving?.(this.ctx.name, this);
        }
        return { type: "lease-revoke", revision: this.mvcc.currentRev };
      case "range":
        return this.serveRange(op);
    }
    void e;
  }

  /** A key moved to another lease (or none). */
  private reattach(key: string, prev: StoredKv | null, lease: number): void {
    if (prev?.lease && prev.lease !== lease) this.lessor.detach(prev.lease, key);
    if (lease) this.lessor.attach(lease, key);
  }

  /**
   * A txn (etcd's txn.Txn): compares on the current state, then one branch; its reads see
   * its own writes. Range revisions are checked first, on every member, so a compacted
   * range fails the txn everywhere alike; the planted #18667 skips the range ops on
   * members not serving the client, which then apply the writes alone.
   */
  private applyTxn(op: KvRequest & { type: "txn" }, serving: boolean): KvResponse | ErrorResponse {
    const txn = this.mvcc.write();
    const succeeded = op.compare.every((c) => this.compareHolds(txn, c));
    let ops: readonly TxnOp[] = succeeded ? op.success : op.failure;
    if (!serving && this.cfg.bugs.has("txn-range-stripped-on-followers"))
      ops = ops.filter((o) => o.type !== "range");
    for (const o of ops) {
      if (o.type === "range" && o.revision) {
        if (o.revision > this.mvcc.currentRev) {
          txn.end();
          return Errors.futureRevision;
        }
        if (o.revision < this.mvcc.compactMainRev) {
          txn.end();
          return Errors.compacted;
        }
      }
      if (o.type === "put" && o.lease && !this.lessor.get(o.lease)) {
        txn.end();
        return Errors.leaseNotFound;
      }
    }
    const responses: TxnOpResponse[] = [];
    for (const o of ops) {
      if (o.type === "range") {
        const r = txn.range(o.key, o.rangeEnd, {
          rev: o.revision ?? 0,
          limit: o.limit ?? 0,
          countOnly: o.countOnly ?? false,
          keysOnly: o.keysOnly ?? false,
        });
        if (!("kvs" in r)) {
          txn.end();
          return r;
        }
        responses.push(rangeResponse(txn.rev, r, o) as TxnOpResponse);
      } else if (o.type === "put") {
        const { prev } = txn.put(o.key, o.value, o.lease ?? 0);
        this.reattach(o.key, prev, o.lease ?? 0);
        responses.push(
          o.prevKv && prev ? { type: "put", revision: 0, prevKv: { ...prev } } : { type: "put", revision: 0 },
        );
      } else {
        const deleted = txn.deleteRange(o.key, o.rangeEnd);
        for (const kv of deleted) if (kv.lease) this.lessor.detach(kv.lease, kv.key);
        responses.push({
          type: "delete",
          revision: 0,
          deleted: deleted.length,
          ...(o.prevKv ? { prevKvs: deleted.map((kv) => ({ ...kv })) } : {}),
        });
      }
    }
    const revision = txn.rev;
    txn.end();
    return {
      type: "txn",
      revision,
      succeeded,
      responses: responses.map((r) => ({ ...r, revision }) as TxnOpResponse),
    };
  }

  private compareHolds(
    txn: ReturnType<Mvcc["write"]>,
    c: KvRequest & { type: "txn" } extends { compare: readonly (infer C)[] } ? C : never,
  ): boolean {
    const r = txn.range(c.key, c.rangeEnd, {});
    const kvs: KeyValue[] = "kvs" in r ? r.kvs : [];
    if (kvs.length === 0) {
      // a VALUE compare on a key that does not exist fails; the others compare with zero
      if (c.target === "VALUE") return false;
      return compareKv(
        { key: c.key, value: "", createRevision: 0, modRevision: 0, version: 0, lease: 0 },
        c.target,
        c.result,
        c.value,
      );
    }
    return kvs.every((kv) => compareKv(kv, c.target, c.result, c.value));
  }

  private applyConf(e: Entry, cc: ConfChange): void {
    this.crashPoint("beforeApplyOneConfChange");
    const refused = this.refusedConf.get(e.index) ?? null;
    this.refusedConf.delete(e.index);
    const selfRemoved = !refused && cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.cfg.memberId;
    if (refused) {
      // raft applied it as a no-op; the membership stays
    } else if (cc.type === ConfChangeType.RemoveNode) {
      this.members.delete(cc.nodeId);
      this.backend.delete("members", cc.nodeId);
      this.backend.put("members_removed", cc.nodeId, true);
      this.removedMembers.add(cc.nodeId);
    } else {
      const learner = cc.type === ConfChangeType.AddLearnerNode;
      this.members.set(cc.nodeId, { learner });
      this.backend.put("members", cc.nodeId, { learner });
    }
    this.setCi(e);
    this.backend.unlock();
    if (cc.context && cc.context.length > 0) {
      const { id } = decode<{ id: string }>(cc.context);
      const w = this.waits.get(id);
      if (w) {
        this.waits.delete(id);
        this.ctx.cancelTimer(w.timer);
        this.reply(w.client, {
          kind: "maintenance-resp",
          reqId: w.reqId,
          result: refused ?? {
            type: "members",
            members: [...this.members].map(([mid, m]) => ({ id: mid, learner: m.learner })),
          },
          member: this.ctx.name,
        });
      }
    }
    if (selfRemoved) {
      // etcd: "the member has been permanently removed from the cluster"
      this.removed = true;
      this.cfg.observer?.removed(this.ctx.name);
      this.backend.commit();
      this.exit("removed from the cluster");
    }
  }

  /**
   * Installs a snapshot received from the leader (etcd's applySnapshot): the database
   * saved as `<index>.snap.db` becomes the db; MVCC, leases and watchers start over.
   */
  private applySnapshotNow(snap: Snapshot): void {
    this.crashPoint("applyBeforeOpenSnapshot");
    const index = snap.metadata.index;
    this.ctx.mark("snapshot", `installed the leader's snapshot at index ${index}`);
    if (!this.swapInSnapshotDb(index))
      this.panic(`failed to open snapshot backend: ${snapDbPath(index)} is missing`);
    this.restoreStores();
    this.restoreMembers();
    this.backend.startTicker();
    this.watch.restore();
    this.applied = Math.max(this.applied, index);
  }

  // ---- leases -----------------------------------------------------------------------------------

  private handleLease(client: number, reqId: number, id: number, op: "keepalive" | "ttl"): void {
    if (this.raft.isLeader && this.lessor.primary) {
      this.primaryAnswer(id, op, (answer) =>
        this.reply(client, { kind: "lease-resp", reqId, ...answer, member: this.ctx.name }),
      );
      return;
    }
    const to = this.lead === 0 ? -1 : this.cfg.route(this.lead);
    if (to < 0) {
      this.reply(client, {
        kind: "lease-resp",
        reqId,
        ttlS: 0,
        error: Errors.noLeader,
        member: this.ctx.name,
      });
      return;
    }
    // forwarded to the leader's lessor (etcd uses HTTP between members)
    const fwdId = ++this.fwdCounter;
    const timer = this.ctx.setTimer(this.cfg.requestTimeoutUs, "lease.fwd-timeout", () => {
      this.leaseFwds.delete(fwdId);
      this.reply(client, {
        kind: "lease-resp",
        reqId,
        ttlS: 0,
        error: Errors.timeout,
        member: this.ctx.name,
      });
    });
    this.leaseFwds.set(fwdId, { client, reqId, timer });
    this.ctx.send(
      to,
      { kind: "lease-fwd", fwdId, op, id } satisfies PeerMessage,
      "lease-fwd",
      fwdId,
      0,
      Delivery.Stream,
    );
  }

  private handleLeaseForward(from: number, m: PeerMessage & { kind: "lease-fwd" }): void {
    const send = (answer: { ttlS: number; grantedTtlS?: number; error?: ErrorResponse }) =>
      this.ctx.send(
        from,
        { kind: "lease-fwd-resp", fwdId: m.fwdId, ...answer } satisfies PeerMessage,
        "lease-fwd-resp",
        m.fwdId,
        0,
        Delivery.Stream,
      );
    if (this.raft.isLeader && this.lessor.primary) this.primaryAnswer(m.id, m.op, send);
    else send({ ttlS: 0, error: Errors.notLeader });
  }

  /**
   * The primary lessor's answer. A keep-alive first confirms leadership (etcd's
   * LeaseRenew since #15247's fix): a stalled old leader must not renew leases the new
   * one will expire. The planted old-leader-revokes-leases skips that, as before the fix.
   */
  private primaryAnswer(
    id: number,
    op: "keepalive" | "ttl",
    answer: (a: { ttlS: number; grantedTtlS?: number; error?: ErrorResponse }) => void,
  ): void {
    if (op === "ttl" || this.cfg.bugs.has("old-leader-revokes-leases")) {
      answer(this.leaseAnswer(id, op));
      return;
    }
    this.ensureLeadership((ok) =>
      answer(ok ? this.leaseAnswer(id, op) : { ttlS: 0, error: Errors.notPrimary }),
    );
  }

  private leaseAnswer(
    id: number,
    op: "keepalive" | "ttl",
  ): { ttlS: number; grantedTtlS?: number; error?: ErrorResponse } {
    const now = this.ctx.monoUs();
    if (op === "keepalive") {
      const r = this.lessor.renew(id, now);
      if ("type" in r) return r === Errors.leaseNotFound ? { ttlS: 0 } : { ttlS: 0, error: r };
      if (r.clearCheckpoint) this.proposeCheckpoints([{ id, remainingS: 0 }]);
      return { ttlS: r.ttlS };
    }
    const t = this.lessor.timeToLive(id, now);
    return t ? { ttlS: t.ttlS, grantedTtlS: t.grantedTtlS } : { ttlS: -1 };
  }

  /**
   * The leader's lessor found expired leases: revoke them through raft. Since 3.5.13 etcd
   * first confirms it still leads (a ReadIndex round); the planted #15247 does not, so a
   * stalled old leader revokes leases kept alive through the new one.
   */
  private revokeExpiredLeases(): void {
    const expired = this.lessor.expired(this.ctx.monoUs());
    if (expired.length === 0) return;
    const revoke = () => {
      for (const id of expired) {
        const reqId = this.nextRequestId();
        this.cfg.observer?.expiryProposed(this.ctx.name, reqId, id);
        this.raft.propose(
          encode({
            id: reqId,
            origin: this.cfg.memberId,
            op: { type: "lease-revoke", id },
            expiry: true,
          } satisfies InternalRequest),
        );
      }
    };
    if (this.cfg.bugs.has("old-leader-revokes-leases")) {
      revoke();
      return;
    }
    this.ensureLeadership((ok) => ok && revoke());
  }

  /**
   * etcd's ensureLeadership: a ReadIndex round confirms this member still leads the term
   * it leads now; `fn(true)` then, `fn(false)` if it does not or no answer comes in time.
   */
  ensureLeadership(fn: (ok: boolean) => void): void {
    const term = this.raft.term;
    const ctx = `lease.${this.nextRequestId()}`;
    const check = { ctx, term, fn, timer: null as TimerHandle | null };
    check.timer = this.ctx.setTimer(this.cfg.readIndexRetryUs * 2, "lease.ensure-timeout", () => {
      const i = this.leadershipChecks.indexOf(check);
      if (i < 0) return;
      this.leadershipChecks.splice(i, 1);
      fn(false);
    });
    this.leadershipChecks.push(check);
    this.raft.readIndex(ctx);
  }

  private readonly leadershipChecks: {
    ctx: string;
    term: number;
    fn: (ok: boolean) => void;
    timer: TimerHandle | null;
  }[] = [];

  private resolveLeadershipChecks(states: readonly ReadState[]): void {
    for (const c of [...this.leadershipChecks]) {
      if (!states.some((s) => s.requestCtx === c.ctx)) continue;
      this.leadershipChecks.splice(this.leadershipChecks.indexOf(c), 1);
      this.ctx.cancelTimer(c.timer);
      c.fn(this.raft.isLeader && this.raft.term === c.term);
    }
  }

  private checkpointLeases(): void {
    const checkpoints = this.lessor.remaining(this.ctx.monoUs());
    if (checkpoints.length > 0) this.proposeCheckpoints(checkpoints);
  }

  private proposeCheckpoints(checkpoints: { id: number; remainingS: number }[]): void {
    this.raft.propose(
      encode({
        id: this.nextRequestId(),
        origin: this.cfg.memberId,
        op: { type: "lease-checkpoint", checkpoints },
      } satisfies InternalRequest),
    );
  }

  // ---- watch ------------------------------------------------------------------------------------

  private handleWatch(client: number, m: ClientMessage & { streamId: number }): void {
    const key = `${client}:${m.streamId}`;
    let stream = this.streams.get(key);
    switch (m.kind) {
      case "watch-create": {
        if (!stream) {
          stream = new WatchStream(m.streamId, client, m.requireLeader, this.watch);
          this.streams.set(key, stream);
        }
        if (m.requireLeader && this.lead === 0) {
          this.watchReply(client, {
            streamId: m.streamId,
            watchId: -1,
            revision: this.mvcc.currentRev,
            canceled: true,
            cancelReason: Errors.noLeader.message,
            reqId: m.reqId,
          });
          return;
        }
        const w = this.watch.watch(stream, m.request);
        this.watchReply(client, {
          streamId: m.streamId,
          watchId: w.id,
          revision: this.mvcc.currentRev,
          created: true,
          reqId: m.reqId,
        });
        return;
      }
      case "watch-cancel": {
        const w = stream?.watchers.get(m.watchId) ?? stream?.compacted.get(m.watchId);
        if (!stream || !w) return;
        this.watch.remove(w);
        // (a compaction's cancel still queued for it is not sent now, as in etcd)
        stream.compacted.delete(m.watchId);
        this.watchReply(client, {
          streamId: m.streamId,
          watchId: m.watchId,
          revision: this.mvcc.currentRev,
          canceled: true,
        });
        return;
      }
      case "watch-progress":
        if (stream) this.watch.requestProgress(stream);
        return;
      case "watch-close":
        stream?.close();
        this.streams.delete(key);
        return;
    }
  }

  /** On the gRPC watch stream (each message names this process, so a client can tell a restart). */
  private send(client: number, msg: WatchMessage): void {
    this.ctx.send(client, msg, msg.kind, msg.watchId, 0, Delivery.Stream);
  }

  /** A watch response other than events, from this member. */
  private watchReply(
    client: number,
    fields: Omit<Parameters<typeof watchMessage>[0], "member" | "incarnation">,
  ): void {
    this.send(client, watchMessage({ ...fields, member: this.ctx.name, incarnation: this.ctx.incarnation }));
  }

  /** The member has no leader: watch streams that require one are cancelled. */
  private cancelRequireLeaderStreams(): void {
    for (const [key, s] of [...this.streams]) {
      if (!s.requireLeader) continue;
      for (const w of [...s.watchers.values()]) {
        this.watchReply(s.client, {
          streamId: s.id,
          watchId: w.id,
          revision: this.mvcc.currentRev,
          canceled: true,
          cancelReason: Errors.noLeader.message,
        });
      }
      s.close();
      this.streams.delete(key);
    }
  }

  // ---- maintenance and membership ---------------------------------------------------------------

  private handleMaintenance(client: number, reqId: number, op: MaintenanceOp): void {
    const answer = (result: MaintenanceResult | ErrorResponse) =>
      this.reply(client, { kind: "maintenance-resp", reqId, result, member: this.ctx.name });
    switch (op.type) {
      case "status":
        answer({ type: "status", status: this.status() });
        return;
      case "hashkv": {
        const h = this.mvcc.hashKV(op.revision);
        answer("type" in h ? h : { type: "hashkv", hashKv: h });
        return;
      }
      case "defrag":
        if (this.defragging) {
          answer({ type: "defrag" });
          return;
        }
        this.defragging = true;
        this.backend.defrag(this.cfg.bugs.has("defrag-commit-without-ci"), () => {
          this.defragging = false;
          this.reopenBackend();
          this.backend.startTicker();
          answer({ type: "defrag" });
          this.scheduleApply();
        });
        return;
      case "member-list":
        answer({
          type: "members",
          members: [...this.members].map(([id, m]) => ({ id, learner: m.learner })),
        });
        return;
      case "member-add":
      case "member-remove":
      case "member-promote": {
        const id = this.nextRequestId();
        const type =
          op.type === "member-remove"
            ? ConfChangeType.RemoveNode
            : op.type === "member-add" && op.learner
              ? ConfChangeType.AddLearnerNode
              : ConfChangeType.AddNode;
        const timer = this.ctx.setTimer(this.cfg.requestTimeoutUs, "member.timeout", () => {
          this.waits.delete(id);
          answer(Errors.timeout);
        });
        this.waits.set(id, { client, reqId, timer, kind: "maintenance" });
        // etcd's ConfigChangeContext says whether an AddNode promotes a learner
        const context = encode(op.type === "member-promote" ? { id, promote: true } : { id });
        if (!this.raft.proposeConfChange({ type, nodeId: op.memberId, context })) {
          this.waits.delete(id);
          this.ctx.cancelTimer(timer);
          answer(Errors.proposalDropped);
        }
        return;
      }
    }
  }

  status(): import("./protocol.js").Status {
    return {
      revision: this.mvcc.currentRev,
      dbSizeBytes: this.backend.sizeBytes,
      leader: this.lead,
      raftIndex: this.raft.committedIndex,
      raftTerm: this.raft.term,
      appliedIndex: this.applied,
      isLearner: this.members.get(this.cfg.memberId)?.learner ?? false,
      memberId: this.cfg.memberId,
    };
  }

  // ---- hosts for the stores ---------------------------------------------------------------------

  private mvccHost() {
    return {
      failpoint: (name: string) => this.crashPoint(name),
      setTimer: (us: number, label: string, fn: () => void) => {
        this.ctx.setTimer(us, label, fn);
      },
      forceCommit: (done?: () => void) => this.backend.commit(true, done),
      notify: (rev: number, changes: readonly { type: "PUT" | "DELETE"; kv: KeyValue }[]) =>
        this.watch.notify(rev, changes),
      fatal: (reason: string) => this.panic(reason),
    };
  }

  private watchHost() {
    return {
      setTimer: (us: number, label: string, fn: () => void) => {
        this.ctx.setTimer(us, label, fn);
      },
      failpoint: (name: string) => this.ctx.failpoint(name),
      send: (toClient: number, msg: WatchMessage) => this.send(toClient, msg),
      memberName: this.ctx.name,
      incarnation: this.ctx.incarnation,
    };
  }
}

/** Request checks etcd makes before raft (api/v3rpc/key.go). */
function validate(req: KvRequest): ErrorResponse | null {
  switch (req.type) {
    case "range":
    case "put":
    case "delete":
      return req.key === "" ? Errors.emptyKey : null;
    case "txn": {
      if (
        req.success.length > MAX_TXN_OPS ||
        req.failure.length > MAX_TXN_OPS ||
        req.compare.length > MAX_TXN_OPS
      )
        return Errors.tooManyOps;
      for (const branch of [req.success, req.failure]) {
        const puts = new Set<string>();
        for (const o of branch) {
          if (o.key === "") return Errors.emptyKey;
          if (o.type !== "put") continue;
          if (puts.has(o.key)) return Errors.duplicateKey;
          puts.add(o.key);
        }
        for (const o of branch)
          if (o.type === "delete")
            for (const k of puts) if (inKeyRange(k, o.key, o.rangeEnd)) return Errors.duplicateKey;
      }
      return null;
    }
    default:
      return null;
  }
}

function isReadOnlyTxn(req: KvRequest & { type: "txn" }): boolean {
  return req.success.every((o) => o.type === "range") && req.failure.every((o) => o.type === "range");
}

function rangeResponse(revision: number, r: RangeResult, req: RangeRequest): KvResponse {
  const limit = req.limit ?? 0;
  return {
    type: "range",
    revision,
    kvs: r.kvs,
    count: r.count,
    more: !req.countOnly && limit > 0 && r.count > limit,
  };
}

function compareKv(kv: KeyValue, target: string, result: string, value: string | number): boolean {
  const a =
    target === "VERSION"
      ? kv.version
      : target === "CREATE"
        ? kv.createRevision
        : target === "MOD"
          ? kv.modRevision
          : target === "LEASE"
            ? kv.lease
            : kv.value;
  switch (result) {
    case "EQUAL":
      return a === value;
    case "NOT_EQUAL":
      return a !== value;
    case "GREATER":
      return a > value;
    default:
      return a < value;
  }
}
