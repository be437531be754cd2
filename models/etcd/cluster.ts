// An etcd cluster in a simulator: members (nodes m1..mN), clients (c1..), the history
// recorder, Raft's invariants, and what every member applied. The simulator sees every
// member, so the cluster keeps the reference record the checkers compare with.
//
// Member replace follows etcd's robustness tests: remove the member through the API,
// stop it, wipe its data dir, add it back under a new member id, start it joining the
// existing cluster.
//
// With `backup`, each member runs in a pod next to etcd-backup-restore's sidecar
// (models/backup), and a backup store node ("store") holds their snapshots.
//
// Disaster recovery follows the functional tester: the leader's snapshot restored as a
// new one-member cluster, the others added back (`restoreFromScratch`).
import type { DiskImage, DiskOptions, NodeContext, Simulator } from "../../sim/index.js";
import {
  MemberPod,
  type PodConfig,
  type PodHooks,
  restoredDb,
  SAFE_GUARD,
  type ValidationRecord,
} from "../backup/sidecar.js";
import { BackupCatalogue, BackupStore, type UploadRecord } from "../backup/store.js";
import { Bugs } from "../bugs.js";
import { type ClientConfig, clientConfig, EtcdClient } from "../client/client.js";
import type { ErrorResponse, KeyValue } from "../client/history.js";
import { HistoryRecorder } from "../client/recorder.js";
import { RaftInvariants } from "../raft/invariants.js";
import { electionTimeoutUs } from "../raft/node.js";
import { payloadRanges } from "../raft/wal.js";
import { Errors } from "./errors.js";
import type { MaintenanceOp, MaintenanceResult } from "./protocol.js";
import {
  type AppliedEntry,
  DB_PATH,
  EtcdServer,
  type EtcdServerConfig,
  type EtcdServerOptions,
  MEMBER_DIR,
} from "./server.js";

export interface BackupOptions {
  /** A full snapshot or a delta every this often. */
  readonly snapshotPeriodUs: number;
  /** A full snapshot after this many deltas. */
  readonly deltasPerFull: number;
}

/** A member's key space at one moment: where a new epoch of the history begins. */
export interface StoreState {
  readonly revision: number;
  readonly compactRevision: number;
  readonly kvs: readonly KeyValue[];
  readonly leases: readonly number[];
}

/** A cluster started again from a snapshot: the history's next epoch begins here. */
export interface RestoreRecord {
  /** When the restored member's process started (requests reach the new cluster). */
  readonly atUs: number;
  readonly member: string;
  /** When the snapshot was saved, and what it holds. */
  readonly snapshotUs: number;
  readonly state: StoreState;
}

/** A member beginning to serve clients, as the backup checks see it. */
export interface ServeRecord {
  readonly atUs: number;
  readonly member: string;
  readonly revision: number;
  /** The newest revision in the backup store then (0: empty). */
  readonly newestBackup: number;
  /** Files of its data dir holding bytes a fault corrupted (the simulator knows). */
  readonly corrupted: readonly string[];
  /** One member: its store then, where a new epoch of the history begins. */
  readonly state?: StoreState;
  /** The serving process, as its request ids name it (`EtcdServer.proposer`). */
  readonly proposer?: string;
}

/** What the backup sidecars and the store did during a run. */
export interface BackupRecord {
  readonly uploads: readonly UploadRecord[];
  readonly validations: ValidationRecord[];
  readonly serves: ServeRecord[];
  readonly restores: { readonly atUs: number; readonly member: string; readonly revision: number }[];
}

export type ServerOptions = Partial<
  Omit<
    EtcdServerConfig,
    "memberId" | "initialCluster" | "bugs" | "route" | "memberName" | "invariants" | "observer"
  >
>;

export interface EtcdClusterOptions {
  readonly members: number;
  readonly server?: ServerOptions;
  readonly bugs?: Bugs;
  readonly disk?: Partial<DiskOptions>;
  /** Run every member with a backup sidecar, and a backup store. */
  readonly backup?: BackupOptions;
}

/** An applied entry, and when (true virtual time). */
export interface AppliedRecord extends AppliedEntry {
  readonly atUs: number;
}

/** One life of a member: what it applied, in order, from boot or its last wipe. */
export interface MemberRecord {
  readonly name: string;
  readonly memberId: number;
  readonly applied: AppliedRecord[];
}

export class EtcdCluster {
  readonly recorder: HistoryRecorder;
  readonly invariants: RaftInvariants;
  readonly bugs: Bugs;
  /** Member slot → simulator node. */
  readonly nodes: number[] = [];
  readonly names: string[] = [];
  /** Member slot → its current raft id (a replace gives a new one). */
  private readonly memberIds: number[] = [];
  /** Member slot → whether it joins an existing cluster (after a replace). */
  private readonly joining: boolean[] = [];
  /** Member slot → the voters it bootstraps with when it does not join. */
  private readonly peers: (readonly number[])[] = [];
  /** Member slot → whether it bootstraps a cluster restored from a snapshot. */
  private readonly restoredSeed: boolean[] = [];
  /** Restores from a snapshot (`restoreFromScratch`), in order. */
  readonly restores: RestoreRecord[] = [];
  /** Every member life, in creation order. */
  readonly records: MemberRecord[] = [];
  private readonly current = new Map<string, MemberRecord>();
  readonly clients: EtcdClient[] = [];
  private nextMemberId: number;
  private admin: EtcdClient | null = null;
  readonly serverConfig: ServerOptions;
  /** Member replaces in progress (faults must not restart those members meanwhile). */
  readonly replacing = new Set<number>();
  /** With backup sidecars: the store's catalogue and what happened (else null). */
  readonly backup: BackupRecord | null = null;
  private readonly catalogue: BackupCatalogue | null = null;
  /** The backup store's node (-1 without sidecars). */
  private storeNode = -1;

  constructor(
    readonly sim: Simulator,
    options: EtcdClusterOptions,
  ) {
    this.bugs = options.bugs ?? Bugs.none;
    this.serverConfig = options.server ?? {};
    this.recorder = new HistoryRecorder(() => sim.nowUs);
    this.invariants = new RaftInvariants((checker, node, message, details) =>
      sim.monitor.report({ checker, message, node, virtualUs: sim.nowUs, details }),
    );
    const n = options.members;
    this.nextMemberId = n + 1;
    const peers = Array.from({ length: n }, (_, i) => i + 1);
    const backup = options.backup;
    for (let i = 0; i < n; i++) {
      const name = `m${i + 1}`;
      this.names.push(name);
      this.memberIds.push(i + 1);
      this.joining.push(false);
      this.peers.push(peers);
      this.restoredSeed.push(false);
      this.newRecord(name, i + 1);
      const slot = i;
      this.nodes.push(
        sim.addNode(
          name,
          (ctx) =>
            backup
              ? this.newPod(ctx, {
                  server: this.serverFor(slot),
                  singleMember: n === 1,
                  storeNode: this.storeNode,
                  identity: `etcd-dst/${name}`,
                  snapshotPeriodUs: backup.snapshotPeriodUs,
                  deltasPerFull: backup.deltasPerFull,
                  bugs: this.bugs,
                  hooks: this.podHooks(),
                  nowUs: () => sim.nowUs,
                })
              : new EtcdServer(ctx, this.serverFor(slot)),
          options.disk ? { disk: options.disk } : {},
        ),
      );
    }
    if (backup) {
      const catalogue = new BackupCatalogue(() => sim.nowUs);
      this.catalogue = catalogue;
      this.backup = { uploads: catalogue.uploads, validations: [], serves: [], restores: [] };
      this.storeNode = sim.addNode("store", (ctx) => new BackupStore(ctx, catalogue));
      sim.start(this.storeNode);
    }
    for (const node of this.nodes) sim.start(node);
  }

  /**
   * A pod starting. A lone member may start from older data than it had (faults outside
   * etcd's assumptions, which the sidecar exists for): raft's invariants start afresh, and
   * the backup checks judge what it comes back with.
   */
  private newPod(ctx: NodeContext, config: PodConfig): MemberPod {
    if (this.size === 1) this.invariants.reset();
    return new MemberPod(ctx, config);
  }

  private podHooks(): PodHooks {
    const slotOf = (name: string) => this.names.indexOf(name);
    return {
      validated: (v) => this.backup?.validations.push(v),
      replaceAsLearner: (name) => this.replaceMember(slotOf(name), () => {}, 60_000_000, true),
      restartAfter: (name, backoffUs) => {
        const node = this.nodes[slotOf(name)] as number;
        this.sim.after(backoffUs, "kubelet.restart", () => {
          if (!this.sim.isUp(node) && !this.replacing.has(slotOf(name))) this.sim.restart(node);
        });
      },
      restored: (name, revision) => {
        // a new cluster from the backup: raft starts again, and so does the record
        this.backup?.restores.push({ atUs: this.sim.nowUs, member: name, revision });
        this.invariants.reset();
        this.newRecord(name, this.memberIds[slotOf(name)] as number);
      },
    };
  }

  /** A member began serving: what the backup checks need to know about its data then. */
  private noteServing(member: string, server: EtcdServer): void {
    if (!this.backup || !this.catalogue) return;
    const node = this.nodes[this.names.indexOf(member)] as number;
    const state = this.size === 1 ? storeState(server) : undefined;
    this.backup.serves.push({
      atUs: this.sim.nowUs,
      member,
      revision: server.mvcc.currentRev,
      newestBackup: this.catalogue.newestRevision,
      // etcd sets a snapshot failing its CRC aside (.broken) and never reads it again
      corrupted: this.sim
        .disk(node)
        .corruptedFiles(MEMBER_DIR)
        .filter((p) => !p.endsWith(".broken")),
      ...(state ? { state, proposer: server.proposer } : {}),
    });
  }

  /**
   * Flips `lengthBytes` bytes at `position` (0–1) of a member's db, newest WAL segment or
   * newest snapshot file, on its disk as it is (the member should be down).
   */
  corruptAtRest(slot: number, file: "db" | "wal" | "snap", position: number, lengthBytes: number): void {
    const disk = this.sim.disk(this.nodes[slot] as number);
    const path =
      file === "db"
        ? DB_PATH
        : disk
            .list(`${MEMBER_DIR}/${file === "wal" ? "wal" : "snap"}`)
            .filter((p) => p.endsWith(file === "wal" ? ".wal" : ".snap"))
            .pop();
    if (!path || !disk.exists(path) || disk.size(path) === 0) return;
    if (file !== "wal") {
      const size = disk.size(path);
      const offset = Math.min(size - 1, Math.floor(position * size));
      disk.corrupt(path, offset, Math.min(lengthBytes, size - offset));
      return;
    }
    // in the WAL, within one record's payload (see payloadRanges)
    const ranges = payloadRanges(disk.read(path));
    let total = 0;
    for (const [from, to] of ranges) total += to - from;
    let at = Math.min(total - 1, Math.floor(position * total));
    for (const [from, to] of ranges) {
      if (at < to - from) {
        disk.corrupt(path, from + at, Math.min(lengthBytes, to - from - at));
        return;
      }
      at -= to - from;
    }
  }

  /** A volume mounted by mistake: `other`'s, or this member's own from another namespace. */
  foreignVolume(slot: number, otherSlot: number): DiskImage {
    const image = this.sim.disk(this.nodes[otherSlot] as number).image();
    if (otherSlot !== slot) return image;
    const copy = new Map(image);
    const guard = new TextEncoder().encode(`another-namespace/${this.names[slot]}`);
    copy.set(SAFE_GUARD, { bytes: guard, corrupted: [] });
    return copy;
  }

  /** SIGTERM: a clean stop (the bootstrap script records it for the next validation). */
  stopGracefully(slot: number): void {
    const node = this.nodes[slot] as number;
    const p = this.sim.program(node);
    if (p instanceof MemberPod) p.stopGracefully();
    this.sim.crash(node, "keep");
  }

  private serverFor(slot: number): EtcdServerOptions {
    return {
      ...this.serverConfig,
      memberId: this.memberIds[slot] as number,
      initialCluster: this.joining[slot] ? [] : (this.peers[slot] as readonly number[]),
      ...(this.restoredSeed[slot] ? { restored: true } : {}),
      bugs: this.bugs,
      route: (id) => this.route(id),
      memberName: (id) => this.nameOf(id),
      invariants: this.invariants,
      observer: {
        applied: (member, e) => {
          // spelt out: a spread copy of every applied entry was a hot spot
          this.current.get(member)?.applied.push({
            index: e.index,
            term: e.term,
            requestId: e.requestId,
            origin: e.origin,
            request: e.request,
            response: e.response,
            revision: e.revision,
            expiry: e.expiry,
            callId: e.callId,
            atUs: this.sim.nowUs,
          });
          if (e.expiry) this.recorder.expiryApplied(e.requestId, e.response);
        },
        expiryProposed: (member, requestId, leaseId) =>
          this.recorder.expiryProposed(member, requestId, leaseId),
        removed: () => {},
        serving: (member, server) => this.noteServing(member, server),
      },
    };
  }

  private newRecord(name: string, memberId: number): void {
    const r: MemberRecord = { name, memberId, applied: [] };
    this.records.push(r);
    this.current.set(name, r);
  }

  /** The simulator node of a raft id (-1: no such member now). */
  route(memberId: number): number {
    const slot = this.memberIds.indexOf(memberId);
    return slot < 0 ? -1 : (this.nodes[slot] as number);
  }

  nameOf(memberId: number): string {
    const slot = this.memberIds.indexOf(memberId);
    return slot < 0 ? `member-${memberId}` : (this.names[slot] as string);
  }

  memberId(slot: number): number {
    return this.memberIds[slot] as number;
  }

  get size(): number {
    return this.nodes.length;
  }

  /** The running server of a slot (null while it is down). */
  server(slot: number): EtcdServer | null {
    const p = this.sim.program(this.nodes[slot] as number);
    if (p instanceof MemberPod) return p.server;
    return p instanceof EtcdServer ? p : null;
  }

  /** The member that leads now, if one does (and is up). */
  leader(): EtcdServer | null {
    for (let i = 0; i < this.size; i++) {
      const s = this.server(i);
      if (s?.raft.isLeader) return s;
    }
    return null;
  }

  /** Adds a client node (c1, c2...) talking to every member. */
  addClient(
    options: Partial<Omit<ClientConfig, "id" | "recorder" | "endpoints">> & {
      endpoints?: readonly number[];
    } = {},
  ): EtcdClient {
    const id = this.clients.length + 1;
    const eps = options.endpoints;
    const cfg = clientConfig({
      ...options,
      id,
      recorder: this.recorder,
      endpoints: eps ? () => eps : () => this.nodes,
    });
    const node = this.sim.addNode(`c${id}`, (ctx) => new EtcdClient(ctx, cfg));
    this.sim.start(node);
    const c = this.sim.program(node) as EtcdClient;
    this.clients.push(c);
    return c;
  }

  /** A client for membership calls; its calls are not part of the history. */
  private adminClient(): EtcdClient {
    if (!this.admin) {
      const cfg = clientConfig({
        id: 0,
        recorder: new HistoryRecorder(() => this.sim.nowUs),
        endpoints: () => this.nodes,
      });
      const node = this.sim.addNode("admin", (ctx) => new EtcdClient(ctx, cfg));
      this.sim.start(node);
      this.admin = this.sim.program(node) as EtcdClient;
    }
    return this.admin;
  }

  /**
   * Member replace (etcd's robustness MemberReplace): remove the member, stop it, wipe
   * its data, add it back as a new member, start it. Membership calls are retried until
   * they succeed or `deadlineUs` of virtual time passes; `done(false)` then leaves the
   * member stopped and wiped, as an operator who gave up would.
   *
   * `learner`: etcd-backup-restore's action for a corrupt member of a multi-member
   * cluster: added back as a learner, promoted once it caught up.
   */
  replaceMember(
    slot: number,
    done: (ok: boolean, why?: string) => void,
    deadlineUs = 60_000_000,
    learner = false,
  ): void {
    const oldId = this.memberIds[slot] as number;
    const endUs = this.sim.nowUs + deadlineUs;
    const others = () => this.nodes.filter((_, i) => i !== slot);
    this.replacing.add(slot);
    const fail = (why: string) => {
      this.replacing.delete(slot);
      done(false, why);
    };
    const call = (
      op: Parameters<EtcdClient["maintenance"]>[1],
      ok: (r: MaintenanceResult) => boolean,
      next: () => void,
    ) => this.membershipCall(others, op, ok, next, fail, endUs);
    call(
      { type: "member-remove", memberId: oldId },
      (r) => r.type === "members" && !listed(r, oldId),
      () => {
        const node = this.nodes[slot] as number;
        if (this.sim.isUp(node)) this.sim.crash(node, "keep");
        this.sim.disk(node).wipe();
        this.invariants.forget(this.names[slot] as string);
        const newId = this.nextMemberId++;
        this.memberIds[slot] = newId;
        this.joining[slot] = true;
        this.restoredSeed[slot] = false;
        this.newRecord(this.names[slot] as string, newId);
        call(
          { type: "member-add", memberId: newId, learner },
          (r) => listed(r, newId),
          () => {
            if (this.sim.isUp(node)) this.sim.crash(node, "keep");
            this.sim.restart(node);
            this.replacing.delete(slot);
            if (!learner) return done(true);
            // promote once it holds what the leader committed (etcd refuses before)
            const promote = () => {
              // replaced again meanwhile: the newer replacement promotes its own member
              if (this.memberIds[slot] !== newId) return;
              const s = this.server(slot);
              const lead = this.leader();
              if (!s || !lead || s.applied < lead.raft.committedIndex) {
                if (this.sim.nowUs > endUs) return done(false, "the learner did not catch up in time");
                this.sim.after(500_000, "member.promote-wait", promote);
                return;
              }
              call(
                { type: "member-promote", memberId: newId },
                (r) => r.type === "members" && r.members.some((m) => m.id === newId && !m.learner),
                () => done(true),
              );
            };
            promote();
          },
        );
      },
    );
  }

  /**
   * The functional tester's SIGQUIT_AND_REMOVE_QUORUM_AND_RESTORE_LEADER_SNAPSHOT_FROM_SCRATCH
   * (tests/functional/tester/case_sigquit_remove_quorum.go) around the member at `slot`,
   * the leader: its snapshot is saved (etcdctl snapshot save: the db, its batch committed
   * first); a second later the other members are killed (SIGQUIT) and their data removed,
   * then its own; the snapshot is restored (etcdutl snapshot restore: a new cluster of
   * one, the key space and revision kept, no consistent index) and started; the others
   * join it one by one with fresh data dirs, five election timeouts apart. The tester
   * destroys a quorum besides the leader: with 3 members every member, with 5 all but one,
   * which would be left alone in the old cluster, never to serve again; here every member
   * goes and comes back.
   */
  restoreFromScratch(slot: number, done: (ok: boolean, why?: string) => void, deadlineUs = 60_000_000): void {
    const s = this.server(slot);
    if (!s) {
      done(false, "the member to take the snapshot from is down");
      return;
    }
    s.backend.commit();
    const others = this.nodes.map((_, i) => i).filter((i) => i !== slot);
    const plan: RestorePlan = {
      slot,
      db: restoredDb(s.backend.snapshot(), []),
      state: storeState(s),
      snapshotUs: this.sim.nowUs,
      others,
      endUs: this.sim.nowUs + deadlineUs,
      done,
    };
    for (const i of [slot, ...others]) this.replacing.add(i);
    this.sim.after(1_000_000, "restore.destroy", () => {
      for (const i of [...others, slot]) {
        const node = this.nodes[i] as number;
        if (this.sim.isUp(node)) this.sim.crash(node, "keep");
        this.sim.disk(node).wipe();
      }
      // the operator runs etcdutl snapshot restore, then starts the seed
      this.sim.after(100_000, "restore.seed", () => this.startRestoredSeed(plan));
    });
  }

  /** The restored seed starts a new cluster (raft's terms and indexes begin again). */
  private startRestoredSeed(plan: RestorePlan): void {
    const { slot, others, endUs } = plan;
    const fail = (why: string) => {
      for (const i of [slot, ...others]) this.replacing.delete(i);
      plan.done(false, why);
    };
    const seedNode = this.nodes[slot] as number;
    this.invariants.reset();
    const seedId = this.nextMemberId++;
    this.memberIds[slot] = seedId;
    this.joining[slot] = false;
    this.peers[slot] = [seedId];
    this.restoredSeed[slot] = true;
    this.sim.disk(seedNode).mount(new Map([[DB_PATH, { bytes: plan.db, corrupted: [] }]]));
    this.newRecord(this.names[slot] as string, seedId);
    this.restores.push({
      atUs: this.sim.nowUs,
      member: this.names[slot] as string,
      snapshotUs: plan.snapshotUs,
      state: plan.state,
    });
    this.sim.restart(seedNode);
    this.replacing.delete(slot);
    const add = (k: number) => {
      if (k === others.length) {
        plan.done(true);
        return;
      }
      const i = others[k] as number;
      const newId = this.nextMemberId++;
      this.memberIds[i] = newId;
      this.joining[i] = true;
      this.restoredSeed[i] = false;
      this.membershipCall(
        () => [seedNode],
        { type: "member-add", memberId: newId, learner: false },
        (r) => listed(r, newId),
        () => {
          this.newRecord(this.names[i] as string, newId);
          this.sim.restart(this.nodes[i] as number);
          this.replacing.delete(i);
          this.sim.after(5 * electionTimeoutUs(this.serverConfig.raft ?? {}), "restore.next-member", () =>
            add(k + 1),
          );
        },
        fail,
        endUs,
      );
    };
    const serving = () => {
      if (this.server(slot)?.serving) add(0);
      else if (this.sim.nowUs > endUs) fail("the restored member did not serve in time");
      else this.sim.after(100_000, "restore.wait-serving", serving);
    };
    serving();
  }

  /** A membership call on one of `targets()`, retried every 0.5 s until `ok` says it took. */
  private membershipCall(
    targets: () => readonly number[],
    op: Parameters<EtcdClient["maintenance"]>[1],
    ok: (r: MaintenanceResult) => boolean,
    next: () => void,
    fail: (why: string) => void,
    endUs: number,
  ): void {
    const admin = this.adminClient();
    let attempt = 0;
    const tryOnce = () => {
      if (this.sim.nowUs > endUs) {
        fail(`member ${op.type} did not succeed in time`);
        return;
      }
      const list = targets();
      // a lone member cannot be removed: no one is left to take the request (a scenario
      // file can still ask; generated ones do not: those cases need 3 members)
      if (list.length === 0) {
        fail(`no member to take the member ${op.type}`);
        return;
      }
      const node = list[attempt++ % list.length] as number;
      admin.maintenance(node, op, (r) => {
        if (r.type === "error" ? alreadyDone(op, r) : ok(r)) next();
        else this.sim.after(500_000, "member.retry", tryOnce);
      });
    };
    tryOnce();
  }
}

/**
 * A retried membership call whose earlier attempt took effect unanswered (a timeout, a
 * paused member) gets etcd's refusal of the repeat: that is success to the caller.
 */
function alreadyDone(op: MaintenanceOp, r: ErrorResponse): boolean {
  const is = (e: ErrorResponse) => r.message === e.message;
  if (op.type === "member-remove") return is(Errors.memberNotFound);
  if (op.type === "member-add") return is(Errors.memberExists);
  if (op.type === "member-promote") return is(Errors.memberNotLearner);
  return false;
}

/** A restore from scratch under way (`restoreFromScratch`). */
interface RestorePlan {
  readonly slot: number;
  /** The restored db (etcdutl's output) and what it holds. */
  readonly db: Uint8Array;
  readonly state: StoreState;
  readonly snapshotUs: number;
  /** The members to add back, in order. */
  readonly others: readonly number[];
  readonly endUs: number;
  readonly done: (ok: boolean, why?: string) => void;
}

const listed = (r: MaintenanceResult, id: number) =>
  r.type === "members" && r.members.some((m) => m.id === id);

/** A member's key space as it serves it now. */
function storeState(server: EtcdServer): StoreState {
  const r = server.mvcc.range("", "\0");
  return {
    revision: server.mvcc.currentRev,
    compactRevision: server.mvcc.compactMainRev,
    kvs: "kvs" in r ? r.kvs : [],
    leases: server.lessor.ids(),
  };
}
