// Watch (etcd's mvcc/watchable_store.go and api/v3rpc/watch.go).
//
// - A watcher is *synced* when it has seen everything up to the current revision (new
//   writes notify it directly), *unsynced* while it catches up from history (every
//   100 ms, up to 512 watchers, 1000 revisions per response), and a *victim* when its
//   stream's channel was full: victims are retried every 10 ms.
// - Many watchers share one stream; the store pushes responses into the stream's channel
//   (128 slots) and the stream's send loop forwards them to the client, applying filters
//   and filling prev_kv (read at revision - 1 when sending).
// - An unsynced watcher below the compact revision is sent the compact revision and
//   cancelled.
// - Progress notifications: requested ones go out only when every watcher on the stream
//   is synced; periodic ones (per watcher that asked) only for synced watchers.
// - A snapshot restore moves every synced watcher to unsynced.
import type { KeyValue, WatchEvent, WatchFilter } from "../client/history.js";
import { inKeyRange, type Mvcc } from "./mvcc.js";

export const WATCH_CHANNEL_CAPACITY = 128;
export const SYNC_INTERVAL_US = 100_000;
export const VICTIM_INTERVAL_US = 10_000;
const MAX_WATCHERS_PER_SYNC = 512;
const MAX_REVS_PER_RESPONSE = 1000;
const NO_EVENTS: readonly WatchEvent[] = [];

/** What the store puts in a stream's channel. */
export interface StoreResponse {
  readonly watchId: number;
  readonly events: readonly WatchEvent[];
  readonly revision: number;
  readonly compactRevision?: number;
  /** A progress notification (no events). */
  readonly progress?: boolean;
}

/**
 * What a watch stream sends to its client. Every field is always there, in one order
 * (`watchMessage` makes the rare kinds): the client reads them all on its hottest path,
 * and messages of several shapes made those reads megamorphic.
 */
export interface WatchMessage {
  readonly kind: "watch-resp";
  readonly streamId: number;
  readonly watchId: number;
  readonly revision: number;
  readonly events: readonly WatchEvent[];
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compactRevision: number | undefined;
  readonly progressNotify: boolean;
  readonly cancelReason: string | undefined;
  /** On a `created` response, or a refused create: the create request it answers. */
  readonly reqId: number | undefined;
  readonly member: string;
  /**
   * The member process that sent it. A stream lives on one TCP connection to one
   * process: a message from another incarnation means the connection broke.
   */
  readonly incarnation: number;
}

/** A watch response other than events: the fields it sets, the rest at their defaults. */
export function watchMessage(
  m: Pick<WatchMessage, "streamId" | "watchId" | "revision" | "member" | "incarnation"> & {
    readonly created?: boolean;
    readonly canceled?: boolean;
    readonly compactRevision?: number;
    readonly cancelReason?: string;
    readonly reqId?: number;
  },
): WatchMessage {
  return {
    kind: "watch-resp",
    streamId: m.streamId,
    watchId: m.watchId,
    revision: m.revision,
    events: NO_EVENTS,
    created: m.created ?? false,
    canceled: m.canceled ?? false,
    compactRevision: m.compactRevision,
    progressNotify: false,
    cancelReason: m.cancelReason,
    reqId: m.reqId,
    member: m.member,
    incarnation: m.incarnation,
  };
}

export interface WatchRequestMsg {
  readonly key: string;
  readonly rangeEnd?: string;
  readonly startRevision?: number;
  readonly prevKv?: boolean;
  readonly progressNotify?: boolean;
  readonly filters?: readonly WatchFilter[];
}

export class Watcher {
  minRev = 0;
  victim = false;
  compacted = false;
  /** Events left to resend when it was made a victim. */
  pending: StoreResponse | null = null;

  // The request's fields read per event, copied once: requests come in many shapes,
  // and reading them on every event was a megamorphic load each.
  private readonly key: string;
  private readonly rangeEnd: string | undefined;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;

  constructor(
    readonly id: number,
    readonly stream: WatchStream,
    readonly req: WatchRequestMsg,
    readonly startRev: number,
  ) {
    this.key = req.key;
    this.rangeEnd = req.rangeEnd;
    this.prevKv = req.prevKv ?? false;
    this.noPut = req.filters?.includes("NOPUT") ?? false;
    this.noDelete = req.filters?.includes("NODELETE") ?? false;
  }

  matches(key: string): boolean {
    return inKeyRange(key, this.key, this.rangeEnd);
  }
}

/** What the store and streams need from the server. */
export interface WatchHost {
  setTimer(delayUs: number, label: string, fn: () => void): void;
  /** Returns the stall in microseconds armed at a failpoint (it may also crash the node). */
  failpoint(name: string): number;
  send(toClient: number, msg: WatchMessage): void;
  readonly memberName: string;
  /** The process's incarnation, stamped on every message (WatchMessage.incarnation). */
  readonly incarnation: number;
}

export interface WatchBugs {
  /** #15271: synced watchers' minRev does not advance as they get events. */
  readonly minRevStale: boolean;
  /** #15220: a requested progress notification goes out at once, ahead of queued events. */
  readonly progressAheadOfEvents: boolean;
  /** #17529: a watcher that could not get its compaction notice is synced past the gap. */
  readonly compactionGap: boolean;
  /** #20221: a future-revision watch gets progress and old events below its start. */
  readonly futureRevOldEvents: boolean;
}

/** A gRPC watch stream on the server: watchers, the channel, and the send loop. */
export class WatchStream {
  readonly watchers = new Map<number, Watcher>();
  /**
   * Watchers a compaction cancelled whose cancel is still in the channel: the send loop
   * still sends what was queued for them before it, with their filters and prev_kv (etcd's
   * sendLoop keeps a watch id in `ids`, and its prevKV flag, until the client cancels it).
   */
  readonly compacted = new Map<number, Watcher>();
  private readonly channel: StoreResponse[] = [];
  private draining = false;
  private nextWatchId = 0;
  closed = false;

  constructor(
    readonly id: number,
    readonly client: number,
    readonly requireLeader: boolean,
    private readonly store: WatchableStore,
  ) {}

  /** Non-blocking push into the channel (false when full, as Go's `select default`). */
  push(r: StoreResponse): boolean {
    if (this.closed) return true;
    if (this.channel.length >= WATCH_CHANNEL_CAPACITY) return false;
    this.channel.push(r);
    this.scheduleDrain();
    return true;
  }

  get queued(): number {
    return this.channel.length;
  }

  allocWatchId(): number {
    return this.nextWatchId++;
  }

  private scheduleDrain(): void {
    if (this.draining) return;
    this.draining = true;
    this.store.host.setTimer(0, "watch.send", this.drain);
  }

  /** The send loop: one response at a time (failpoint beforeSendWatchResponse may stall it). */
  private readonly drain = (): void => {
    const next = this.channel[0];
    if (!next || this.closed) {
      this.draining = false;
      return;
    }
    const stallUs = this.store.host.failpoint("beforeSendWatchResponse");
    if (stallUs > 0) {
      this.store.host.setTimer(stallUs, "watch.send-stalled", () => this.sendOne());
      return;
    }
    this.sendOne();
  };

  private sendOne(): void {
    const r = this.channel.shift();
    if (r) this.store.deliver(this, r);
    if (this.channel.length > 0 && !this.closed) this.store.host.setTimer(0, "watch.send", this.drain);
    else this.draining = false;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) this.store.remove(w);
    this.watchers.clear();
    this.compacted.clear();
    this.channel.length = 0;
  }
}

export class WatchableStore {
  readonly synced = new Set<Watcher>();
  readonly unsynced = new Set<Watcher>();
  readonly victims = new Set<Watcher>();
  private syncArmed = false;
  private victimsArmed = false;

  constructor(
    readonly mvcc: Mvcc,
    readonly host: WatchHost,
    private readonly bugs: WatchBugs,
  ) {}

  /**
   * The catch-up loop (every 100 ms) and the victim loop (every 10 ms). etcd's tickers run
   * always and skip when there is nothing to do; ours are armed only while there is work,
   * so an idle member schedules no events.
   */
  private armSync(): void {
    if (this.syncArmed) return;
    this.syncArmed = true;
    this.host.setTimer(SYNC_INTERVAL_US, "watch.sync", () => {
      const stallUs = this.host.failpoint("beforeSyncWatchers");
      const run = () => {
        this.syncArmed = false;
        this.syncWatchers();
        if (this.unsynced.size > 0) this.armSync();
      };
      if (stallUs > 0) this.host.setTimer(stallUs, "watch.sync-stalled", run);
      else run();
    });
  }

  private armVictims(): void {
    if (this.victimsArmed) return;
    this.victimsArmed = true;
    this.host.setTimer(VICTIM_INTERVAL_US, "watch.victims", () => {
      this.victimsArmed = false;
      this.moveVictims();
      if (this.victims.size > 0) this.armVictims();
    });
  }

  private addUnsynced(w: Watcher): void {
    this.unsynced.add(w);
    this.armSync();
  }

  private addVictim(w: Watcher): void {
    this.victims.add(w);
    this.armVictims();
  }

  /** Creates a watcher (etcd's watchableStore.watch). */
  watch(stream: WatchStream, req: WatchRequestMsg): Watcher {
    const cur = this.mvcc.currentRev;
    const start = req.startRevision ?? 0;
    const w = new Watcher(stream.allocWatchId(), stream, req, start);
    const synced = start === 0 || start > cur;
    if (synced) {
      w.minRev = cur + 1;
      if (start > w.minRev) w.minRev = start;
      this.synced.add(w);
    } else {
      w.minRev = start;
      this.addUnsynced(w);
    }
    stream.watchers.set(w.id, w);
    return w;
  }

  remove(w: Watcher): void {
    this.synced.delete(w);
    this.unsynced.delete(w);
    this.victims.delete(w);
    w.stream.watchers.delete(w.id);
  }

  /** A write transaction ended (etcd's notify): synced watchers get its events. */
  notify(rev: number, events: readonly WatchEvent[]): void {
    // (deleting the watcher being visited is safe in a Set iteration; nothing is added)
    for (const w of this.synced) {
      // events below minRev were sent already (or come before a future watcher's start)
      let matching = 0;
      for (const e of events) if (w.matches(e.kv.key) && e.kv.modRevision >= w.minRev) matching++;
      if (matching === 0) continue;
      // every event matches (a prefix watch, usually): the list itself, uncopied
      const evs =
        matching === events.length
          ? events
          : events.filter((e) => w.matches(e.kv.key) && e.kv.modRevision >= w.minRev);
      const r: StoreResponse = { watchId: w.id, events: evs, revision: rev };
      if (w.stream.push(r)) {
        if (!this.bugs.minRevStale) w.minRev = rev + 1;
      } else {
        // the stream is full: a victim, retried later
        w.minRev = rev + 1;
        w.victim = true;
        w.pending = r;
        this.synced.delete(w);
        this.addVictim(w);
      }
    }
  }

  /** Catch-up of unsynced watchers from history (etcd's syncWatchers). */
  syncWatchers(): void {
    if (this.unsynced.size === 0) return;
    const cur = this.mvcc.currentRev;
    const compactRev = this.mvcc.compactMainRev;
    const chosen: Watcher[] = [];
    let minRev = Number.POSITIVE_INFINITY;
    for (const w of this.unsynced) {
      if (chosen.length >= MAX_WATCHERS_PER_SYNC) break;
      if (w.minRev > cur) {
        // a future watcher: nothing to catch up
        this.unsynced.delete(w);
        this.synced.add(w);
        continue;
      }
      if (w.minRev < compactRev) {
        // below the compaction: send the compact revision and cancel; etcd's response has no
        // revision (watcher_group.go chooseAll), so its header says 0
        if (w.stream.push({ watchId: w.id, events: [], revision: 0, compactRevision: compactRev })) {
          w.compacted = true;
          this.remove(w);
          w.stream.compacted.set(w.id, w);
          continue;
        }
        // the channel is full: retry next time, unless the planted #17529 syncs it anyway
        if (!this.bugs.compactionGap) continue;
        chosen.push(w);
        continue;
      }
      chosen.push(w);
      if (w.minRev < minRev) minRev = w.minRev;
    }
    if (chosen.length === 0) return;
    const rows = minRev === Number.POSITIVE_INFINITY ? [] : this.mvcc.history(minRev, cur);
    for (const w of chosen) {
      const mine = rows.filter((r) => r.rev.main >= w.minRev && w.matches(r.change.kv.key));
      // at most 1000 revisions a response; the rest next time
      const revs: number[] = [];
      for (const r of mine)
        if (revs.length === 0 || revs[revs.length - 1] !== r.rev.main) revs.push(r.rev.main);
      let upTo = cur;
      let more = false;
      if (revs.length > MAX_REVS_PER_RESPONSE) {
        upTo = revs[MAX_REVS_PER_RESPONSE - 1] as number;
        more = true;
      }
      const events = mine.filter((r) => r.rev.main <= upTo).map((r) => r.change as WatchEvent);
      w.minRev = more ? upTo + 1 : cur + 1;
      if (events.length === 0) {
        this.unsynced.delete(w);
        this.synced.add(w);
        continue;
      }
      const r: StoreResponse = { watchId: w.id, events, revision: cur };
      if (w.stream.push(r)) {
        if (!more) {
          this.unsynced.delete(w);
          this.synced.add(w);
        }
      } else {
        // full: a victim with these events (minRev already past them)
        w.victim = true;
        w.pending = r;
        this.unsynced.delete(w);
        this.addVictim(w);
      }
    }
  }

  /** Retries victims (etcd's moveVictims). */
  moveVictims(): void {
    const stallUs = this.host.failpoint("beforeMoveVictims");
    if (stallUs > 0) return;
    const cur = this.mvcc.currentRev;
    for (const w of [...this.victims]) {
      const r = w.pending;
      if (r && !w.stream.push(r)) continue;
      w.pending = null;
      w.victim = false;
      this.victims.delete(w);
      if (w.minRev <= cur) this.addUnsynced(w);
      else this.synced.add(w);
    }
  }

  /** After a snapshot restore: every synced watcher catches up from its minRev. */
  restore(): void {
    for (const w of [...this.synced]) {
      this.synced.delete(w);
      // #20221 fixed: a future watcher stays at its start; planted: it is reset below it
      if (this.bugs.futureRevOldEvents && w.startRev > this.mvcc.currentRev)
        w.minRev = Math.min(w.minRev, this.mvcc.currentRev);
      this.addUnsynced(w);
    }
  }

  /** A requested progress notification for a stream (etcd's RequestProgress). */
  requestProgress(stream: WatchStream): void {
    const rev = this.mvcc.currentRev;
    if (this.bugs.progressAheadOfEvents) {
      // #15220: out of band, whatever is still queued or unsynced
      this.deliver(stream, { watchId: -1, events: [], revision: rev, progress: true });
      return;
    }
    const stallUs = this.host.failpoint("beforeProgressIfSync");
    if (stallUs > 0) return;
    for (const w of stream.watchers.values()) if (!this.synced.has(w)) return;
    // a progress notification may not report below a future watcher's start (#20221)
    if (!this.bugs.futureRevOldEvents) {
      for (const w of stream.watchers.values()) if (w.startRev > 0 && w.startRev - 1 > rev) return;
    }
    stream.push({ watchId: -1, events: [], revision: rev, progress: true });
  }

  /** Periodic progress (etcd's progress loop): each synced watcher that asked for it. */
  progressAll(stream: WatchStream): void {
    const rev = this.mvcc.currentRev;
    for (const w of stream.watchers.values()) {
      if (!w.req.progressNotify || !this.synced.has(w)) continue;
      if (!this.bugs.futureRevOldEvents && w.startRev > 0 && w.startRev - 1 > rev) continue;
      stream.push({ watchId: w.id, events: [], revision: rev, progress: true });
    }
  }

  /** The send loop's half: filters, prev_kv, then the network. */
  deliver(stream: WatchStream, r: StoreResponse): void {
    if (stream.closed) return;
    const w = stream.watchers.get(r.watchId) ?? stream.compacted.get(r.watchId);
    if (r.compactRevision !== undefined) {
      if (!w) return; // the client cancelled it meanwhile: etcd's sendLoop holds it back
      stream.compacted.delete(r.watchId); // its last response
      this.host.send(
        stream.client,
        watchMessage({
          streamId: stream.id,
          watchId: r.watchId,
          revision: r.revision,
          canceled: true,
          compactRevision: r.compactRevision,
          cancelReason: "mvcc: required revision has been compacted",
          member: this.host.memberName,
          incarnation: this.host.incarnation,
        }),
      );
      return;
    }
    let events: readonly WatchEvent[] = NO_EVENTS;
    if (w) {
      // nothing to filter or fill: the store's list itself, uncopied
      if (!w.noPut && !w.noDelete && !w.prevKv) events = r.events;
      else events = this.filled(w, r.events);
      if (events.length === 0 && r.events.length > 0) return; // everything filtered out
    } else if (r.watchId !== -1) {
      return; // the watcher is gone
    }
    // the hottest message: spelt out, in watchMessage's order
    this.host.send(stream.client, {
      kind: "watch-resp",
      streamId: stream.id,
      watchId: r.watchId,
      revision: r.revision,
      events,
      created: false,
      canceled: false,
      compactRevision: undefined,
      progressNotify: r.progress === true,
      cancelReason: undefined,
      reqId: undefined,
      member: this.host.memberName,
      incarnation: this.host.incarnation,
    });
  }

  /** A response's events through the watcher's filters, with prev_kv if it asked. */
  private filled(w: Watcher, from: readonly WatchEvent[]): WatchEvent[] {
    const events: WatchEvent[] = [];
    for (const e of from) {
      if ((e.type === "PUT" && w.noPut) || (e.type === "DELETE" && w.noDelete)) continue;
      if (!w.prevKv) {
        events.push(e);
        continue;
      }
      const prevKv = this.prevKv(e.kv);
      events.push(prevKv ? { type: e.type, kv: e.kv, prevKv } : { type: e.type, kv: e.kv });
    }
    return events;
  }

  /** prev_kv: the key at mod revision - 1, if not compacted. */
  private prevKv(kv: KeyValue): KeyValue | undefined {
    const r = this.mvcc.range(kv.key, undefined, { rev: kv.modRevision - 1 });
    if (!("kvs" in r) || r.kvs.length === 0) return undefined;
    return r.kvs[0] as KeyValue;
  }
}
