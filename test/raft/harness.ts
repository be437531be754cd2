// A synchronous in-memory cluster of raft cores for scripted scenario tests, in the
// spirit of etcd-io/raft's `network` test helper: persistence is instant, delivery is
// explicit, and partitions drop messages.
import { MemoryStorage } from "../../models/raft/log.js";
import { decodeConfChange, type RaftConfig, RawNode } from "../../models/raft/raft.js";
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MSG_NAMES,
  type MsgType,
  type Ready,
  type Snapshot,
} from "../../models/raft/types.js";
import { Random } from "../../sim/random.js";

export interface NodeOptions extends Partial<Omit<RaftConfig, "id" | "storage" | "random">> {}

export class TestNode {
  raw: RawNode;
  readonly storage: MemoryStorage;
  applied: Entry[] = [];
  readStates: { index: number; requestCtx: string }[] = [];
  snapshotsApplied: Snapshot[] = [];

  constructor(
    readonly id: number,
    private readonly options: RaftConfig,
  ) {
    this.storage = options.storage;
    this.raw = new RawNode(options);
  }

  /** Rebuilds the node from its (durable) storage, as after a crash. */
  restart(): void {
    this.applied = [];
    this.raw = new RawNode({ ...this.options, storage: this.storage, applied: 0 });
  }

  get raft() {
    return this.raw.raft;
  }
}

export class TestCluster {
  readonly nodes = new Map<number, TestNode>();
  /** Directed links that drop everything: "from-to". */
  private readonly cut = new Set<string>();
  private readonly ignored = new Set<MsgType>();
  readonly delivered: Message[] = [];
  private readonly rng = new Random("harness");

  constructor(ids: readonly number[], options: NodeOptions = {}, learners: readonly number[] = []) {
    const cs: ConfState = { voters: [...ids], learners: [...learners] };
    for (const id of [...ids, ...learners]) this.addNode(id, cs, options);
  }

  addNode(id: number, cs: ConfState, options: NodeOptions = {}): TestNode {
    const storage = new MemoryStorage({
      metadata: { index: 0, term: 0, confState: cs },
      data: new Uint8Array(0),
    });
    const node = new TestNode(id, {
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      random: this.rng.fork(`n${id}`),
      ...options,
    });
    this.nodes.set(id, node);
    return node;
  }

  node(id: number): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Handles one Ready of `id`: persists, applies, and returns the messages to send. */
  handleReady(id: number, rd?: Ready): Message[] {
    const n = this.node(id);
    const ready = rd ?? n.raw.ready();
    if (ready.snapshot) {
      n.storage.applySnapshot(ready.snapshot);
      n.snapshotsApplied.push(ready.snapshot);
    }
    if (ready.hardState) n.storage.hardState = ready.hardState;
    n.storage.append(ready.entries);
    for (const e of ready.committedEntries) {
      n.applied.push(e);
      if (e.type === EntryType.ConfChange) n.raw.applyConfChange(decodeConfChange(e.data));
    }
    for (const rs of ready.readStates) n.readStates.push(rs);
    const out = [...ready.messages, ...ready.messagesAfterPersist];
    n.raw.advance(ready);
    return out;
  }

  /** Drains every node's Ready and delivers messages until the cluster is quiet. */
  stabilize(limit = 10_000): void {
    for (let round = 0; round < limit; round++) {
      let msgs: Message[] = [];
      for (const id of this.nodes.keys()) {
        const n = this.node(id);
        while (n.raw.hasReady()) msgs = msgs.concat(this.handleReady(id));
      }
      if (msgs.length === 0) return;
      this.deliver(msgs);
    }
    throw new Error("cluster did not stabilize");
  }

  deliver(msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (this.cut.has(`${m.from}-${m.to}`) || this.ignored.has(m.type)) continue;
      const target = this.nodes.get(m.to);
      if (!target) continue;
      this.delivered.push(m);
      target.raw.step(m);
    }
  }

  tick(id: number, times = 1): void {
    for (let i = 0; i < times; i++) this.node(id).raw.tick();
  }

  /** Lets the followers' leader lease run out (as if an election timeout passed) without campaigning. */
  expireLease(...ids: number[]): void {
    for (const id of ids) this.node(id).raft.electionElapsed = this.node(id).raft.electionTimeout;
  }

  /** Ticks until the node campaigns (its randomized timeout passed), then stabilizes. */
  elect(id: number): void {
    this.expireLease(...[...this.nodes.keys()].filter((x) => x !== id));
    this.node(id).raw.campaign();
    this.stabilize();
  }

  isolate(id: number): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}-${other}`);
      this.cut.add(`${other}-${id}`);
    }
  }

  cutLink(from: number, to: number): void {
    this.cut.add(`${from}-${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  ignore(t: MsgType): void {
    this.ignored.add(t);
  }

  unignoreAll(): void {
    this.ignored.clear();
  }

  leader(): number {
    let leader = 0;
    for (const [id, n] of this.nodes) if (n.raft.state === 2) leader = id;
    return leader;
  }

  propose(id: number, data: string): void {
    this.node(id).raw.propose(new TextEncoder().encode(data));
    this.stabilize();
  }

  /** The application data each node applied, as strings (no-op entries left out). */
  appliedData(id: number): string[] {
    return this.node(id)
      .applied.filter((e) => e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}

export function msgName(m: Message): string {
  return MSG_NAMES[m.type] ?? String(m.type);
}
