// The virtual network: directed links between nodes, each with its own latency
// distribution, loss, duplication and its own random stream (so that changing traffic
// on one link never reshuffles another's draws). Reordering falls out of latency
// variance. Partitions block links, clogging holds messages until the link unclogs.
//
// A sender says how a message travels (`Delivery`): raw datagrams may be reordered and
// duplicated by link faults; a message on a stream (TCP: gRPC, rafthttp) keeps its
// order behind earlier stream messages on the link and is never duplicated.
//
// Messages to a crashed node are lost and messages to a paused node wait, as they would
// over TCP: the simulator decides that at delivery (see world.ts).
import type { Random } from "./random.js";

export interface LinkConfig {
  latencyMinUs: number;
  /** Mean of the exponential tail added to the minimum. */
  latencyMeanExtraUs: number;
  latencyMaxUs: number;
  /** Probability that a message is lost. */
  lossRate: number;
  /** Probability that a message is delivered twice (each copy with its own latency). */
  duplicateRate: number;
  /** Added to every message: a slow link (etcd's DELAY_PEER_PORT faults). */
  extraDelayUs: number;
}

/** A LAN: 0.2 ms at least, 0.5 ms on average, never more than 20 ms. */
export const DEFAULT_LINK: Readonly<LinkConfig> = {
  latencyMinUs: 200,
  latencyMeanExtraUs: 300,
  latencyMaxUs: 20_000,
  lossRate: 0,
  duplicateRate: 0,
  extraDelayUs: 0,
};

/** How a message travels; flags, combined with `|`. */
export const Delivery = {
  /** A datagram: reordered by latency variance, duplicated by link faults. */
  Datagram: 0,
  /** Never duplicated: the receiver is not idempotent. */
  AtMostOnce: 1,
  /** Delivered after every earlier ordered message on the same link. */
  Ordered: 2,
  /** A TCP stream: ordered and never duplicated. */
  Stream: 3,
} as const;

/** What the network needs from the simulator. */
export interface NetworkHost {
  readonly nowUs: number;
  scheduleMessage(from: number, to: number, atUs: number, msg: unknown, label: string, digest: number): void;
  linkRandom(from: number, to: number): Random;
}

interface HeldMessage {
  readonly msg: unknown;
  readonly label: string;
  readonly digest: number;
  readonly sizeBytes: number;
  readonly delivery: number;
}

class Link {
  config: LinkConfig = { ...DEFAULT_LINK };
  blocked = false;
  clogged = false;
  held: HeldMessage[] = [];
  random: Random | null = null;
  /** When the last ordered message on this link arrives. */
  orderedUntilUs = 0;
}

export interface NetworkStats {
  sent: number;
  bytes: number;
  droppedPartition: number;
  droppedLoss: number;
  duplicated: number;
}

/**
 * The directed links a partition blocks. Between listed nodes, a link is open iff some
 * group holds both ends, so overlapping groups make a bridge (a node in two groups sees
 * both sides). With `oneWay` and two groups, only links from the first to the second
 * are blocked.
 */
export function partitionLinks(groups: readonly (readonly number[])[], oneWay = false): [number, number][] {
  const out: [number, number][] = [];
  if (oneWay) {
    if (groups.length !== 2) throw new RangeError("a one-way partition needs exactly two groups");
    for (const a of groups[0] as readonly number[])
      for (const b of groups[1] as readonly number[]) if (a !== b) out.push([a, b]);
    return out;
  }
  const listed = [...new Set(groups.flat())];
  for (const a of listed) {
    for (const b of listed) {
      if (a !== b && !groups.some((g) => g.includes(a) && g.includes(b))) out.push([a, b]);
    }
  }
  return out;
}

export class Network {
  readonly stats: NetworkStats = { sent: 0, bytes: 0, droppedPartition: 0, droppedLoss: 0, duplicated: 0 };
  private links: Link[][] = [];

  constructor(private readonly host: NetworkHost) {}

  /** Called by the simulator when a node is added. */
  addNode(): void {
    for (const row of this.links) row.push(new Link());
    const n = this.links.length + 1;
    const row: Link[] = [];
    for (let i = 0; i < n; i++) row.push(new Link());
    this.links.push(row);
  }

  /** Sends a message; `delivery` is a combination of `Delivery` flags. */
  send(
    from: number,
    to: number,
    msg: unknown,
    label: string,
    digest: number,
    sizeBytes: number,
    delivery = 0,
  ): void {
    const link = this.link(from, to);
    this.stats.sent++;
    this.stats.bytes += sizeBytes;
    if (link.blocked) {
      this.stats.droppedPartition++;
      return;
    }
    if (link.clogged) {
      link.held.push({ msg, label, digest, sizeBytes, delivery });
      return;
    }
    this.transmit(from, to, link, msg, label, digest, delivery);
  }

  private transmit(
    from: number,
    to: number,
    link: Link,
    msg: unknown,
    label: string,
    digest: number,
    delivery: number,
  ): void {
    const c = link.config;
    const rng = link.random ?? (link.random = this.host.linkRandom(from, to));
    if (c.lossRate > 0 && rng.chance(c.lossRate)) {
      this.stats.droppedLoss++;
      return;
    }
    const now = this.host.nowUs;
    const delay = rng.latencyUs(c.latencyMinUs, c.latencyMeanExtraUs, c.latencyMaxUs) + c.extraDelayUs;
    let atUs = now + delay;
    if ((delivery & Delivery.Ordered) !== 0) {
      // the event queue keeps insertion order among equal times
      if (atUs < link.orderedUntilUs) atUs = link.orderedUntilUs;
      link.orderedUntilUs = atUs;
    }
    this.host.scheduleMessage(from, to, atUs, msg, label, digest);
    if (c.duplicateRate > 0 && (delivery & Delivery.AtMostOnce) === 0 && rng.chance(c.duplicateRate)) {
      this.stats.duplicated++;
      const again = rng.latencyUs(c.latencyMinUs, c.latencyMeanExtraUs, c.latencyMaxUs) + c.extraDelayUs;
      this.host.scheduleMessage(from, to, now + again, msg, label, digest);
    }
  }

  link(from: number, to: number): Link {
    const l = this.links[from]?.[to];
    if (!l) throw new RangeError(`no link ${from}->${to}`);
    return l;
  }

  /** Changes a link's latency, loss, duplication or extra delay. */
  configure(from: number, to: number, config: Partial<LinkConfig>): void {
    Object.assign(this.link(from, to).config, config);
  }

  /** Applies `config` to both directions of every pair among `nodes`. */
  configureAmong(nodes: readonly number[], config: Partial<LinkConfig>): void {
    for (const a of nodes) for (const b of nodes) if (a !== b) this.configure(a, b, config);
  }

  setBlocked(from: number, to: number, blocked: boolean): void {
    this.link(from, to).blocked = blocked;
  }

  isBlocked(from: number, to: number): boolean {
    return this.link(from, to).blocked;
  }

  /**
   * Partitions the listed nodes into groups (see `partitionLinks`): links between
   * listed nodes are opened or blocked; links to unlisted nodes are left alone.
   */
  partition(groups: readonly (readonly number[])[], oneWay = false): void {
    if (!oneWay) {
      const listed = [...new Set(groups.flat())];
      for (const a of listed) for (const b of listed) if (a !== b) this.setBlocked(a, b, false);
    }
    for (const [a, b] of partitionLinks(groups, oneWay)) this.setBlocked(a, b, true);
  }

  /** Unblocks every link among `nodes` (all links when omitted). */
  heal(nodes?: readonly number[]): void {
    const all = nodes ?? this.links.map((_, i) => i);
    for (const a of all) for (const b of all) if (a !== b) this.setBlocked(a, b, false);
  }

  /** Holds messages on a link until `unclog`. */
  clog(from: number, to: number): void {
    this.link(from, to).clogged = true;
  }

  /** Releases held messages, each with a fresh latency, in the order they were sent. */
  unclog(from: number, to: number): void {
    const link = this.link(from, to);
    link.clogged = false;
    const held = link.held;
    link.held = [];
    for (const h of held) {
      if (link.blocked) this.stats.droppedPartition++;
      else this.transmit(from, to, link, h.msg, h.label, h.digest, h.delivery);
    }
  }
}
