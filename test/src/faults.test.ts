// The fault schedule executor and generator: windows open and close, overlapping faults
// compose, the heal phase mends everything, and generation depends only on its stream.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Random, Simulator } from "../../sim/index.js";
import { type Fault, type FaultTarget, generateFaults, healAll, scheduleFaults } from "../../src/faults.js";

function world(n = 3): { sim: Simulator; target: FaultTarget } {
  const sim = new Simulator({ seed: "faults" });
  const names = Array.from({ length: n }, (_, i) => `m${i + 1}`);
  for (const name of names) sim.addNode(name, () => ({ onMessage() {} }));
  for (let i = 0; i < n; i++) sim.start(i);
  return { sim, target: { sim, members: names, index: (x) => names.indexOf(x) } };
}

const S = 1_000_000;

test("overlapping partitions compose, and each heals at its own end", () => {
  const { sim, target } = world();
  const faults: Fault[] = [
    { kind: "partition", atUs: 1 * S, durationUs: 2 * S, groups: [["m1"], ["m2", "m3"]], oneWay: false },
    { kind: "partition", atUs: 2 * S, durationUs: 2 * S, groups: [["m2"], ["m1", "m3"]], oneWay: false },
  ];
  scheduleFaults(target, faults);
  const blocked = () => [sim.network.isBlocked(0, 2), sim.network.isBlocked(1, 2)];
  sim.runUntil(1.5 * S);
  assert.equal(blocked(), [true, false]);
  sim.runUntil(2.5 * S);
  assert.equal(blocked(), [true, true], "both partitions in force");
  sim.runUntil(3.5 * S);
  assert.equal(blocked(), [false, true], "the first healed, the second stays");
  sim.runUntil(4.5 * S);
  assert.equal(blocked(), [false, false]);
});

test("a crash window restarts the node at its end; pauses nest; disks and clocks come back", () => {
  const { sim, target } = world();
  const restarted: string[] = [];
  scheduleFaults({ ...target, onRestart: (n) => restarted.push(n) }, [
    { kind: "crash", atUs: 1 * S, durationUs: 1 * S, node: "m1", mode: "lose" },
    { kind: "crash", atUs: 1.5 * S, durationUs: 1 * S, node: "m1", mode: "keep" },
    { kind: "pause", atUs: 1 * S, durationUs: 2 * S, node: "m2" },
    { kind: "pause", atUs: 2 * S, durationUs: 2 * S, node: "m2" },
    { kind: "slow-disk", atUs: 1 * S, durationUs: 1 * S, node: "m3", extraUs: 50_000 },
    { kind: "clock-drift", atUs: 1 * S, durationUs: 1 * S, node: "m3", ppm: 200_000 },
  ]);
  sim.runUntil(1.2 * S);
  assert.not.ok(sim.isUp(0));
  assert.ok(sim.isPaused(1));
  assert.is(sim.disk(2).faults.fsyncExtraUs, 50_000);
  assert.is(sim.clock(2).driftPpm, 200_000);
  sim.runUntil(2.2 * S);
  assert.ok(sim.isUp(0), "restarted at the first window's end");
  assert.is(sim.disk(2).faults.fsyncExtraUs, 0);
  assert.is(sim.clock(2).driftPpm, 0);
  sim.runUntil(3.5 * S);
  assert.ok(sim.isPaused(1), "the second pause still holds");
  sim.runUntil(4.5 * S);
  assert.not.ok(sim.isPaused(1));
  assert.equal(restarted, ["m1"], "restarted once: the second window found it up");
});

test("healAll mends whatever a schedule left broken", () => {
  const { sim, target } = world();
  sim.crash(0, "keep");
  sim.pause(1);
  sim.network.partition([[0], [1, 2]]);
  sim.network.configure(1, 2, { lossRate: 0.5 });
  sim.disk(2).faults.fsyncLies = true;
  sim.clock(2).setDriftPpm(0, 1000);
  healAll(target);
  assert.ok(sim.isUp(0));
  assert.not.ok(sim.isPaused(1));
  assert.not.ok(sim.network.isBlocked(1, 0));
  assert.is(sim.network.link(1, 2).config.lossRate, 0);
  assert.not.ok(sim.disk(2).faults.fsyncLies);
  assert.is(sim.clock(2).driftPpm, 0);
});

test("generation depends only on its stream, and keeps within the crash budget", () => {
  const opts = {
    members: ["m1", "m2", "m3", "m4", "m5"],
    startUs: 0,
    endUs: 30 * S,
    meanGapUs: 100_000,
    mix: { crash: 5, partition: 1, pause: 1 },
    crashModes: ["lose" as const],
    maxDown: 2,
  };
  const a = generateFaults(new Random("g"), opts);
  assert.equal(generateFaults(new Random("g"), opts), a);
  assert.not.equal(generateFaults(new Random("h"), opts), a);
  assert.ok(a.length > 100);
  for (const f of a) {
    assert.ok(f.atUs >= 0 && f.atUs + f.durationUs <= 30 * S, "inside the window");
    if (f.kind !== "crash") continue;
    const down = a.filter(
      (g) => g.kind === "crash" && g !== f && g.atUs <= f.atUs && g.atUs + g.durationUs > f.atUs,
    );
    const nodes = new Set(down.map((g) => (g as { node: string }).node).filter((x) => x !== f.node));
    assert.ok(nodes.size <= 2, `at most 2 others down when ${f.node} crashes`);
  }
});

test("the heal resumes a node paused many times over, and nothing breaks again after it", () => {
  const { sim, target } = world();
  const faults: Fault[] = Array.from({ length: 12 }, (_, i) => ({
    kind: "pause" as const,
    atUs: (1 + i * 0.1) * S,
    durationUs: 5 * S,
    node: "m1",
  }));
  faults.push({
    kind: "partition",
    atUs: 1.5 * S,
    durationUs: 10 * S,
    groups: [["m1"], ["m2", "m3"]],
    oneWay: false,
  });
  const heal = scheduleFaults(target, faults);
  sim.runUntil(3 * S);
  assert.ok(sim.isPaused(0));
  heal();
  assert.not.ok(sim.isPaused(0), "every nested pause undone");
  assert.not.ok(sim.network.isBlocked(0, 1));
  sim.runUntil(20 * S);
  assert.not.ok(sim.isPaused(0));
  assert.not.ok(sim.network.isBlocked(0, 1), "windows still open at the heal never strike again");
});

test.run();
