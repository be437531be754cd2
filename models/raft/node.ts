// The glue between a Raft core and a simulated node: it ticks raft on the node's
// monotonic clock, persists each Ready to the WAL and snapshot files on the node's
// virtual disk, sends on the virtual network, hands committed entries to the
// application, and takes snapshots. It follows the order of etcd's raft loop
// (server/etcdserver/raft.go), with etcd's failpoint names between the steps:
//
//   committed entries → application (etcd's apply goroutine starts on them now)
//   leader: send (raftBeforeLeaderSend) — in parallel with its own write
//   incoming snapshot: .snap file, then WAL marker (raftBeforeSaveSnap, raftAfterSaveSnap)
//   WAL save of hard state and entries, fsync when needed (raftBeforeSave, raftAfterSave)
//   snapshot: apply to storage, release old WAL (raftBeforeApplySnap, raftAfterApplySnap,
//     raftAfterWALRelease)
//   append to storage; follower: send (raftBeforeFollowerSend); advance
//
// While a Ready is being persisted raft keeps stepping messages (etcd's node goroutine
// runs on), but ticks wait, at most one of them (Go's ticker channel holds one).
import { Delivery, type NodeContext, NodeCrash, type TimerHandle } from "../../sim/index.js";
import { encode } from "../codec.js";
import type { RaftInvariants } from "./invariants.js";
import { MemoryStorage } from "./log.js";
import { decodeConfChange, RawNode } from "./raft.js";
import type { ReadOnlyOption } from "./readonly.js";
import { Snapshotter } from "./snap.js";
import { ProgressState } from "./tracker.js";
import {
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MSG_NAMES,
  Msg,
  NO_MESSAGES,
  NONE,
  RaftPanic,
  type ReadState,
  type Ready,
  ROLE_NAMES,
  type Snapshot,
  StateType,
} from "./types.js";
import { scanSnapshots, Wal, WalError, WalTornTail, walExists } from "./wal.js";

export interface RaftNodeConfig {
  /** This member's raft id (etcd's member id). */
  readonly id: number;
  /** Voters of a new cluster, bootstrapped on first boot; empty to join an existing one. */
  readonly initialPeers: readonly number[];
  /**
   * The bootstrap is a restore (etcdutl snapshot restore): its membership becomes a raft
   * snapshot, not log entries, so a member that joins later is sent the data by snapshot
   * instead of replaying a log that never held it.
   */
  readonly bootstrapAsSnapshot?: boolean;
  /** The data directory on the node's disk (etcd: `<data-dir>/member`). */
  readonly dir: string;
  /** etcd's --heartbeat-interval: one raft tick. */
  readonly tickUs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Applied entries between snapshots (etcd's --snapshot-count). */
  readonly snapshotCount: number;
  /** Entries kept in memory after a snapshot for slow followers (SnapshotCatchUpEntries). */
  readonly snapshotCatchUpEntries: number;
  readonly walSegmentBytes: number;
  readonly maxInflightMsgs: number;
  readonly maxSizePerMsg: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  /** Planted bug (etcd #14370): the leader counts its own write before it is durable. */
  readonly commitBeforeLeaderPersist: boolean;
  /** Planted bug (Raft paper, Figure 2): a vote is sent before the hard state is fsynced. */
  readonly voteBeforePersist: boolean;
  /** The simulator node of a raft id, or -1 when unknown. */
  readonly route: (raftId: number) => number;
  readonly invariants: RaftInvariants | null;
}

/** A configuration as callers give it: what has no default, and any defaults to override. */
export type RaftNodeOptions = Pick<RaftNodeConfig, "id" | "initialPeers" | "route" | "invariants"> &
  Partial<RaftNodeConfig>;

/** The election timeout of a (partial) config, defaults filled in. */
export function electionTimeoutUs(raft: Partial<Pick<RaftNodeConfig, "tickUs" | "electionTicks">>): number {
  return (raft.electionTicks ?? DEFAULT_RAFT_NODE.electionTicks) * (raft.tickUs ?? DEFAULT_RAFT_NODE.tickUs);
}

/** etcd's defaults, with snapshots and WAL segments small enough for simulated runs. */
export const DEFAULT_RAFT_NODE: Omit<RaftNodeConfig, "id" | "initialPeers" | "route" | "invariants"> = {
  dir: "member",
  tickUs: 100_000,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotCount: 10_000,
  snapshotCatchUpEntries: 5_000,
  walSegmentBytes: 256 * 1024,
  maxInflightMsgs: 512,
  maxSizePerMsg: 1024 * 1024,
  preVote: true,
  checkQuorum: true,
  readOnlyOption: "safe",
  commitBeforeLeaderPersist: false,
  voteBeforePersist: false,
};

/**
 * A full configuration, defaults filled in, every field in one order. The node reads it
 * on every message; configurations built by spreads had a shape per scenario, and each
 * new shape deoptimized the whole raft loop.
 */
export function raftNodeConfig(c: RaftNodeOptions): RaftNodeConfig {
  const d = DEFAULT_RAFT_NODE;
  return {
    id: c.id,
    initialPeers: c.initialPeers,
    bootstrapAsSnapshot: c.bootstrapAsSnapshot ?? false,
    dir: c.dir ?? d.dir,
    tickUs: c.tickUs ?? d.tickUs,
    electionTicks: c.electionTicks ?? d.electionTicks,
    heartbeatTicks: c.heartbeatTicks ?? d.heartbeatTicks,
    snapshotCount: c.snapshotCount ?? d.snapshotCount,
    snapshotCatchUpEntries: c.snapshotCatchUpEntries ?? d.snapshotCatchUpEntries,
    walSegmentBytes: c.walSegmentBytes ?? d.walSegmentBytes,
    maxInflightMsgs: c.maxInflightMsgs ?? d.maxInflightMsgs,
    maxSizePerMsg: c.maxSizePerMsg ?? d.maxSizePerMsg,
    preVote: c.preVote ?? d.preVote,
    checkQuorum: c.checkQuorum ?? d.checkQuorum,
    readOnlyOption: c.readOnlyOption ?? d.readOnlyOption,
    commitBeforeLeaderPersist: c.commitBeforeLeaderPersist ?? d.commitBeforeLeaderPersist,
    voteBeforePersist: c.voteBeforePersist ?? d.voteBeforePersist,
    route: c.route,
    invariants: c.invariants,
  };
}

/** What the application on top of raft provides. */
export interface RaftApp {
  /** Applies a committed normal entry (the leader's empty entries included). */
  applyEntry(e: Entry): void;
  /**
   * Whether a committed membership change may take effect, asked in log order just
   * before raft applies it (etcd's ValidateConfigurationChange); a refused change
   * reaches raft with node NONE, a no-op. Absent: every change may.
   */
  confChangeAllowed?(e: Entry, cc: ConfChange): boolean;
  /** A committed membership change, already applied to raft's configuration (or refused). */
  applyConfChange(e: Entry, cc: ConfChange, confState: ConfState): void;
  /** Replaces the state machine with a snapshot received from the leader (now durable). */
  applySnapshot(snap: Snapshot): void;
  /** The state machine's state at the applied index, for a snapshot. */
  snapshotData(appliedIndex: number): Uint8Array;
  /** Read indexes confirmed by the leader. */
  onReadStates?(states: readonly ReadState[]): void;
  /** Leadership or role changed. */
  onSoftState?(state: StateType, lead: number, term: number): void;
  /** raft or its storage failed fatally; the node is about to crash. */
  onFatal?(reason: string): void;
  /**
   * The index the application finished applying, when it applies asynchronously (etcd's
   * apply goroutine): snapshots are taken there, never ahead of it. Call
   * `RaftNode.applied()` when it moves.
   */
  appliedIndex?(): number;
  /** Lets the application attach its own state to an outgoing snapshot (etcd sends the db). */
  decorateSnapshot?(m: Message): Message;
}

/** How long a leader waits for a sent snapshot to be acknowledged before reporting it failed. */
const SNAPSHOT_SEND_TIMEOUT_US = 5_000_000;

export class RaftNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  /** The snapshot the node booted from (null when none): the application restores it. */
  readonly bootSnapshot: Snapshot | null;
  private wal: Wal | null = null;
  private readonly snapshotter: Snapshotter;
  private app: RaftApp | null = null;
  /** A Ready is being persisted (or a failpoint stalls the loop): no new Ready until done. */
  private blocked = false;
  private pendingTick = false;
  private tickTimer: TimerHandle | null = null;
  private snapshotIndex = 0;
  private snapshotting = false;
  /** A restored bootstrap's entries, to be snapshotted and compacted away once applied. */
  private compactBootstrapAt = 0;
  /** The commit index this node last reported as leader (for the invariant checker). */
  private leaderCommit = 0;
  appliedIndex = 0;
  private readonly snapTimers = new Map<number, TimerHandle>();
  private readonly walDir: string;
  // The Ready in flight (one at a time: `blocked`) and what its stages need. The stages
  // are bound once: a closure per stage per Ready was most of this loop's allocation.
  private rd: Ready | null = null;
  /** Whether the node led when the Ready was taken (a leader sends before persisting). */
  private rdLeader = false;
  /** Vote grants already sent (the planted vote-before-persist bug), not to send twice. */
  private rdEarly: readonly Message[] = NO_MESSAGES;
  private rdSynced = false;

  readonly config: RaftNodeConfig;

  constructor(
    private readonly ctx: NodeContext,
    options: RaftNodeOptions,
  ) {
    const config = raftNodeConfig(options);
    this.config = config;
    this.walDir = `${config.dir}/wal`;
    this.snapshotter = new Snapshotter(ctx.disk, `${config.dir}/snap`);
    const disk = ctx.disk;
    let storage: MemoryStorage;
    let snap: Snapshot | null = null;
    let nothingPersisted = false;
    if (walExists(disk, this.walDir)) {
      snap = this.snapshotter.loadNewestAvailable(scanSnapshots(disk, this.walDir));
      const marker = snap ? { index: snap.metadata.index, term: snap.metadata.term } : { index: 0, term: 0 };
      const read = this.openWal(marker);
      nothingPersisted = !snap && !read.hardState && read.entries.length === 0;
      storage = new MemoryStorage(snap ?? undefined);
      if (read.hardState) storage.hardState = read.hardState;
      storage.append(read.entries);
      this.snapshotIndex = marker.index;
      this.appliedIndex = marker.index;
      config.invariants?.booted(ctx.name, storage.hardState);
    } else {
      storage = new MemoryStorage();
    }
    this.storage = storage;
    this.bootSnapshot = snap;
    this.raw = this.guard(
      () =>
        new RawNode({
          id: config.id,
          electionTick: config.electionTicks,
          heartbeatTick: config.heartbeatTicks,
          storage,
          maxSizePerMsg: config.maxSizePerMsg,
          maxInflightMsgs: config.maxInflightMsgs,
          checkQuorum: config.checkQuorum,
          preVote: config.preVote,
          readOnlyOption: config.readOnlyOption,
          random: ctx.random,
          commitBeforeLeaderPersist: config.commitBeforeLeaderPersist,
        }),
    );
    // A new member bootstraps; so does one whose WAL, created by a first start that died
    // before its first save, holds nothing (else it would wait forever with no voters).
    if ((this.wal === null || nothingPersisted) && config.initialPeers.length > 0) {
      this.raw.bootstrap(config.initialPeers);
      if (config.bootstrapAsSnapshot) this.compactBootstrapAt = config.initialPeers.length;
    }
    if (this.wal === null) {
      this.blocked = true;
      Wal.create(disk, this.walDir, encode({ id: config.id }), config.walSegmentBytes, (wal) => {
        this.wal = wal;
        this.unblock();
      });
    }
  }

  /** Reads the WAL from `marker`, repairing a torn tail once; a fatal error refuses the start. */
  private openWal(marker: { index: number; term: number }) {
    const disk = this.ctx.disk;
    for (let attempt = 0; ; attempt++) {
      try {
        const { wal, read } = Wal.open(disk, this.walDir, marker, this.config.walSegmentBytes);
        this.wal = wal;
        return read;
      } catch (e) {
        if (e instanceof WalTornTail && attempt === 0) {
          Wal.repair(disk, e);
          continue;
        }
        if (e instanceof WalTornTail || e instanceof WalError) this.exit(`failed to read WAL: ${e.message}`);
        throw e;
      }
    }
  }

  /** Starts the loop once the application is in place. */
  start(app: RaftApp): void {
    this.app = app;
    this.scheduleTick();
    this.process();
  }

  // ---- inputs --------------------------------------------------------------------------

  /** A raft message from a peer. */
  step(m: Message): void {
    // rafthttp refuses a message for another member id ("raft: wrong to ID"): one sent
    // to the member this node was before a replace must not reach the new one
    if (m.to !== this.config.id) return;
    try {
      this.raw.step(m);
    } catch (e) {
      this.panicked(e);
    }
    this.process();
  }

  /** Proposes data; false when raft dropped it (no leader known: etcd fails the request). */
  propose(data: Uint8Array): boolean {
    let accepted: boolean;
    try {
      accepted = this.raw.propose(data);
    } catch (e) {
      this.panicked(e);
    }
    this.process();
    return accepted;
  }

  proposeConfChange(cc: ConfChange): boolean {
    const accepted = this.guard(() => this.raw.proposeConfChange(cc));
    this.process();
    return accepted;
  }

  readIndex(ctx: string): void {
    this.guard(() => this.raw.readIndex(ctx));
    this.process();
  }

  transferLeader(to: number): void {
    this.guard(() => this.raw.transferLeader(to));
    this.process();
  }

  get isLeader(): boolean {
    return this.raw.raft.state === StateType.Leader;
  }

  get lead(): number {
    return this.raw.raft.lead;
  }

  get term(): number {
    return this.raw.raft.term;
  }

  /** The index of the newest snapshot this node took or installed. */
  get lastSnapshotIndex(): number {
    return this.snapshotIndex;
  }

  get committedIndex(): number {
    return this.raw.raft.raftLog.committed;
  }

  /** A leader that committed an entry of its own term (ReadIndex's precondition): it holds all committed. */
  get leaderCaughtUp(): boolean {
    const r = this.raw.raft;
    return r.state === StateType.Leader && r.raftLog.term(r.raftLog.committed) === r.term;
  }

  private scheduleTick(): void {
    this.tickTimer = this.ctx.setTimer(this.config.tickUs, "raft.tick", () => {
      this.scheduleTick();
      if (this.blocked) {
        this.pendingTick = true;
        return;
      }
      this.guard(() => this.raw.tick());
      this.process();
    });
  }

  stop(): void {
    this.ctx.cancelTimer(this.tickTimer);
  }

  // ---- the Ready loop --------------------------------------------------------------------

  private process(): void {
    while (!this.blocked && this.app !== null && this.wal !== null && this.raw.hasReady()) {
      this.blocked = true;
      this.handleReady(this.raw.ready());
    }
  }

  private unblock(): void {
    this.blocked = false;
    if (this.pendingTick) {
      this.pendingTick = false;
      this.guard(() => this.raw.tick());
    }
    this.process();
  }

  /** Runs `next` after the failpoint `name`, which may crash the node or stall the loop. */
  private at(name: string, next: () => void): void {
    const stallUs = this.ctx.failpoint(name);
    if (stallUs > 0) this.ctx.setTimer(stallUs, `stall:${name}`, next);
    else next();
  }

  private handleReady(rd: Ready): void {
    const app = this.app as RaftApp;
    const inv = this.config.invariants;
    const r = this.raw.raft;
    if (rd.softState) {
      if (rd.softState.state === StateType.Leader) inv?.becameLeader(this.ctx.name, r.term, r.raftLog);
      this.ctx.mark("role", `${ROLE_NAMES[rd.softState.state]} in term ${r.term}`);
      app.onSoftState?.(rd.softState.state, rd.softState.lead, r.term);
    }
    const isLeader = r.state === StateType.Leader;
    if (isLeader && rd.hardState && rd.hardState.commit > this.leaderCommit) {
      inv?.leaderCommitted(this.ctx.name, r.term, r.raftLog, rd.hardState.commit);
    }
    this.leaderCommit = isLeader ? (rd.hardState?.commit ?? this.leaderCommit) : 0;
    if (rd.readStates.length > 0) app.onReadStates?.(rd.readStates);
    this.applyCommitted(rd.committedEntries);
    if (isLeader && rd.entries.length > 0) inv?.leaderAppended(this.ctx.name, r.term, rd.entries);
    this.rd = rd;
    this.rdLeader = isLeader;
    this.rdEarly = this.config.voteBeforePersist ? rd.messagesAfterPersist.filter(isVoteGrant) : NO_MESSAGES;
    this.at(isLeader ? "raftBeforeLeaderSend" : "", this.sendThenSave);
  }

  private readonly sendThenSave = (): void => {
    const rd = this.rd as Ready;
    if (this.rdLeader) this.sendAll(rd.messages);
    // The planted bug: answer vote requests before the vote is on disk.
    this.sendAll(this.rdEarly);
    this.saveSnapshotThen(rd, this.beforeSave);
  };

  private readonly beforeSave = (): void => this.at("raftBeforeSave", this.save);

  private readonly save = (): void => {
    const rd = this.rd as Ready;
    const wal = this.wal as Wal;
    const sync = wal.save(rd.hardState, rd.entries, rd.mustSync) || rd.snapshot !== null;
    if (!sync) this.afterSave(false);
    else wal.sync(this.walSynced);
  };

  private readonly walSynced = (err: Error | null): void => {
    if (err) this.exit(`failed to sync WAL: ${err.message}`);
    this.afterSave(true);
  };

  /** An incoming snapshot: the .snap file first, then its WAL marker (etcd's SaveSnap). */
  private saveSnapshotThen(rd: Ready, next: () => void): void {
    const snap = rd.snapshot;
    if (!snap) {
      next();
      return;
    }
    this.at("raftBeforeSaveSnap", () => {
      this.snapshotter.save(snap, (err) => {
        if (err) this.exit(`failed to save snapshot: ${err.message}`);
        (this.wal as Wal).saveSnapshot(snap.metadata);
        this.at("raftAfterSaveSnap", next);
      });
    });
  }

  private afterSave(synced: boolean): void {
    this.rdSynced = synced;
    this.at("raftAfterSave", this.saved);
  }

  private readonly saved = (): void => {
    const rd = this.rd as Ready;
    const inv = this.config.invariants;
    if (this.rdSynced && rd.hardState) inv?.hardStateDurable(this.ctx.name, rd.hardState);
    const snap = rd.snapshot;
    if (!snap) {
      this.finishSave();
      return;
    }
    this.at("raftBeforeApplySnap", () => {
      this.storage.applySnapshot(snap);
      this.at("raftAfterApplySnap", () => {
        (this.wal as Wal).releaseTo(snap.metadata.index, 1);
        this.at("raftAfterWALRelease", () => {
          this.snapshotIndex = snap.metadata.index;
          this.appliedIndex = snap.metadata.index;
          (this.app as RaftApp).applySnapshot(snap);
          this.finishSave();
        });
      });
    });
  };

  private finishSave(): void {
    const rd = this.rd as Ready;
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.hardState = rd.hardState;
    this.config.invariants?.entriesPersisted(this.ctx.name, rd.entries);
    this.rdLeader = this.raw.raft.state === StateType.Leader;
    this.at(this.rdLeader ? "" : "raftBeforeFollowerSend", this.sendThenAdvance);
  }

  private readonly sendThenAdvance = (): void => {
    const rd = this.rd as Ready;
    if (!this.rdLeader) this.sendAll(rd.messages);
    const early = this.rdEarly;
    this.sendAll(
      early.length > 0 ? rd.messagesAfterPersist.filter((m) => !early.includes(m)) : rd.messagesAfterPersist,
    );
    this.rd = null;
    this.rdEarly = NO_MESSAGES;
    try {
      this.raw.advance(rd);
    } catch (e) {
      this.panicked(e);
    }
    this.maybeTriggerSnapshot();
    this.unblock();
  };

  private applyCommitted(entries: readonly Entry[]): void {
    const app = this.app as RaftApp;
    const inv = this.config.invariants;
    for (const e of entries) {
      inv?.applied(this.ctx.name, e);
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        const allowed = app.confChangeAllowed?.(e, cc) ?? true;
        const cs = this.guard(() => this.raw.applyConfChange(allowed ? cc : { type: cc.type, nodeId: NONE }));
        app.applyConfChange(e, cc, cs);
      } else {
        app.applyEntry(e);
      }
      this.appliedIndex = e.index;
    }
  }

  /** The application applied more entries (asynchronous applications call this). */
  applied(): void {
    if (!this.blocked) this.maybeTriggerSnapshot();
  }

  /** Every `snapshotCount` applied entries: snapshot, persist, compact (etcd's triggerSnapshot). */
  private maybeTriggerSnapshot(): void {
    const applied = Math.min(
      this.appliedIndex,
      this.app?.appliedIndex?.() ?? this.appliedIndex,
      this.storage.lastIndex(),
    );
    if (this.snapshotting) return;
    const restored = this.compactBootstrapAt > 0 && applied >= this.compactBootstrapAt;
    if (!restored && applied - this.snapshotIndex <= this.config.snapshotCount) return;
    const index = restored ? this.compactBootstrapAt : applied;
    this.compactBootstrapAt = 0;
    const data = (this.app as RaftApp).snapshotData(index);
    const snap = this.storage.createSnapshot(index, this.raw.raft.trk.confState(), data);
    if (!snap) return;
    this.snapshotting = true;
    this.snapshotIndex = index;
    this.ctx.mark("snapshot", `snapshot at index ${index}`);
    const catchUp = restored ? 0 : this.config.snapshotCatchUpEntries;
    if (index > catchUp) this.storage.compact(index - catchUp);
    this.snapshotter.save(snap, (err) => {
      if (err) this.exit(`failed to save snapshot: ${err.message}`);
      const wal = this.wal as Wal;
      wal.saveSnapshot(snap.metadata);
      wal.sync((err2) => {
        if (err2) this.exit(`failed to sync WAL: ${err2.message}`);
        wal.releaseTo(index, 1);
        this.snapshotter.purge(5);
        this.snapshotting = false;
      });
    });
  }

  // ---- sending -------------------------------------------------------------------------

  private sendAll(msgs: readonly Message[]): void {
    const inv = this.config.invariants;
    for (const m of msgs) {
      const to = this.config.route(m.to);
      if (to < 0) continue;
      if (inv && m.type === Msg.VoteResp && !m.reject) inv.voteGranted(this.ctx.name, m.term, m.to);
      let size = 64;
      for (const e of m.entries) size += e.data.length + 16;
      if (m.snapshot) size += m.snapshot.data.length;
      const digest = (m.type | (m.term << 6)) ^ Math.imul(m.index + m.commit * 31, 0x9e3779b1);
      const out = m.type === Msg.Snap && this.app?.decorateSnapshot ? this.app.decorateSnapshot(m) : m;
      // Raft tolerates reordered and duplicated messages, so they travel as datagrams,
      // except a forwarded proposal: raft would append a duplicate twice, and etcd sends
      // it over rafthttp's TCP streams, which never duplicate.
      this.ctx.send(
        to,
        out,
        MSG_NAMES[m.type] as string,
        digest,
        size,
        m.type === Msg.Prop ? Delivery.AtMostOnce : Delivery.Datagram,
      );
      if (m.type === Msg.Snap) this.watchSnapshotSend(m.to);
    }
  }

  /**
   * etcd sends snapshots over a separate HTTP stream and reports the outcome to raft; a
   * lost snapshot is reported failed after a timeout, so the leader tries again.
   */
  private watchSnapshotSend(peer: number): void {
    this.ctx.cancelTimer(this.snapTimers.get(peer));
    this.snapTimers.set(
      peer,
      this.ctx.setTimer(SNAPSHOT_SEND_TIMEOUT_US, "raft.snapshot-timeout", () => {
        this.snapTimers.delete(peer);
        const pr = this.raw.raft.trk.progress.get(peer);
        if (pr?.state === ProgressState.Snapshot) {
          this.guard(() => this.raw.reportSnapshot(peer, true));
          this.process();
        }
      }),
    );
  }

  // ---- failure -------------------------------------------------------------------------

  /**
   * Runs raft code. A raft panic (a broken assertion inside raft) kills the process, as
   * it does etcd, and is reported: with faults within etcd's assumptions it never happens.
   */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      this.panicked(e);
    }
  }

  /** A RaftPanic kills the member (etcd's process exits); anything else is our own bug. */
  private panicked(e: unknown): never {
    if (!(e instanceof RaftPanic)) throw e;
    this.ctx.report("raft.panic", `raft panic: ${e.message}`, { term: this.raw?.raft.term ?? 0 });
    this.exit(`raft panic: ${e.message}`);
  }

  /** A fatal error (an I/O error, unreadable storage): etcd logs it and exits. */
  private exit(reason: string): never {
    this.app?.onFatal?.(reason);
    throw new NodeCrash(reason, "keep");
  }
}

function isVoteGrant(m: Message): boolean {
  return m.type === Msg.VoteResp && !m.reject;
}
