// A small system (a durable replicated counter) under random faults: every seed runs
// twice with equal trace hashes, and the durability property holds unless the planted
// bug is on, in which case the monitor catches it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CounterNode } from "../../models/toy/counter.js";
import { runToyCluster } from "../../src/toy.js";
import { seedCount, seeds } from "../helpers.js";

const SEEDS = seeds(seedCount(200, 2000));

test("every seed replays to the same trace hash under random faults", () => {
  const hashes = new Set<string>();
  let faults = 0;
  for (const s of SEEDS) {
    const a = runToyCluster({ seed: String(s) });
    const b = runToyCluster({ seed: String(s) });
    assert.is(a.sim.trace.hash, b.sim.trace.hash, `seed ${s}`);
    assert.is(a.sim.stats.events, b.sim.stats.events, `seed ${s}`);
    hashes.add(a.sim.trace.hash);
    faults += a.faults;
  }
  assert.is(hashes.size, SEEDS.length, "different seeds give different runs");
  assert.ok(faults > SEEDS.length * 10, "faults were injected");
});

test("the correct counter never loses an announced value", () => {
  let crashes = 0;
  for (const s of SEEDS) {
    const { sim } = runToyCluster({ seed: String(s) });
    assert.equal(sim.monitor.reports, [], `seed ${s}`);
    crashes += sim.stats.crashes;
    // the cluster made progress and peers heard each other
    const p = sim.program(0);
    if (p instanceof CounterNode) assert.ok(p.value > 0);
  }
  assert.ok(crashes > SEEDS.length, `crashes happened: ${crashes}`);
});

test("announcing before fsync is caught by the monitor on some seeds, and replays", () => {
  const caught: number[] = [];
  for (const s of SEEDS) {
    const { sim } = runToyCluster({ seed: String(s), ackBeforeFsync: true });
    if (sim.monitor.countOf("toy.durability") > 0) caught.push(s);
  }
  assert.ok(caught.length >= 5, `caught on ${caught.length} seeds`);
  const again = runToyCluster({ seed: String(caught[0]), ackBeforeFsync: true });
  assert.ok(again.sim.monitor.countOf("toy.durability") > 0, "the failing seed fails again");
});

test.run();
