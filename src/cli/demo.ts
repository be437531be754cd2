// `etcd-dst demo`: the kernel's demonstration. A durable replicated counter runs under
// random crashes, partitions, pauses, clock faults and disk faults; every seed runs
// twice and must give the same trace hash.
import { runToyCluster } from "../toy.js";
import { Exit, type ExitCode, type Io, parseCount, parseFlags, parseSeed } from "./common.js";

export function demo(argv: readonly string[], io: Io): ExitCode {
  const { values } = parseFlags(argv, {
    seeds: { type: "string" },
    from: { type: "string" },
    "ack-before-fsync": { type: "boolean" },
    json: { type: "boolean" },
  });
  const count = values.seeds === undefined ? 200 : parseCount(values.seeds, "--seeds");
  const from = values.from === undefined ? 1 : parseSeed(values.from, "--from");
  const buggy = values["ack-before-fsync"] === true;
  const started = performance.now();
  let events = 0;
  let virtualUs = 0;
  let faults = 0;
  const failures: number[] = [];
  const nondeterministic: number[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const a = runToyCluster({ seed: String(seed), ackBeforeFsync: buggy });
    const b = runToyCluster({ seed: String(seed), ackBeforeFsync: buggy });
    if (a.sim.trace.hash !== b.sim.trace.hash) nondeterministic.push(seed);
    if (!a.sim.monitor.empty) failures.push(seed);
    events += a.sim.stats.events + b.sim.stats.events;
    virtualUs += 2 * a.sim.nowUs;
    faults += a.faults;
    if (io.progress) io.err(`\rseed ${seed - from + 1}/${count}  failures ${failures.length}`);
  }
  const wallMs = performance.now() - started;
  if (io.progress) io.err("\n");
  const summary = {
    seeds: count,
    from,
    failures,
    nondeterministic,
    faults,
    events,
    virtualMs: Math.round(virtualUs / 1000),
    wallMs: Math.round(wallMs),
  };
  if (values.json) {
    io.out(JSON.stringify(summary));
  } else {
    io.out(`toy counter cluster, 3 nodes, random faults, ${count} seeds from ${from}, each run twice`);
    io.out(`  faults injected   ${faults}`);
    io.out(`  events            ${events} (${Math.round(events / (wallMs / 1000))} per wall-second)`);
    io.out(`  virtual:wall      ${(virtualUs / 1000 / wallMs).toFixed(1)}x`);
    io.out(
      `  deterministic     ${nondeterministic.length === 0 ? "yes, every seed replayed to the same hash" : `NO: ${nondeterministic.join(", ")}`}`,
    );
    io.out(
      `  durability        ${failures.length === 0 ? "held on every seed" : `broken on seeds ${failures.join(", ")}`}`,
    );
  }
  return nondeterministic.length > 0 || failures.length > 0 ? Exit.Violation : Exit.Ok;
}
