// A toy system for testing the kernel and, later, the runner and the shrinker: every
// node increments a durable counter, fsyncs it, and only then tells its peers. On boot
// it reads the counter back and reports if it is lower than a value it announced.
// `ackBeforeFsync` plants the classic bug: announcing before the fsync completes.
import type { NodeContext, NodeProgram, TimerHandle } from "../../sim/index.js";

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
