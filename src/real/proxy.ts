// Peer-network faults for a real cluster: each member advertises a proxy on 127.0.0.1 in
// front of its peer port. etcd's peer requests name their sender (rafthttp sets
// X-Server-From to the member id on every request), so the proxy knows which pair of
// members each connection joins, and can blackhole or delay a pair in both directions,
// as etcd's robustness tests do with their proxy (but per pair: a partition, not a port).
import net from "node:net";

interface Conn {
  readonly inbound: net.Socket;
  readonly upstream: net.Socket;
  /** The sending member's id, as its first request names it ("" until then). */
  fromId: string;
  /** Its index, once the id is known and learned (-1 until then). */
  from: number;
  /** Bytes were dropped: the stream is broken, close it once the pair heals. */
  dropped: boolean;
}

export class PeerProxies {
  private readonly servers: net.Server[] = [];
  private readonly conns = new Set<Conn & { to: number }>();
  /** Member id (hex, as X-Server-From carries it) → member index. */
  private readonly byId = new Map<string, number>();
  private readonly blocked = new Set<string>();
  private readonly delayMs = new Map<string, number>();

  /** Starts one proxy per member: listening on `proxyPorts[i]`, forwarding to `peerPorts[i]`. */
  static async start(proxyPorts: readonly number[], peerPorts: readonly number[]): Promise<PeerProxies> {
    const p = new PeerProxies();
    await Promise.all(
      proxyPorts.map(
        (port, to) =>
          new Promise<void>((resolve, reject) => {
            const s = net.createServer((inbound) => p.accept(inbound, to, peerPorts[to] as number));
            s.once("error", reject);
            s.listen(port, "127.0.0.1", () => resolve());
            p.servers.push(s);
          }),
      ),
    );
    return p;
  }

  /** Tells the proxies which member id is which member (from the member list). */
  learn(memberIdsHex: readonly string[]): void {
    memberIdsHex.forEach((id, i) => {
      this.byId.set(id.toLowerCase(), i);
    });
  }

  private static pair(a: number, b: number): string {
    return a < b ? `${a}-${b}` : `${b}-${a}`;
  }

  /** Blackholes (or heals) every connection between members a and b, both directions. */
  setBlocked(a: number, b: number, on: boolean): void {
    const key = PeerProxies.pair(a, b);
    if (on) {
      this.blocked.add(key);
      return;
    }
    this.blocked.delete(key);
    // a stream that lost bytes cannot go on: close it, and rafthttp dials again
    for (const c of this.conns)
      if (c.dropped && PeerProxies.pair(c.from, c.to) === key) {
        c.inbound.destroy();
        c.upstream.destroy();
      }
  }

  /** Delays the traffic between a and b by `ms` each way (0: no delay). */
  setDelay(a: number, b: number, ms: number): void {
    if (ms > 0) this.delayMs.set(PeerProxies.pair(a, b), ms);
    else this.delayMs.delete(PeerProxies.pair(a, b));
  }

  healAll(): void {
    for (const key of [...this.blocked]) {
      const [a, b] = key.split("-").map(Number) as [number, number];
      this.setBlocked(a, b, false);
    }
    this.delayMs.clear();
  }

  private accept(inbound: net.Socket, to: number, peerPort: number): void {
    const upstream = net.connect(peerPort, "127.0.0.1");
    const c = { inbound, upstream, fromId: "", from: -1, dropped: false, to };
    this.conns.add(c);
    let head = "";
    const forward = (src: net.Socket, dst: net.Socket, isRequest: boolean) => {
      // delayed chunks wait in order in one queue, drained by one timer: separate timers
      // per chunk can fire out of order when the delay changes, and a reordered rafthttp
      // stream decodes into wrong raft messages (seen: a follower panicking on
      // "tocommit out of range" while only a delay was on)
      const queue: { chunk: Buffer; atMs: number }[] = [];
      let timer: NodeJS.Timeout | null = null;
      const drain = () => {
        timer = null;
        const now = Date.now();
        while (queue.length > 0 && (queue[0] as { atMs: number }).atMs <= now) {
          const q = queue.shift() as { chunk: Buffer };
          if (!dst.destroyed) dst.write(q.chunk);
        }
        if (queue.length > 0) timer = setTimeout(drain, (queue[0] as { atMs: number }).atMs - now);
      };
      src.on("data", (chunk: Buffer) => {
        if (isRequest && c.fromId === "" && head.length < 16_384) {
          head += chunk.toString("latin1");
          const m = /\r\nX-Server-From: *([0-9a-fA-F]+)/i.exec(head);
          if (m) c.fromId = (m[1] as string).toLowerCase();
        }
        // connections made before the member ids were learned resolve later
        if (c.from < 0 && c.fromId !== "") c.from = this.byId.get(c.fromId) ?? -1;
        const key = c.from >= 0 ? PeerProxies.pair(c.from, to) : "";
        if (key && this.blocked.has(key)) {
          c.dropped = true;
          return;
        }
        const delay = (key && this.delayMs.get(key)) || 0;
        if (delay === 0 && queue.length === 0) {
          dst.write(chunk);
          return;
        }
        // never before an earlier chunk: the queue's release times never decrease
        const last = queue.length > 0 ? (queue[queue.length - 1] as { atMs: number }).atMs : 0;
        queue.push({ chunk, atMs: Math.max(Date.now() + delay, last) });
        if (timer === null)
          timer = setTimeout(drain, Math.max(0, (queue[0] as { atMs: number }).atMs - Date.now()));
      });
      src.on("close", () => {
        if (timer !== null) clearTimeout(timer);
      });
    };
    forward(inbound, upstream, true);
    forward(upstream, inbound, false);
    const close = () => {
      inbound.destroy();
      upstream.destroy();
      this.conns.delete(c);
    };
    for (const s of [inbound, upstream]) {
      s.on("error", close);
      s.on("close", close);
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) {
      c.inbound.destroy();
      c.upstream.destroy();
    }
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
