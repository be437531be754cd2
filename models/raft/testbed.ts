// Raft on its own: a replicated log-hash application and a cluster builder, so the
// consensus model can be tested and measured without etcd on top. Each member keeps
// (applied count, rolling hash of applied entries); snapshots carry that state.
import { hashBytes, mix32, type NodeContext, type NodeProgram, type Simulator } from "../../sim/index.js";
import { decode, encode } from "../codec.js";
import { RaftInvariants } from "./invariants.js";
import { type RaftApp, RaftNode, type RaftNodeConfig, type RaftNodeOptions } from "./node.js";
import type { ConfChange, ConfState, Entry, Snapshot } from "./types.js";
import { isRaftMessage } from "./types.js";

interface LogState {
  count: number;
  hash: number;
}

/** A member: raft plus the log-hash application. */
export class LogMember implements NodeProgram, RaftApp {
  readonly raft: RaftNode;
  private state: LogState = { count: 0, hash: 0 };

  constructor(
    ctx: NodeContext,
    config: RaftNodeOptions,
    private readonly onApply: (member: string, data: Uint8Array) => void,
    private readonly name: string,
  ) {
    this.raft = new RaftNode(ctx, config);
    if (this.raft.bootSnapshot) this.state = decode<LogState>(this.raft.bootSnapshot.data);
    this.raft.start(this);
  }

  onMessage(_from: number, msg: unknown): void {
    if (isRaftMessage(msg)) this.raft.step(msg);
  }

  applyEntry(e: Entry): void {
    if (e.data.length === 0) return;
    this.state.count++;
    this.state.hash = mix32(this.state.hash, hashBytes(e.data));
    this.onApply(this.name, e.data);
  }

  applyConfChange(_e: Entry, _cc: ConfChange, _cs: ConfState): void {}

  applySnapshot(snap: Snapshot): void {
    this.state = decode<LogState>(snap.data);
  }

  snapshotData(): Uint8Array {
    return encode(this.state);
  }

  get appliedCount(): number {
    return this.state.count;
  }

  get stateHash(): number {
    return this.state.hash;
  }
}

export interface LogClusterOptions {
  readonly members: number;
  readonly raft?: Partial<Omit<RaftNodeConfig, "id" | "initialPeers" | "route" | "invariants">>;
}

export interface LogCluster {
  readonly sim: Simulator;
  readonly names: readonly string[];
  readonly invariants: RaftInvariants;
  /** member name → payloads it applied (as strings), in order */
  readonly applied: Map<string, string[]>;
  member(i: number): LogMember | null;
  leader(): LogMember | null;
  /** Proposes `data` on member i (as its own work: dropped if it is down). */
  propose(i: number, data: string): void;
}

/** Adds and starts `members` raft members (raft ids 1..n) on `sim`. */
export function startLogCluster(sim: Simulator, options: LogClusterOptions): LogCluster {
  const n = options.members;
  const names = Array.from({ length: n }, (_, i) => `m${i + 1}`);
  const indexes: number[] = [];
  const applied = new Map<string, string[]>(names.map((m) => [m, []]));
  const invariants = new RaftInvariants((checker, node, message, details) =>
    sim.monitor.report({ checker, message, node, virtualUs: sim.nowUs, details }),
  );
  const decoder = new TextDecoder();
  const onApply = (member: string, data: Uint8Array) => applied.get(member)?.push(decoder.decode(data));
  const peers = names.map((_, i) => i + 1);
  for (let i = 0; i < n; i++) {
    const name = names[i] as string;
    const config: RaftNodeOptions = {
      ...options.raft,
      id: i + 1,
      initialPeers: peers,
      route: (id) => indexes[id - 1] ?? -1,
      invariants,
    };
    indexes.push(sim.addNode(name, (ctx) => new LogMember(ctx, config, onApply, name)));
  }
  for (const idx of indexes) sim.start(idx);
  const member = (i: number) => {
    const p = sim.program(indexes[i] as number);
    return p instanceof LogMember ? p : null;
  };
  return {
    sim,
    names,
    invariants,
    applied,
    member,
    leader() {
      for (let i = 0; i < n; i++) {
        const m = member(i);
        if (m?.raft.isLeader) return m;
      }
      return null;
    },
    propose(i, data) {
      const bytes = new TextEncoder().encode(data);
      sim.onNode(indexes[i] as number, 0, "propose", () => member(i)?.raft.propose(bytes));
    },
  };
}
