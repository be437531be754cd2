import { test } from "uvu";
import * as assert from "uvu/assert";
import { firstDivergence, type NodeContext, type NodeProgram, Simulator } from "../../sim/index.js";

/** A node that logs what happens to it into `log`, and ticks every `tickUs` of its own time. */
function ticker(log: string[], tickUs: number): (ctx: NodeContext) => NodeProgram {
  return (ctx) => {
    log.push(`boot ${ctx.name} inc ${ctx.incarnation}`);
    const tick = () => {
      log.push(`tick ${ctx.name} mono ${ctx.monoUs()}`);
      ctx.setTimer(tickUs, "tick", tick);
    };
    ctx.setTimer(tickUs, "tick", tick);
    return { onMessage: (from, msg) => log.push(`msg ${ctx.name} from ${from} ${String(msg)}`) };
  };
}

test("a paused node handles nothing until resumed, then catches up in order", () => {
  const log: string[] = [];
  const sim = new Simulator({ seed: "pause" });
  sim.addNode("a", ticker(log, 100_000), { bootMonoUs: 0 });
  sim.start(0);
  sim.runUntil(250_000);
  assert.is(log.filter((l) => l.startsWith("tick")).length, 2);
  sim.pause(0);
  sim.network.send(0, 0, "hello", "m", 0, 0);
  sim.runUntil(1_000_000);
  assert.is(log.filter((l) => l.startsWith("tick")).length, 2, "no ticks while paused");
  assert.ok(sim.isPaused(0));
  sim.resume(0);
  sim.runUntil(1_000_000);
  // The message arrived (at ~0.25 s) before the tick was due (0.3 s): that order is kept,
  // and both run at resume time.
  assert.equal(log.slice(3, 5), ["msg a from 0 hello", "tick a mono 1000000"]);
});

test("a crash drops timers and volatile state; restart boots again from disk", () => {
  const log: string[] = [];
  const sim = new Simulator({ seed: "crash" });
  sim.addNode("a", (ctx) => {
    const boots = ctx.disk.exists("boots") ? ctx.disk.size("boots") : 0;
    log.push(`boots on disk ${boots}`);
    ctx.disk.append("boots", new Uint8Array([1]));
    ctx.disk.fsync("boots", () => {});
    ctx.setTimer(50_000, "late", () => log.push("timer fired"));
    return { onMessage() {} };
  });
  sim.start(0);
  sim.runUntil(10_000);
  sim.crash(0, "lose");
  assert.not.ok(sim.isUp(0));
  sim.runUntil(200_000);
  assert.not.ok(log.includes("timer fired"), "the old process's timer vanished");
  sim.restart(0);
  sim.runUntil(400_000);
  assert.equal(log, ["boots on disk 0", "boots on disk 1", "timer fired"]);
  assert.is(sim.incarnation(0), 3);
  assert.ok(sim.stats.stale >= 1);
});

test("a drifting clock shows on the node and in its timers", () => {
  const log: string[] = [];
  const sim = new Simulator({ seed: "drift" });
  sim.addNode("fast", ticker(log, 1_000_000), { bootMonoUs: 0 });
  sim.clock(0).setDriftPpm(0, 250_000); // runs 25% fast
  sim.start(0);
  const fired: number[] = [];
  sim.runUntilTrue(() => {
    if (log.length > fired.length + 1) fired.push(sim.nowUs);
    return fired.length >= 2;
  }, 10_000_000);
  assert.equal(fired, [800_000, 1_600_000], "a 1 s timer fires after 0.8 s of true time");
  assert.is(log[1], "tick fast mono 1000000");
});

test("a failpoint armed to crash kills the node where it is reached; a stall returns its length", () => {
  const sim = new Simulator({ seed: "fp" });
  const reached: string[] = [];
  sim.addNode("a", (ctx) => ({
    onMessage() {
      reached.push("before");
      const stall = ctx.failpoint("beforeCommit");
      reached.push(`after stall=${stall}`);
    },
  }));
  sim.start(0);
  sim.armFailpoint(0, "beforeCommit", { kind: "stall", stallUs: 1000 });
  sim.network.send(0, 0, 1, "m", 0, 0);
  sim.runFor(100_000);
  sim.armFailpoint(0, "beforeCommit", { kind: "crash", mode: "lose" });
  sim.network.send(0, 0, 2, "m", 0, 0);
  sim.runFor(100_000);
  assert.equal(reached, ["before", "after stall=1000", "before"]);
  assert.not.ok(sim.isUp(0), "the crash failpoint killed it");
  assert.is(sim.failpointHits.get("a/beforeCommit"), 2);
  sim.restart(0);
  sim.network.send(0, 0, 3, "m", 0, 0);
  sim.runFor(100_000);
  assert.is(reached.at(-1), "after stall=0", "one-shot: disarmed after firing");
});

test("stall pauses a node for a while; onNode work is dropped if the node crashes", () => {
  const log: string[] = [];
  const sim = new Simulator({ seed: "stall" });
  sim.addNode("a", ticker(log, 100_000), { bootMonoUs: 0 });
  sim.start(0);
  sim.stall(0, 500_000);
  sim.runUntil(450_000);
  assert.is(log.length, 1, "only the boot line");
  sim.runUntil(600_000);
  assert.ok(log.length > 1, "resumed after the stall");
  let ran = false;
  sim.onNode(0, 10_000, "work", () => {
    ran = true;
  });
  sim.crash(0, "keep");
  sim.runFor(100_000);
  assert.not.ok(ran);
});

function pingPong(seed: string, capture = false): Simulator {
  const sim = new Simulator({ seed, captureTrace: capture });
  for (let i = 0; i < 3; i++) {
    sim.addNode(`n${i}`, (ctx) => ({
      onMessage(_from, msg) {
        const hops = msg as number;
        if (hops < 2000) ctx.send(ctx.random.int(0, 3), hops + 1, "ping", hops);
      },
    }));
    sim.start(i);
  }
  sim.network.send(0, 1, 0, "ping", 0, 0);
  sim.network.send(1, 2, 0, "ping", 0, 0);
  sim.runFor(10_000_000);
  return sim;
}

test("the same seed gives the same trace hash; different seeds differ", () => {
  const a = pingPong("same");
  const b = pingPong("same");
  assert.ok(a.stats.events > 3000);
  assert.is(a.trace.hash, b.trace.hash);
  assert.is(a.stats.events, b.stats.events);
  assert.is.not(pingPong("other").trace.hash, a.trace.hash);
});

test("firstDivergence names the first event where two runs differ", () => {
  const a = pingPong("div", true);
  const b = new Simulator({ seed: "div", captureTrace: true });
  for (let i = 0; i < 3; i++) {
    b.addNode(`n${i}`, (ctx) => ({
      onMessage(_from, msg) {
        const hops = msg as number;
        // identical until hop 100, then one extra random draw changes everything after
        if (hops === 100) ctx.random.next();
        if (hops < 2000) ctx.send(ctx.random.int(0, 3), hops + 1, "ping", hops);
      },
    }));
    b.start(i);
  }
  b.network.send(0, 1, 0, "ping", 0, 0);
  b.network.send(1, 2, 0, "ping", 0, 0);
  b.runFor(10_000_000);
  const ta = a.trace.captured ?? [];
  const tb = b.trace.captured ?? [];
  assert.is(firstDivergence(ta, ta), null);
  const d = firstDivergence(ta, tb);
  assert.ok(d, "they diverge");
  const i = d?.index as number;
  assert.equal(ta.slice(0, i), tb.slice(0, i), "identical before");
  assert.ok(
    ta.slice(0, i).some((r) => r.digest === 100),
    "the divergence comes after hop 100",
  );
  assert.ok(i < ta.length && i < 400, `early: at ${i}`);
});

test.run();
