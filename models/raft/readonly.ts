// Pending ReadIndex requests on the leader (etcd-io/raft's read_only.go). With
// ReadOnlySafe the leader records its commit index for each request and confirms it is
// still the leader by a heartbeat round that carries the request's context; the request
// is answered once a quorum acknowledged that round. Requests are answered in order:
// an ack for a later request confirms every earlier one too.
import { type Message, RaftPanic } from "./types.js";

export type ReadOnlyOption = "safe" | "lease-based";

interface ReadIndexStatus {
  readonly req: Message;
  readonly index: number;
  readonly acks: Set<number>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  /** Records a request (its context is entries[0].data as a string) at commit index `index`. */
  addRequest(index: number, ctx: string, req: Message): void {
    if (this.pending.has(ctx)) return;
    this.pending.set(ctx, { req, index, acks: new Set() });
    this.queue.push(ctx);
  }

  /** Records an ack for the heartbeat round of `ctx`; returns the acks so far, or null. */
  recvAck(id: number, ctx: string): ReadonlySet<number> | null {
    const rs = this.pending.get(ctx);
    if (!rs) return null;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Dequeues every request up to and including `ctx`, which a quorum confirmed. */
  advance(ctx: string): { req: Message; index: number }[] {
    const i = this.queue.indexOf(ctx);
    if (i < 0) return [];
    const done = this.queue.slice(0, i + 1);
    this.queue = this.queue.slice(i + 1);
    const out: { req: Message; index: number }[] = [];
    for (const c of done) {
      const rs = this.pending.get(c);
      if (!rs) throw new RaftPanic("cannot find corresponding read state from pending map");
      this.pending.delete(c);
      out.push({ req: rs.req, index: rs.index });
    }
    return out;
  }

  /** The context of the newest pending request (heartbeats carry it), or "". */
  lastPendingRequestCtx(): string {
    return this.queue.length === 0 ? "" : (this.queue[this.queue.length - 1] as string);
  }

  get pendingCount(): number {
    return this.queue.length;
  }
}
