// The kernel's demonstration system run under random faults: the toy counter cluster
// (models/toy) with a fault schedule drawn from the seed. Used by `etcd-dst demo` and
// the kernel's tests.
import { CounterNode } from "../models/toy/counter.js";
import { Simulator } from "../sim/index.js";
import { type FaultTarget, generateFaults, scheduleFaults } from "./faults.js";

export interface ToyRunOptions {
  readonly seed: string;
  readonly nodes?: number;
  readonly durationUs?: number;
  /** The planted bug: announce a value before its fsync completes. */
  readonly ackBeforeFsync?: boolean;
  readonly captureTrace?: boolean;
}

export interface ToyRunResult {
  readonly sim: Simulator;
  readonly faults: number;
}

/**
 * Runs the counter cluster under crashes in every disk mode with restarts, partitions
 * (symmetric, one-way, bridges), pauses, clock drift and wall jumps, lossy and
 * duplicating links, clogging and slow fsync.
 */
export function runToyCluster(options: ToyRunOptions): ToyRunResult {
  const n = options.nodes ?? 3;
  const durationUs = options.durationUs ?? 3_000_000;
  const sim = new Simulator({ seed: options.seed, captureTrace: options.captureTrace ?? false });
  const announced = new Map<string, number>();
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const indexes = names.map((name, i) => {
    const peers = names.map((_, j) => j).filter((j) => j !== i);
    const ackBeforeFsync = options.ackBeforeFsync ?? false;
    return sim.addNode(
      name,
      (ctx) => new CounterNode(ctx, { peers, tickUs: 20_000, announced, ackBeforeFsync }),
    );
  });
  for (const i of indexes) sim.start(i);
  const target: FaultTarget = { sim, members: names, index: (name) => names.indexOf(name) };
  const faults = generateFaults(sim.random.fork("faults"), {
    members: names,
    startUs: 100_000,
    endUs: durationUs,
    meanGapUs: 100_000,
    mix: {
      crash: 2,
      partition: 1,
      pause: 1,
      "clock-drift": 1,
      "wall-jump": 1,
      link: 1,
      clog: 1,
      "slow-disk": 1,
    },
    crashModes: ["keep", "lose", "prefix", "torn"],
    maxDown: n,
  });
  scheduleFaults(target, faults);
  sim.runUntil(durationUs);
  return { sim, faults: faults.length };
}
