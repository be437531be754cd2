// A toy system for testing the kernel and, later, the runner and the shrinker: every
// node increments a durable counter, fsyncs it, and only then tells its peers. On boot
// it reads the counter back and reports if it is lower than a value it announced.
// `ackBeforeFsync` plants the classic bug: announcing before the fsync completes.
import { type NodeContext, type NodeProgram, Simulator, type TimerHandle } from "../../sim/index.js";

export interface CounterOptions {
  readonly peers: readonly number[];
  readonly tickUs: number;
  /** The planted bug: announce a value before it is durable. */
  readonly ackBeforeFsync?: boolean;
  /** Highest value each node announced, kept by the world (it outlives crashes). */
  readonly announced: Map<string, number>;
}

const FILE = "counter.log";
const RECORD_BYTES = 4;

export interface CounterMessage {
  readonly value: number;
}

export class CounterNode implements NodeProgram {
  value = 0;
  /** The highest value heard from each peer, by node index. */
  readonly heard = new Map<number, number>();
  private timer: TimerHandle | null = null;

  constructor(
    private readonly ctx: NodeContext,
    private readonly options: CounterOptions,
  ) {
    this.value = readCounter(ctx);
    const announced = options.announced.get(ctx.name) ?? 0;
    if (this.value < announced) {
      ctx.report("toy.durability", `${ctx.name} booted with ${this.value} after announcing ${announced}`, {
        booted: this.value,
        announced,
      });
    }
    this.schedule();
  }

  onMessage(from: number, msg: unknown): void {
    const { value } = msg as CounterMessage;
    if (value > (this.heard.get(from) ?? 0)) this.heard.set(from, value);
  }

  private schedule(): void {
    this.timer = this.ctx.setTimer(this.options.tickUs, "counter.tick", () => this.tick());
  }

  private tick(): void {
    const value = ++this.value;
    const record = new Uint8Array(RECORD_BYTES);
    new DataView(record.buffer).setUint32(0, value);
    this.ctx.disk.append(FILE, record);
    if (this.options.ackBeforeFsync) this.announce(value);
    this.ctx.disk.fsync(FILE, (err) => {
      if (err) this.ctx.crash(`fsync failed: ${err.message}`);
      if (!this.options.ackBeforeFsync) this.announce(value);
    });
    this.schedule();
  }

  private announce(value: number): void {
    const announced = this.options.announced;
    if (value > (announced.get(this.ctx.name) ?? 0)) announced.set(this.ctx.name, value);
    for (const p of this.options.peers)
      this.ctx.send(p, { value } satisfies CounterMessage, "counter.value", value);
  }

  stop(): void {
    this.ctx.cancelTimer(this.timer);
  }
}

/** The last whole record of the counter file; a torn tail record is ignored. */
function readCounter(ctx: NodeContext): number {
  if (!ctx.disk.exists(FILE)) return 0;
  const size = ctx.disk.size(FILE);
  const whole = size - (size % RECORD_BYTES);
  if (whole === 0) return 0;
  const bytes = ctx.disk.read(FILE, whole - RECORD_BYTES, RECORD_BYTES);
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
}

export interface ToyRunOptions {
  readonly seed: string;
  readonly nodes?: number;
  readonly durationUs?: number;
  readonly ackBeforeFsync?: boolean;
  readonly captureTrace?: boolean;
}

export interface ToyRunResult {
  readonly sim: Simulator;
  readonly faults: number;
}

/**
 * Runs the counter cluster under random faults drawn from the seed: crashes in every
 * disk mode with restarts, partitions (symmetric, one-way, bridges), pauses, clock drift
 * and wall jumps, lossy and duplicating links, clogging and slow fsync.
 */
export function runToyCluster(options: ToyRunOptions): ToyRunResult {
  const n = options.nodes ?? 3;
  const durationUs = options.durationUs ?? 3_000_000;
  const sim = new Simulator({ seed: options.seed, captureTrace: options.captureTrace ?? false });
  const announced = new Map<string, number>();
  const all = Array.from({ length: n }, (_, i) => i);
  for (const i of all) {
    const peers = all.filter((p) => p !== i);
    sim.addNode(
      `n${i + 1}`,
      (ctx) =>
        new CounterNode(ctx, {
          peers,
          tickUs: 20_000,
          announced,
          ackBeforeFsync: options.ackBeforeFsync ?? false,
        }),
    );
  }
  for (const i of all) sim.start(i);
  const rng = sim.random.fork("faults");
  sim.network.configureAmong(all, { lossRate: rng.float(0, 0.05), duplicateRate: rng.float(0, 0.05) });
  let faults = 0;
  for (let t = 100_000; t < durationUs; t += rng.int(20_000, 200_000)) {
    const node = rng.int(0, n);
    const lengthUs = rng.int(10_000, 400_000);
    faults++;
    switch (rng.int(0, 7)) {
      case 0: {
        const mode = rng.pick(["keep", "lose", "prefix", "torn"] as const);
        sim.at(t, "fault.crash", () => sim.crash(node, mode));
        sim.at(t + lengthUs, "fault.restart", () => {
          if (!sim.isUp(node)) sim.restart(node);
        });
        break;
      }
      case 1: {
        const shuffled = rng.shuffle([...all]);
        const cut = rng.int(1, n);
        const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
        const oneWay = rng.chance(0.3);
        sim.at(t, "fault.partition", () => sim.network.partition(groups, oneWay));
        sim.at(t + lengthUs, "fault.heal", () => sim.network.heal(all));
        break;
      }
      case 2:
        sim.at(t, "fault.pause", () => sim.pause(node));
        sim.at(t + lengthUs, "fault.resume", () => sim.resume(node));
        break;
      case 3: {
        const ppm = rng.int(-200_000, 200_000);
        sim.at(t, "fault.drift", () => sim.clock(node).setDriftPpm(sim.nowUs, ppm));
        break;
      }
      case 4: {
        const jumpUs = rng.int(-5_000_000, 5_000_000);
        sim.at(t, "fault.wall-jump", () => sim.clock(node).jumpWallUs(jumpUs));
        break;
      }
      case 5: {
        const to = (node + 1) % n;
        sim.at(t, "fault.clog", () => sim.network.clog(node, to));
        sim.at(t + lengthUs, "fault.unclog", () => sim.network.unclog(node, to));
        break;
      }
      default: {
        const extraUs = rng.int(1_000, 100_000);
        sim.at(t, "fault.slow-disk", () => {
          sim.disk(node).faults.fsyncExtraUs = extraUs;
        });
        sim.at(t + lengthUs, "fault.disk-ok", () => {
          sim.disk(node).faults.fsyncExtraUs = 0;
        });
      }
    }
  }
  sim.runUntil(durationUs);
  return { sim, faults };
}
