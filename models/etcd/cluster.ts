// An etcd cluster in a simulator: members (nodes m1..mN), clients (c1..), the history
// recorder, Raft's invariants, and what every member applied. The simulator sees every
// member, so the cluster keeps the reference record the checkers compare with.
//
// Member replace follows etcd's robustness tests: remove the member through the API,
// stop it, wipe its data dir, add it back under a new member id, start it joining the
// existing cluster.
import type { DiskOptions, Simulator } from "../../sim/index.js";
import { Bugs } from "../bugs.js";
import { type ClientConfig, DEFAULT_CLIENT, EtcdClient } from "../client/client.js";
import { HistoryRecorder } from "../client/recorder.js";
import { RaftInvariants } from "../raft/invariants.js";
import type { MaintenanceResult } from "./protocol.js";
import { type AppliedEntry, DEFAULT_ETCD, EtcdServer, type EtcdServerConfig } from "./server.js";

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
  /** Every member life, in creation order. */
  readonly records: MemberRecord[] = [];
  private readonly current = new Map<string, MemberRecord>();
  readonly clients: EtcdClient[] = [];
  private nextMemberId: number;
  private admin: EtcdClient | null = null;
  readonly serverConfig: ServerOptions;
  /** Member replaces in progress (faults must not restart those members meanwhile). */
  readonly replacing = new Set<number>();

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
    for (let i = 0; i < n; i++) {
      const name = `m${i + 1}`;
      this.names.push(name);
      this.memberIds.push(i + 1);
      this.joining.push(false);
      this.newRecord(name, i + 1);
      const slot = i;
      this.nodes.push(
        sim.addNode(
          name,
          (ctx) => new EtcdServer(ctx, this.serverFor(slot, peers)),
          options.disk ? { disk: options.disk } : {},
        ),
      );
    }
    for (const node of this.nodes) sim.start(node);
  }

  private serverFor(slot: number, peers: readonly number[]): EtcdServerConfig {
    return {
      ...DEFAULT_ETCD,
      ...this.serverConfig,
      memberId: this.memberIds[slot] as number,
      initialCluster: this.joining[slot] ? [] : peers,
      bugs: this.bugs,
      route: (id) => this.route(id),
      memberName: (id) => this.nameOf(id),
      invariants: this.invariants,
      observer: {
        applied: (member, e) => {
          this.current.get(member)?.applied.push({ ...e, atUs: this.sim.nowUs });
          if (e.expiry) this.recorder.expiryApplied(e.requestId, e.response);
        },
        expiryProposed: (member, requestId, leaseId) =>
          this.recorder.expiryProposed(member, requestId, leaseId),
        removed: () => {},
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
    const cfg: ClientConfig = {
      ...DEFAULT_CLIENT,
      ...options,
      id,
      recorder: this.recorder,
      endpoints: eps ? () => eps : () => this.nodes,
    };
    const node = this.sim.addNode(`c${id}`, (ctx) => new EtcdClient(ctx, cfg));
    this.sim.start(node);
    const c = this.sim.program(node) as EtcdClient;
    this.clients.push(c);
    return c;
  }

  /** A client for membership calls; its calls are not part of the history. */
  private adminClient(): EtcdClient {
    if (!this.admin) {
      const cfg: ClientConfig = {
        ...DEFAULT_CLIENT,
        id: 0,
        recorder: new HistoryRecorder(() => this.sim.nowUs),
        endpoints: () => this.nodes,
      };
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
   */
  replaceMember(slot: number, done: (ok: boolean, why?: string) => void, deadlineUs = 60_000_000): void {
    const admin = this.adminClient();
    const oldId = this.memberIds[slot] as number;
    const endUs = this.sim.nowUs + deadlineUs;
    const others = () => this.nodes.filter((_, i) => i !== slot);
    this.replacing.add(slot);
    const fail = (why: string) => {
      this.replacing.delete(slot);
      done(false, why);
    };
    // a membership call on some other member, retried until `ok` says it took
    const call = (
      op: Parameters<EtcdClient["maintenance"]>[1],
      ok: (r: MaintenanceResult) => boolean,
      next: () => void,
    ) => {
      let attempt = 0;
      const tryOnce = () => {
        if (this.sim.nowUs > endUs) {
          fail(`member ${op.type} did not succeed in time`);
          return;
        }
        const targets = others();
        const node = targets[attempt++ % targets.length] as number;
        admin.maintenance(node, op, (r) => {
          if (r.type !== "error" && ok(r)) next();
          else this.sim.after(500_000, "member.retry", tryOnce);
        });
      };
      tryOnce();
    };
    const listed = (r: MaintenanceResult, id: number) =>
      r.type === "members" && r.members.some((m) => m.id === id);
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
        this.newRecord(this.names[slot] as string, newId);
        call(
          { type: "member-add", memberId: newId, learner: false },
          (r) => listed(r, newId),
          () => {
            if (this.sim.isUp(node)) this.sim.crash(node, "keep");
            this.sim.restart(node);
            this.replacing.delete(slot);
            done(true);
          },
        );
      },
    );
  }
}
