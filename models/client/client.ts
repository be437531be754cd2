// An etcd client as Kubernetes and etcd's robustness tests use clientv3: a list of
// endpoints with one connection at a time, per-request timeouts, reads retried while
// members are unavailable, writes never retried (a failed write's outcome is unknown),
// watches that resume on another member from the last revision seen plus one, and a
// lease keep-alive loop. It runs as a node of the simulator, so partitions and link
// faults reach it like any member, and it records everything into the history.
//
// Callbacks, not promises: the simulator runs events synchronously, and promise
// continuations would run outside its order.
import { Delivery, type NodeContext, type NodeProgram, type TimerHandle } from "../../sim/index.js";
import { Errors } from "../etcd/errors.js";
import type { ClientMessage, MaintenanceOp, MaintenanceResult, ServerMessage } from "../etcd/protocol.js";
import type { WatchMessage } from "../etcd/watch.js";
import type { ErrorResponse, KvRequest, KvResponse, WatchEvent, WatchRequest } from "./history.js";
import type { HistoryRecorder } from "./recorder.js";

export interface ClientConfig {
  /** The client's id in the history. */
  readonly id: number;
  /** Simulator nodes of the members it may talk to, in preference order. */
  readonly endpoints: () => readonly number[];
  /** clientv3's per-call context deadline. */
  readonly requestTimeoutUs: number;
  /** gRPC keepalive: a ping this often, the connection declared broken after the timeout. */
  readonly keepAliveIntervalUs: number;
  readonly keepAliveTimeoutUs: number;
  /** Wait between read retries (clientv3's retry interceptor backs off ~25 ms). */
  readonly retryBackoffUs: number;
  readonly recorder: HistoryRecorder;
}

export const DEFAULT_CLIENT: Omit<ClientConfig, "id" | "endpoints" | "recorder"> = {
  requestTimeoutUs: 2_000_000,
  keepAliveIntervalUs: 1_000_000,
  keepAliveTimeoutUs: 500_000,
  retryBackoffUs: 25_000,
};

/**
 * A full configuration, defaults filled in, every field in one order: the client reads
 * it on every call, and configurations of different shapes made those reads megamorphic.
 */
export function clientConfig(
  c: Pick<ClientConfig, "id" | "endpoints" | "recorder"> & Partial<ClientConfig>,
): ClientConfig {
  return {
    id: c.id,
    endpoints: c.endpoints,
    requestTimeoutUs: c.requestTimeoutUs ?? DEFAULT_CLIENT.requestTimeoutUs,
    keepAliveIntervalUs: c.keepAliveIntervalUs ?? DEFAULT_CLIENT.keepAliveIntervalUs,
    keepAliveTimeoutUs: c.keepAliveTimeoutUs ?? DEFAULT_CLIENT.keepAliveTimeoutUs,
    retryBackoffUs: c.retryBackoffUs ?? DEFAULT_CLIENT.retryBackoffUs,
    recorder: c.recorder,
  };
}

export type KvCallback = (r: KvResponse | ErrorResponse, member: string | undefined) => void;

interface Pending {
  /** The member node the request went to: a broken connection fails it. */
  readonly node: number;
  onAnswer(msg: ServerMessage): void;
  onBroken(): void;
}

export interface WatchListener {
  onEvents?(events: readonly WatchEvent[], revision: number): void;
  onProgress?(revision: number): void;
  /** The watch ended for good: compacted (with the compact revision) or cancelled. */
  onCanceled?(compactRevision: number | undefined, reason: string | undefined): void;
}

/** A watch as the client keeps it across resumes. */
export class ClientWatch {
  /** The revision to resume from: the last event or progress revision seen, plus one. */
  nextRev: number;
  /** The server's id for it on the current stream (-1 while being created). */
  watchId = -1;
  createReqId = -1;
  /** Its place among the creations confirmed on the current stream. */
  createdOrder = -1;
  done = false;

  constructor(
    private readonly client: EtcdClient,
    readonly record: number,
    readonly request: WatchRequest,
    readonly listener: WatchListener,
  ) {
    this.nextRev = request.startRevision ?? 0;
  }

  cancel(): void {
    this.client.cancelWatch(this);
  }
}

interface SubStream {
  /** Per progress request, in order: how many creations were confirmed when it was sent. */
  readonly asked: number[];
  /** Creations confirmed on the stream so far. */
  created: number;
  /** The member process the stream is on, once it answered. */
  incarnation: number | null;
}

export class EtcdClient implements NodeProgram {
  private endpointIdx = 0;
  /** The member node of the current connection and the incarnation it answered with. */
  private node = -1;
  private incarnation = -1;
  private counter = 0;
  private readonly pending = new Map<number, Pending>();
  private pingTimer: TimerHandle | null = null;
  // watches: one stream on the current connection (clientv3 shares one per context)
  private streamId = 0;
  private streamNode = -1;
  /** Connections made so far; a stream belongs to one (a reconnect opens new streams). */
  private connGen = 0;
  private streamGen = -1;
  private watchRetryArmed = false;
  private readonly watches: ClientWatch[] = [];
  /**
   * Per open stream: a stream-wide progress notification answers a progress request and
   * speaks only for the watches whose creation was confirmed before that request went
   * out (a created response can overtake notifications queued earlier).
   */
  private readonly subStreams = new Map<number, SubStream>();
  private leaseCounter = 0;

  constructor(
    readonly ctx: NodeContext,
    readonly cfg: ClientConfig,
  ) {
    const eps = cfg.endpoints();
    // spread clients over members, as a balancer's first pick would
    this.endpointIdx = eps.length > 0 ? ctx.random.int(0, eps.length) : 0;
    this.connect();
  }

  get id(): number {
    return this.cfg.id;
  }

  /** The member node the client talks to now. */
  get endpoint(): number {
    return this.node;
  }

  private nextId(): number {
    return ++this.counter;
  }

  private now(): number {
    return this.ctx.monoUs();
  }

  // ---- the connection ------------------------------------------------------------------------

  private connect(): void {
    this.connGen++;
    const eps = this.cfg.endpoints();
    this.node = eps.length > 0 ? (eps[this.endpointIdx % eps.length] as number) : -1;
    this.incarnation = -1;
    this.ctx.cancelTimer(this.pingTimer);
    this.pingTimer = this.ctx.setTimer(this.cfg.keepAliveIntervalUs, "client.ping", () => this.ping());
  }

  /** Moves to the next endpoint (after an error that says this member cannot serve). */
  switchEndpoint(): void {
    this.endpointIdx++;
    this.connect();
    this.resumeWatches();
  }

  private ping(): void {
    const node = this.node;
    const reqId = this.nextId();
    const timer = this.ctx.setTimer(this.cfg.keepAliveTimeoutUs, "client.ping-timeout", () => {
      this.pending.delete(reqId);
      if (this.node === node) this.broken(node);
    });
    this.pending.set(reqId, {
      node,
      onAnswer: (msg) => {
        this.ctx.cancelTimer(timer);
        if (msg.kind !== "pong" || this.node !== node) return;
        if (this.incarnation >= 0 && msg.incarnation !== this.incarnation) {
          // the member restarted: the old connection, and everything on it, is gone
          this.incarnation = msg.incarnation;
          this.broken(node);
          return;
        }
        this.incarnation = msg.incarnation;
        this.pingTimer = this.ctx.setTimer(this.cfg.keepAliveIntervalUs, "client.ping", () => this.ping());
      },
      onBroken: () => this.ctx.cancelTimer(timer),
    });
    this.send(node, { kind: "ping", reqId });
  }

  /** The connection to `node` broke: calls on it fail, watches move to another member. */
  private broken(node: number): void {
    for (const [reqId, p] of [...this.pending]) {
      if (p.node !== node) continue;
      this.pending.delete(reqId);
      p.onBroken();
    }
    if (this.node === node) this.switchEndpoint();
  }

  private send(node: number, msg: ClientMessage): void {
    if (node < 0) return;
    this.ctx.send(node, msg, msg.kind, "reqId" in msg ? msg.reqId : 0, 0, Delivery.Stream); // gRPC
  }

  onMessage(_from: number, msg: unknown): void {
    const m = msg as ServerMessage;
    if (m.kind === "watch-resp") {
      this.onWatchMessage(m);
      return;
    }
    const p = this.pending.get(m.reqId);
    if (!p) return;
    this.pending.delete(m.reqId);
    p.onAnswer(m);
  }

  /**
   * A unary call on the current connection with a deadline. `done` gets the answer, or
   * the connection-lost or deadline error.
   */
  private unary(
    make: (reqId: number) => ClientMessage,
    timeoutUs: number,
    done: (msg: ServerMessage | ErrorResponse) => void,
  ): void {
    const node = this.node;
    const reqId = this.nextId();
    const timer = this.ctx.setTimer(timeoutUs, "client.deadline", () => {
      if (!this.pending.delete(reqId)) return;
      done(Errors.deadlineExceeded);
    });
    this.pending.set(reqId, {
      node,
      onAnswer: (msg) => {
        this.ctx.cancelTimer(timer);
        done(msg);
      },
      onBroken: () => {
        this.ctx.cancelTimer(timer);
        done(Errors.connectionLost);
      },
    });
    if (node < 0) {
      this.pending.delete(reqId);
      this.ctx.cancelTimer(timer);
      done(Errors.connectionLost);
      return;
    }
    this.send(node, make(reqId));
  }

  // ---- KV ------------------------------------------------------------------------------------

  /**
   * A KV request, recorded in the history. Reads are retried on another member while
   * the error says the member cannot serve and the deadline allows; writes are not.
   */
  kv(request: KvRequest, done?: KvCallback): void {
    const op = this.cfg.recorder.call(this.cfg.id, request);
    const deadlineUs = this.now() + this.cfg.requestTimeoutUs;
    const retryable = request.type === "range";
    const attempt = () => {
      const leftUs = deadlineUs - this.now();
      if (leftUs <= 0) {
        this.cfg.recorder.finish(op, Errors.deadlineExceeded);
        done?.(Errors.deadlineExceeded, undefined);
        return;
      }
      this.unary(
        (reqId) => ({ kind: "kv", reqId, request, callId: op }),
        leftUs,
        (msg) => {
          const response =
            "kind" in msg ? (msg.kind === "kv-resp" ? msg.response : Errors.connectionLost) : msg;
          const member = "kind" in msg ? msg.member : undefined;
          if (response.type === "error" && response.code === "Unavailable") {
            // this member cannot serve (no leader, partitioned, restarting): try another;
            // a refused connection carried nothing, so even a write may go elsewhere
            this.switchEndpoint();
            const unsent = response.message === Errors.connectionRefused.message;
            if ((retryable || unsent) && deadlineUs - this.now() > this.cfg.retryBackoffUs) {
              this.ctx.setTimer(this.cfg.retryBackoffUs, "client.retry", attempt);
              return;
            }
          } else if (response.type === "error" && response.code === "DeadlineExceeded") {
            this.switchEndpoint();
          }
          this.cfg.recorder.finish(op, response, member);
          done?.(response, member);
        },
      );
    };
    attempt();
  }

  get(key: string, opts: Omit<KvRequest & { type: "range" }, "type" | "key"> = {}, done?: KvCallback): void {
    this.kv({ type: "range", key, ...opts }, done);
  }

  put(key: string, value: string, opts: { lease?: number; prevKv?: boolean } = {}, done?: KvCallback): void {
    this.kv({ type: "put", key, value, ...opts }, done);
  }

  delete(key: string, opts: { rangeEnd?: string; prevKv?: boolean } = {}, done?: KvCallback): void {
    this.kv({ type: "delete", key, ...opts }, done);
  }

  // ---- leases --------------------------------------------------------------------------------

  /** A lease id unique to this client (clientv3 lets the caller choose one). */
  newLeaseId(): number {
    return this.cfg.id * 1_000_000 + ++this.leaseCounter;
  }

  leaseGrant(ttlS: number, done?: KvCallback): number {
    const id = this.newLeaseId();
    this.kv({ type: "lease-grant", id, ttlS }, done);
    return id;
  }

  leaseRevoke(id: number, done?: KvCallback): void {
    this.kv({ type: "lease-revoke", id }, done);
  }

  /** One keep-alive, recorded; `done` gets the new TTL (0: not found) or an error. */
  leaseKeepAliveOnce(id: number, done?: (ttlS: number, error: ErrorResponse | undefined) => void): void {
    const callUs = this.cfg.recorder.nowUs();
    this.unary(
      (reqId) => ({ kind: "lease-keepalive", reqId, id }),
      this.cfg.requestTimeoutUs,
      (msg) => {
        if (!("kind" in msg) || msg.kind !== "lease-resp") {
          const error = "kind" in msg ? Errors.connectionLost : msg;
          this.cfg.recorder.keepAlive({
            client: this.cfg.id,
            lease: id,
            callUs,
            returnUs: null,
            ttlS: 0,
            error: error.message,
          });
          if (error.code === "DeadlineExceeded") this.switchEndpoint();
          done?.(0, error);
          return;
        }
        const rec = { client: this.cfg.id, lease: id, member: msg.member, callUs, ttlS: msg.ttlS };
        if (msg.error) {
          this.cfg.recorder.keepAlive({ ...rec, returnUs: null, error: msg.error.message });
          if (msg.error.code === "Unavailable") this.switchEndpoint();
        } else {
          this.cfg.recorder.keepAlive({ ...rec, returnUs: this.cfg.recorder.nowUs() });
        }
        done?.(msg.ttlS, msg.error);
      },
    );
  }

  /**
   * clientv3's KeepAlive: a renewal every TTL/3; the lease is lost when the lessor says
   * it is gone, or when no renewal succeeded for a whole TTL.
   */
  keepAlive(id: number, ttlS: number, onLost?: () => void): { stop(): void } {
    let stopped = false;
    let lastOkUs = this.now();
    const intervalUs = Math.max(1, Math.floor((ttlS * 1_000_000) / 3));
    const tick = () => {
      if (stopped) return;
      this.leaseKeepAliveOnce(id, (ttl, error) => {
        if (stopped) return;
        if (!error && ttl > 0) lastOkUs = this.now();
        if ((!error && ttl <= 0) || this.now() - lastOkUs >= ttlS * 1_000_000) {
          stopped = true;
          onLost?.();
          return;
        }
        this.ctx.setTimer(error ? Math.min(intervalUs, 500_000) : intervalUs, "client.keepalive", tick);
      });
    };
    tick();
    return {
      stop: () => {
        stopped = true;
      },
    };
  }

  leaseTimeToLive(
    id: number,
    done: (ttlS: number, grantedTtlS: number, error: ErrorResponse | undefined) => void,
  ): void {
    this.unary(
      (reqId) => ({ kind: "lease-ttl", reqId, id }),
      this.cfg.requestTimeoutUs,
      (msg) => {
        if (!("kind" in msg) || msg.kind !== "lease-resp")
          done(0, 0, "kind" in msg ? Errors.connectionLost : msg);
        else done(msg.ttlS, msg.grantedTtlS ?? 0, msg.error);
      },
    );
  }

  // ---- maintenance ---------------------------------------------------------------------------

  /** A maintenance call on a given member (not recorded in the history). */
  maintenance(
    node: number,
    op: MaintenanceOp,
    done: (r: MaintenanceResult | ErrorResponse) => void,
    timeoutUs = this.cfg.requestTimeoutUs,
  ): void {
    const reqId = this.nextId();
    const timer = this.ctx.setTimer(timeoutUs, "client.deadline", () => {
      if (this.pending.delete(reqId)) done(Errors.deadlineExceeded);
    });
    this.pending.set(reqId, {
      node,
      onAnswer: (msg) => {
        this.ctx.cancelTimer(timer);
        done(msg.kind === "maintenance-resp" ? msg.result : Errors.connectionLost);
      },
      onBroken: () => {
        this.ctx.cancelTimer(timer);
        done(Errors.connectionLost);
      },
    });
    this.send(node, { kind: "maintenance", reqId, op });
  }

  // ---- watch ---------------------------------------------------------------------------------

  /** Opens a watch; it resumes on other members until cancelled or compacted. */
  watch(request: WatchRequest, listener: WatchListener = {}): ClientWatch {
    const record = this.cfg.recorder.watchStarted(this.cfg.id, request);
    const w = new ClientWatch(this, record, request, listener);
    this.watches.push(w);
    this.createWatch(w);
    return w;
  }

  /**
   * Asks the current member for a progress notification on this client's streams.
   * (clientv3 opens one gRPC stream per context; watches that require a leader carry
   * that in their context, so they get a stream of their own: two per connection.)
   */
  requestProgress(): void {
    if (this.streamGen !== this.connGen || this.node < 0) return;
    for (const sub of this.subStreams.keys()) {
      const st = this.subStreams.get(sub) as SubStream;
      st.asked.push(st.created);
      if (st.asked.length > 64) st.asked.shift();
      this.send(this.node, { kind: "watch-progress", streamId: sub });
    }
  }

  cancelWatch(w: ClientWatch): void {
    if (w.done) return;
    w.done = true;
    this.dropWatch(w);
    if (w.watchId >= 0 && this.streamGen === this.connGen)
      this.send(this.node, { kind: "watch-cancel", streamId: this.subOf(w), watchId: w.watchId });
  }

  get activeWatches(): number {
    return this.watches.length;
  }

  private dropWatch(w: ClientWatch): void {
    const i = this.watches.indexOf(w);
    if (i >= 0) this.watches.splice(i, 1);
  }

  /** The gRPC stream of a watch on the current connection. */
  private subOf(w: ClientWatch): number {
    return this.streamId * 2 + (w.request.requireLeader ? 1 : 0);
  }

  /** The streams on the current connection, opened on first use. */
  private ensureStream(): void {
    if (this.streamGen === this.connGen) return;
    if (this.streamNode >= 0)
      for (const sub of this.subStreams.keys())
        this.send(this.streamNode, { kind: "watch-close", streamId: sub });
    this.streamId++;
    this.streamNode = this.node;
    this.streamGen = this.connGen;
    this.subStreams.clear();
  }

  private createWatch(w: ClientWatch): void {
    if (this.node < 0) return;
    this.ensureStream();
    w.watchId = -1;
    w.createReqId = this.nextId();
    const r = w.request;
    const sub = this.subOf(w);
    if (!this.subStreams.has(sub)) this.subStreams.set(sub, { asked: [], created: 0, incarnation: null });
    this.send(this.node, {
      kind: "watch-create",
      streamId: sub,
      reqId: w.createReqId,
      requireLeader: r.requireLeader ?? false,
      request: {
        key: r.key,
        ...(r.rangeEnd !== undefined ? { rangeEnd: r.rangeEnd } : {}),
        ...(w.nextRev > 0 ? { startRevision: w.nextRev } : {}),
        ...(r.prevKv ? { prevKv: true } : {}),
        ...(r.progressNotify ? { progressNotify: true } : {}),
        ...(r.filters ? { filters: r.filters } : {}),
      },
    });
  }

  /** The connection moved: every live watch is created again from where it got to. */
  private resumeWatches(): void {
    for (const w of this.watches) this.createWatch(w);
  }

  private onWatchMessage(m: WatchMessage): void {
    const st = this.subStreams.get(m.streamId);
    if (!st || this.streamNode < 0) return;
    if (m.incarnation !== undefined) {
      if (st.incarnation === null) st.incarnation = m.incarnation;
      else if (st.incarnation !== m.incarnation) {
        // the member restarted under this stream: the connection is gone, its watches too
        this.broken(this.streamNode);
        return;
      }
    }
    if (m.created || (m.canceled && m.reqId !== undefined)) {
      const w = this.watches.find((x) => x.createReqId === m.reqId);
      if (!w) return;
      if (m.canceled) {
        this.watchCanceled(w, m);
        return;
      }
      w.watchId = m.watchId;
      w.createdOrder = st.created++;
      this.cfg.recorder.watchResponse(w.record, {
        member: m.member,
        revision: m.revision,
        events: [],
        created: true,
        startRevision: w.nextRev,
      });
      if (w.nextRev === 0) w.nextRev = m.revision + 1;
      return;
    }
    if (m.watchId === -1) {
      // a requested progress notification, for the watches created before the request
      if (!m.progressNotify) return;
      const asked = st.asked.shift() ?? 0;
      for (const w of [...this.watches])
        if (w.watchId >= 0 && this.subOf(w) === m.streamId && w.createdOrder < asked)
          this.watchProgress(w, m);
      return;
    }
    const w = this.watches.find((x) => x.watchId === m.watchId && this.subOf(x) === m.streamId);
    if (!w) return;
    if (m.canceled) {
      this.watchCanceled(w, m);
      return;
    }
    if (m.progressNotify && m.events.length === 0) {
      this.watchProgress(w, m);
      return;
    }
    this.cfg.recorder.watchEvents(w.record, m.member, m.revision, m.events);
    const n = m.events.length;
    if (n > 0) w.nextRev = Math.max(w.nextRev, (m.events[n - 1] as WatchEvent).kv.modRevision + 1);
    w.listener.onEvents?.(m.events, m.revision);
  }

  private watchProgress(w: ClientWatch, m: WatchMessage): void {
    this.cfg.recorder.watchResponse(w.record, {
      member: m.member,
      revision: m.revision,
      events: [],
      progressNotify: true,
    });
    w.nextRev = Math.max(w.nextRev, m.revision + 1);
    w.listener.onProgress?.(m.revision);
  }

  /** One reconnect for all the watches that need one, after a short backoff. */
  private retryWatchesSoon(): void {
    if (this.watchRetryArmed) return;
    this.watchRetryArmed = true;
    this.ctx.setTimer(this.cfg.retryBackoffUs * 4, "client.watch-retry", () => {
      this.watchRetryArmed = false;
      if (this.watches.some((x) => x.watchId < 0)) this.switchEndpoint();
    });
  }

  private watchCanceled(w: ClientWatch, m: WatchMessage): void {
    this.cfg.recorder.watchResponse(w.record, {
      member: m.member,
      revision: m.revision,
      events: [],
      canceled: true,
      ...(m.compactRevision !== undefined ? { compactRevision: m.compactRevision } : {}),
      ...(m.cancelReason ? { error: m.cancelReason } : {}),
    });
    if (
      m.compactRevision === undefined &&
      (m.cancelReason === Errors.noLeader.message || m.cancelReason === Errors.connectionRefused.message)
    ) {
      // a require-leader watch lost its leader (clientv3 surfaces the error and the
      // caller, a Kubernetes reflector, watches again), or the member does not serve yet:
      // try again shortly, on another member if there is one
      w.watchId = -1;
      this.retryWatchesSoon();
      return;
    }
    w.done = true;
    this.dropWatch(w);
    w.listener.onCanceled?.(m.compactRevision, m.cancelReason);
  }
}
