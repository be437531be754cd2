// The simulator: virtual time, the event loop, and the life of processes.
//
// A node is a process started from a factory: `factory(ctx)` boots it from its disk and
// returns its message handler; timers and disk completions are callbacks registered
// through the context. Every event aimed at a node carries the node's incarnation, so a
// crash makes all of the old process's timers, fsync completions and inbound messages
// vanish at once, without searching the queue. Only the disk survives a crash.
//
// A paused node (SIGSTOP) handles nothing: its events wait in a side queue and run, in
// order, when it resumes. Its clock keeps running, so overdue timers fire at once.
import { NodeClock } from "./clock.js";
import { DEFAULT_DISK_OPTIONS, Disk, type DiskCrashMode, type DiskHost, type DiskOptions } from "./disk.js";
import { Monitor } from "./monitor.js";
import { Network, type NetworkHost } from "./network.js";
import { EventQueue } from "./queue.js";
import { Random } from "./random.js";
import { hashLabel, Trace } from "./trace.js";

/** Event kinds, as small integers for the hot path. */
export const EventKind = {
  Message: 1,
  Timer: 2,
  Disk: 3,
  Control: 4,
  Boot: 5,
  Crash: 6,
} as const;
const KIND_NAMES = ["", "message", "timer", "disk", "control", "boot", "crash"];

type Callback = () => void;

class SimEvent {
  timeUs = 0;
  kind = 0;
  node = -1;
  incarnation = 0;
  label = "";
  digest = 0;
  fn: Callback | null = null;
  msg: unknown = undefined;
  from = -1;
  cancelled = false;
  /** In the queue (not yet run, nor waiting on a paused node). */
  queued = false;
}

const keepLive = (ev: SimEvent): boolean => !ev.cancelled;

/** A pending timer, returned so that it can be cancelled. */
export type TimerHandle = { readonly __timer: true };

/** What a model plugs into the simulator: the handler for delivered messages. */
export interface NodeProgram {
  onMessage(from: number, msg: unknown): void;
}

/** Boots a node from its disk. Called at start and at every restart. */
export type NodeFactory = (ctx: NodeContext) => NodeProgram;

/** Thrown (by failpoints or `ctx.crash`) to kill the current process mid-handler. */
export class NodeCrash extends Error {
  constructor(
    readonly reason: string,
    readonly mode: DiskCrashMode,
  ) {
    super(`node crashed: ${reason}`);
  }
}

/** What a failpoint does when it is reached; one-shot, like an armed gofail point. */
export type FailpointAction =
  | { readonly kind: "crash"; readonly mode: DiskCrashMode }
  | { readonly kind: "stall"; readonly stallUs: number }
  /** gofail's `sleep(d)->panic`: the first pass stalls, the next one crashes. */
  | { readonly kind: "stall-crash"; readonly stallUs: number; readonly mode: DiskCrashMode };

export interface NodeOptions {
  readonly disk?: Partial<DiskOptions>;
  /** Monotonic reading at true time 0 (default: a random uptime under 1000 s). */
  readonly bootMonoUs?: number;
}

class SimNode {
  program: NodeProgram | null = null;
  incarnation = 0;
  up = false;
  pauseDepth = 0;
  deferred: SimEvent[] = [];
  failpoints = new Map<string, FailpointAction>();
  ctx: NodeContext | null = null;
  crashes = 0;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly factory: NodeFactory,
    readonly clock: NodeClock,
    readonly disk: Disk,
    readonly random: Random,
  ) {}
}

/** The API a model sees. Everything is relative to the node: its clocks, disk and randomness. */
export class NodeContext {
  constructor(
    private readonly sim: Simulator,
    private readonly node: SimNode,
    readonly incarnation: number,
  ) {}

  get id(): number {
    return this.node.index;
  }

  get name(): string {
    return this.node.name;
  }

  get disk(): Disk {
    return this.node.disk;
  }

  /** This node's own stream; it continues across restarts. */
  get random(): Random {
    return this.node.random;
  }

  /** Monotonic clock reading in microseconds: drifts, never jumps. */
  monoUs(): number {
    return this.node.clock.monoUs(this.sim.nowUs);
  }

  /** Wall clock reading in microseconds since the Unix epoch: can jump. */
  wallUs(): number {
    return this.node.clock.wallUs(this.sim.nowUs);
  }

  /** Runs `fn` after `delayUs` of this node's monotonic time. */
  setTimer(delayUs: number, label: string, fn: Callback): TimerHandle {
    const trueDelay = this.node.clock.trueDelayUs(delayUs);
    return this.sim.pushNodeEvent(
      EventKind.Timer,
      this.node,
      this.sim.nowUs + trueDelay,
      label,
      fn,
    ) as unknown as TimerHandle;
  }

  cancelTimer(handle: TimerHandle | null | undefined): void {
    this.sim.cancel(handle);
  }

  /**
   * Sends a message. `label` names its type in the trace; `digest` is a 32-bit summary
   * of its content (term, index...) so that the trace catches a divergence early.
   * `delivery`: `Delivery` flags (a datagram by default; `Delivery.Stream` for TCP).
   */
  send(to: number, msg: unknown, label: string, digest = 0, sizeBytes = 0, delivery = 0): void {
    this.sim.network.send(this.node.index, to, msg, label, digest, sizeBytes, delivery);
  }

  /**
   * A named failpoint (etcd's gofail names). Returns 0, or the stall in microseconds the
   * caller must wait here; throws NodeCrash when armed to crash.
   */
  failpoint(name: string): number {
    const fps = this.node.failpoints;
    if (fps.size === 0) return 0;
    const action = fps.get(name);
    if (!action) return 0;
    if (action.kind === "stall-crash") fps.set(name, { kind: "crash", mode: action.mode });
    else fps.delete(name);
    this.sim.noteFailpoint(this.node.name, name);
    if (action.kind === "crash") throw new NodeCrash(`failpoint ${name}`, action.mode);
    return action.stallUs;
  }

  /** Records a rare event of this node (a role change, a snapshot) on the timeline. */
  mark(kind: MarkKind, text: string): void {
    this.sim.mark(this.node.name, kind, text);
  }

  /** Kills this process now (an etcd panic on a fatal error). */
  crash(reason: string, mode: DiskCrashMode = "keep"): never {
    throw new NodeCrash(reason, mode);
  }

  /** Reports a broken property to the monitor without stopping the run. */
  report(checker: string, message: string, details?: Readonly<Record<string, unknown>>): void {
    this.sim.monitor.report({
      checker,
      message,
      node: this.node.name,
      virtualUs: this.sim.nowUs,
      ...(details ? { details } : {}),
    });
  }
}

export type MarkKind = "boot" | "crash" | "pause" | "resume" | "failpoint" | "role" | "snapshot";

/** One rare event of a node, for the report's timeline. */
export interface TimelineMark {
  readonly atUs: number;
  readonly node: string;
  readonly kind: MarkKind;
  readonly text: string;
}

export interface SimulatorOptions {
  readonly seed: string;
  /** Keep every traced event (for naming the first divergence); costs memory. */
  readonly captureTrace?: boolean;
}

export interface SimStats {
  /** Events delivered to handlers (the traced ones). */
  events: number;
  /** Events dropped because their node crashed or restarted since they were scheduled. */
  stale: number;
  crashes: number;
  restarts: number;
}

export class Simulator implements DiskHost, NetworkHost {
  nowUs = 0;
  readonly random: Random;
  readonly network: Network;
  readonly monitor = new Monitor();
  readonly trace: Trace;
  readonly stats: SimStats = { events: 0, stale: 0, crashes: 0, restarts: 0 };
  /** How often each failpoint fired, by `node/name`: proof that a fault did strike. */
  readonly failpointHits = new Map<string, number>();
  /** What happened to each node, in time order: for reports, never read by the run. */
  readonly marks: TimelineMark[] = [];
  private readonly queue = new EventQueue<SimEvent>();
  /** Cancelled events still in the queue (cancel is lazy; see cancel). */
  private cancelledQueued = 0;
  private readonly nodes: SimNode[] = [];
  private readonly capture: boolean;
  private stopped = false;

  constructor(options: SimulatorOptions) {
    this.random = new Random(options.seed);
    this.capture = options.captureTrace ?? false;
    this.trace = new Trace(this.capture);
    this.network = new Network(this);
  }

  // ---- nodes -----------------------------------------------------------------------------

  /** Adds a node (not yet started) and returns its index. Names must be unique. */
  addNode(name: string, factory: NodeFactory, options: NodeOptions = {}): number {
    if (this.nodes.some((n) => n.name === name)) throw new Error(`duplicate node name ${name}`);
    const index = this.nodes.length;
    const bootMonoUs = options.bootMonoUs ?? this.random.fork(`clock/${name}`).int(1_000_000, 1_000_000_000);
    const disk = new Disk(this, index, this.random.fork(`disk/${name}`), {
      ...DEFAULT_DISK_OPTIONS,
      ...options.disk,
    });
    this.nodes.push(
      new SimNode(index, name, factory, new NodeClock(bootMonoUs), disk, this.random.fork(`node/${name}`)),
    );
    this.network.addNode();
    return index;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  nodeName(index: number): string {
    return this.get(index).name;
  }

  nodeIndex(name: string): number {
    const i = this.findNode(name);
    if (i < 0) throw new Error(`no node named ${name}`);
    return i;
  }

  /** The index of a node by name, or -1 when there is none. */
  findNode(name: string): number {
    const n = this.nodes.find((x) => x.name === name);
    return n ? n.index : -1;
  }

  isUp(index: number): boolean {
    return this.get(index).up;
  }

  isPaused(index: number): boolean {
    return this.get(index).pauseDepth > 0;
  }

  incarnation(index: number): number {
    return this.get(index).incarnation;
  }

  clock(index: number): NodeClock {
    return this.get(index).clock;
  }

  disk(index: number): Disk {
    return this.get(index).disk;
  }

  /** The running program of a node (for inspection by checkers), or null when down. */
  program(index: number): NodeProgram | null {
    return this.get(index).program;
  }

  /** Boots a node from its disk. */
  start(index: number): void {
    const node = this.get(index);
    if (node.up) throw new Error(`${node.name} is already up`);
    node.incarnation++;
    node.up = true;
    node.pauseDepth = 0;
    this.traceEvent(EventKind.Boot, index, "boot", node.incarnation);
    this.mark(node.name, "boot", node.incarnation === 1 ? "started" : "restarted");
    const ctx = new NodeContext(this, node, node.incarnation);
    node.ctx = ctx;
    try {
      node.program = node.factory(ctx);
    } catch (e) {
      if (!(e instanceof NodeCrash)) throw e;
      this.traceEvent(EventKind.Crash, index, e.reason, node.incarnation);
      this.crashNode(node, e.mode, e.reason);
    }
  }

  /** Kills a node: volatile state, timers and in-flight work vanish; the disk loses per `mode`. */
  crash(index: number, mode: DiskCrashMode): void {
    const node = this.get(index);
    if (!node.up) return;
    this.traceEvent(EventKind.Crash, index, `crash:${mode}`, node.incarnation);
    this.crashNode(node, mode, `killed (disk ${mode})`);
  }

  /** Starts a crashed node again; it rebuilds itself from its disk alone. */
  restart(index: number): void {
    this.stats.restarts++;
    this.start(index);
  }

  /** SIGSTOP. Nested pauses need as many resumes. A down node ignores it. */
  pause(index: number): void {
    const node = this.get(index);
    if (!node.up) return;
    if (node.pauseDepth++ === 0) this.mark(node.name, "pause", "paused");
  }

  /** SIGCONT. Events that waited run now, in their original order. */
  resume(index: number): void {
    const node = this.get(index);
    if (node.pauseDepth === 0) return;
    if (--node.pauseDepth > 0) return;
    this.mark(node.name, "resume", "resumed");
    const waiting = node.deferred;
    node.deferred = [];
    for (const ev of waiting) {
      ev.timeUs = this.nowUs;
      this.enqueue(ev);
    }
  }

  /** Pauses a node for `durationUs` of true time (a stalled process, a long GC). */
  stall(index: number, durationUs: number): void {
    const node = this.get(index);
    if (!node.up) return;
    this.pause(index);
    const inc = node.incarnation;
    this.after(durationUs, "stall.end", () => {
      if (node.incarnation === inc) this.resume(index);
    });
  }

  /** Arms a one-shot failpoint on a node; it survives restarts until it fires. */
  armFailpoint(index: number, name: string, action: FailpointAction): void {
    this.get(index).failpoints.set(name, action);
  }

  disarmFailpoint(index: number, name: string): void {
    this.get(index).failpoints.delete(name);
  }

  noteFailpoint(nodeName: string, name: string): void {
    const key = `${nodeName}/${name}`;
    this.failpointHits.set(key, (this.failpointHits.get(key) ?? 0) + 1);
    this.mark(nodeName, "failpoint", name);
  }

  /** Adds a mark to the timeline (rare events only: lifecycle, roles, snapshots). */
  mark(node: string, kind: MarkKind, text: string): void {
    this.marks.push({ atUs: this.nowUs, node, kind, text });
  }

  // ---- scheduling ----------------------------------------------------------------------

  /** Runs `fn` at true time `atUs` (harness code: fault injection, workload drivers). */
  at(atUs: number, label: string, fn: Callback): TimerHandle {
    const ev = new SimEvent();
    ev.timeUs = Math.max(atUs, this.nowUs);
    ev.kind = EventKind.Control;
    ev.label = label;
    ev.fn = fn;
    this.enqueue(ev);
    return ev as unknown as TimerHandle;
  }

  after(delayUs: number, label: string, fn: Callback): TimerHandle {
    return this.at(this.nowUs + delayUs, label, fn);
  }

  /**
   * Runs `fn` on a node after `delayUs` of true time, as that node's own work: it is
   * dropped if the node crashes first, waits while the node is paused, and a failpoint
   * hit inside it crashes the node (harness triggers such as defrag or compaction).
   */
  onNode(index: number, delayUs: number, label: string, fn: Callback): TimerHandle {
    return this.pushNodeEvent(
      EventKind.Control,
      this.get(index),
      this.nowUs + delayUs,
      label,
      fn,
    ) as unknown as TimerHandle;
  }

  cancel(handle: TimerHandle | null | undefined): void {
    if (!handle) return;
    const ev = handle as unknown as SimEvent;
    if (ev.cancelled) return;
    ev.cancelled = true;
    if (!ev.queued) return;
    // Most timers are request timeouts, cancelled when the answer comes: left in the
    // heap, they outnumber the live events a hundred to one. Once they are half of it,
    // they go (order is kept: every key is unique).
    if (++this.cancelledQueued > 256 && this.cancelledQueued * 2 > this.queue.size) {
      this.queue.compact(keepLive);
      this.cancelledQueued = 0;
    }
  }

  /** @internal used by NodeContext and Disk. */
  pushNodeEvent(kind: number, node: SimNode, atUs: number, label: string, fn: Callback): SimEvent {
    const ev = new SimEvent();
    ev.timeUs = atUs;
    ev.kind = kind;
    ev.node = node.index;
    ev.incarnation = node.incarnation;
    ev.label = label;
    ev.fn = fn;
    this.enqueue(ev);
    return ev;
  }

  scheduleDisk(node: number, atUs: number, label: string, fn: Callback): void {
    this.pushNodeEvent(EventKind.Disk, this.get(node), atUs, label, fn);
  }

  scheduleMessage(from: number, to: number, atUs: number, msg: unknown, label: string, digest: number): void {
    const target = this.get(to);
    const ev = new SimEvent();
    ev.timeUs = atUs;
    ev.kind = EventKind.Message;
    ev.node = to;
    // A message is for the process that is running now; after a restart it is stale,
    // as bytes on a TCP connection to a dead process are.
    ev.incarnation = target.incarnation;
    ev.label = label;
    ev.digest = digest;
    ev.msg = msg;
    ev.from = from;
    this.enqueue(ev);
  }

  linkRandom(from: number, to: number): Random {
    return this.random.fork(`net/${this.nodeName(from)}->${this.nodeName(to)}`);
  }

  // ---- running -------------------------------------------------------------------------

  private enqueue(ev: SimEvent): void {
    ev.queued = true;
    if (ev.cancelled) this.cancelledQueued++; // a deferred event cancelled while it waited
    this.queue.push(ev.timeUs, ev);
  }

  /** Processes one event. Returns false when the queue is empty. */
  step(): boolean {
    const ev = this.queue.pop();
    if (ev === undefined) return false;
    ev.queued = false;
    this.nowUs = ev.timeUs;
    if (ev.cancelled) {
      this.cancelledQueued--;
      return true;
    }
    if (ev.node < 0) {
      this.traceEvent(ev.kind, -1, ev.label, ev.digest);
      (ev.fn as Callback)();
      return true;
    }
    const node = this.nodes[ev.node] as SimNode;
    if (ev.incarnation !== node.incarnation || !node.up) {
      this.stats.stale++;
      return true;
    }
    if (node.pauseDepth > 0) {
      node.deferred.push(ev);
      return true;
    }
    this.traceEvent(
      ev.kind,
      ev.node,
      ev.label,
      ev.kind === EventKind.Message ? ev.digest ^ (ev.from << 24) : ev.digest,
    );
    try {
      if (ev.kind === EventKind.Message) (node.program as NodeProgram).onMessage(ev.from, ev.msg);
      else (ev.fn as Callback)();
    } catch (e) {
      if (!(e instanceof NodeCrash)) throw e;
      this.traceEvent(EventKind.Crash, node.index, e.reason, node.incarnation);
      this.crashNode(node, e.mode, e.reason);
    }
    return true;
  }

  /** Runs every event up to and including `timeUs`, then sets the clock there. */
  runUntil(timeUs: number): void {
    this.stopped = false;
    while (!this.stopped && this.queue.peekTimeUs() <= timeUs) this.step();
    if (!this.stopped && this.nowUs < timeUs) this.nowUs = timeUs;
  }

  runFor(durationUs: number): void {
    this.runUntil(this.nowUs + durationUs);
  }

  /** Runs at most `count` events. */
  runEvents(count: number): void {
    this.stopped = false;
    for (let i = 0; i < count && !this.stopped; i++) if (!this.step()) break;
  }

  /** Runs until `done()` holds (checked after each event) or `limitUs` is reached; returns done(). */
  runUntilTrue(done: () => boolean, limitUs: number): boolean {
    this.stopped = false;
    while (!this.stopped && !done()) {
      if (this.queue.peekTimeUs() > limitUs) {
        if (this.nowUs < limitUs) this.nowUs = limitUs;
        return done();
      }
      if (!this.step()) return done();
    }
    return done();
  }

  /** Makes the current run call return after the event being handled. */
  stop(): void {
    this.stopped = true;
  }

  get pendingEvents(): number {
    return this.queue.size;
  }

  // ---- internals -----------------------------------------------------------------------

  private get(index: number): SimNode {
    const n = this.nodes[index];
    if (!n) throw new RangeError(`no node ${index}`);
    return n;
  }

  private crashNode(node: SimNode, mode: DiskCrashMode, reason: string): void {
    this.mark(node.name, "crash", reason);
    node.up = false;
    node.program = null;
    node.ctx = null;
    node.pauseDepth = 0;
    node.deferred = [];
    node.incarnation++;
    node.crashes++;
    node.disk.crash(mode);
    this.stats.crashes++;
  }

  private traceEvent(kind: number, node: number, label: string, digest: number): void {
    this.stats.events++;
    this.trace.add(this.nowUs, kind, node, hashLabel(label), digest | 0);
    if (this.capture) {
      this.trace.capture(
        this.nowUs,
        KIND_NAMES[kind] ?? "?",
        node < 0 ? "world" : this.nodeName(node),
        label,
        digest,
      );
    }
  }
}
