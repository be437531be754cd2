import { test } from "uvu";
import * as assert from "uvu/assert";
import { Delivery, type NodeContext, Simulator } from "../../sim/index.js";
import { seedCount, seeds } from "../helpers.js";

interface Got {
  from: number;
  seq: number;
  atUs: number;
}

/** n nodes that record what they receive. */
function cluster(n: number, seed = "net"): { sim: Simulator; got: Got[][]; ctx: NodeContext[] } {
  const sim = new Simulator({ seed });
  const got: Got[][] = [];
  const ctx: NodeContext[] = [];
  for (let i = 0; i < n; i++) {
    got.push([]);
    sim.addNode(`n${i + 1}`, (c) => {
      ctx[i] = c;
      return { onMessage: (from, msg) => got[i]?.push({ from, seq: msg as number, atUs: sim.nowUs }) };
    });
    sim.start(i);
  }
  return { sim, got, ctx };
}

function sendAll(sim: Simulator, ctx: NodeContext[], count: number): void {
  const n = ctx.length;
  for (let k = 0; k < count; k++)
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (a !== b) ctx[a]?.send(b, k, "m");
  sim.runFor(1_000_000);
}

test("messages arrive after the link latency", () => {
  const { sim, got, ctx } = cluster(2);
  ctx[0]?.send(1, 7, "m");
  sim.runFor(1_000_000);
  assert.is(got[1]?.length, 1);
  const at = got[1]?.[0]?.atUs as number;
  assert.ok(at >= 200 && at <= 20_000, `latency ${at}`);
  sim.network.configure(0, 1, { extraDelayUs: 300_000 });
  const t0 = sim.nowUs;
  ctx[0]?.send(1, 8, "m");
  sim.runFor(1_000_000);
  assert.ok((got[1]?.[1]?.atUs as number) - t0 >= 300_200, "extra delay applies");
});

test("a one-way partition blocks one direction only", () => {
  const { sim, got, ctx } = cluster(3);
  sim.network.partition([[0], [1, 2]], true);
  sendAll(sim, ctx, 1);
  assert.equal(
    got[1]?.map((g) => g.from),
    [2],
    "n2 hears nothing from n1",
  );
  assert.equal(
    got[2]?.map((g) => g.from),
    [1],
  );
  assert.equal(got[0]?.map((g) => g.from).sort(), [1, 2], "n1 still hears the others");
});

test("a symmetric partition splits groups; a bridge node sees both sides", () => {
  const { sim, got, ctx } = cluster(5);
  sim.network.partition([
    [0, 1, 2],
    [2, 3, 4],
  ]);
  sendAll(sim, ctx, 1);
  const heard = got.map((g) => g.map((x) => x.from).sort());
  assert.equal(heard[0], [1, 2]);
  assert.equal(heard[2], [0, 1, 3, 4], "the bridge hears everyone");
  assert.equal(heard[4], [2, 3]);
  sim.network.heal();
  for (const g of got) g.length = 0;
  sendAll(sim, ctx, 1);
  assert.ok(
    got.every((g) => g.length === 4),
    "healed",
  );
});

test("loss and duplication happen at the configured rates, across seeds", () => {
  let sent = 0;
  let received = 0;
  let dupes = 0;
  for (const s of seeds(seedCount(20, 200))) {
    const { sim, got, ctx } = cluster(3, `rates-${s}`);
    sim.network.configureAmong([0, 1, 2], { lossRate: 0.1, duplicateRate: 0.05 });
    sendAll(sim, ctx, 100);
    sent += 600;
    for (const g of got) {
      received += g.length;
      const keys = new Set<string>();
      for (const x of g) {
        const k = `${x.from}:${x.seq}`;
        if (keys.has(k)) dupes++;
        keys.add(k);
      }
    }
  }
  const lossRate = 1 - (received - dupes) / sent;
  const dupRate = dupes / (sent * 0.9);
  assert.ok(Math.abs(lossRate - 0.1) < 0.02, `loss ${lossRate}`);
  assert.ok(Math.abs(dupRate - 0.05) < 0.015, `dup ${dupRate}`);
});

test("latency variance reorders messages on a link, and FIFO is not guaranteed", () => {
  let reordered = 0;
  for (const s of seeds(10)) {
    const { sim, got, ctx } = cluster(2, `order-${s}`);
    for (let k = 0; k < 50; k++) ctx[0]?.send(1, k, "m");
    sim.runFor(1_000_000);
    const order = got[1]?.map((g) => g.seq) ?? [];
    assert.is(order.length, 50);
    for (let i = 1; i < order.length; i++) if ((order[i] as number) < (order[i - 1] as number)) reordered++;
  }
  assert.ok(reordered > 10, `reorderings ${reordered}`);
});

test("a stream (Delivery.Stream) keeps its order and is never duplicated, under the same faults", () => {
  for (const s of seeds(10)) {
    const { sim, got, ctx } = cluster(2, `stream-${s}`);
    sim.network.configureAmong([0, 1], { duplicateRate: 0.3, lossRate: 0.05 });
    for (let k = 0; k < 100; k++) ctx[0]?.send(1, k, "m", 0, 0, Delivery.Stream);
    sim.runFor(1_000_000);
    const order = got[1]?.map((g) => g.seq) ?? [];
    assert.ok(order.length > 80 && order.length <= 100, `${order.length} delivered`);
    for (let i = 1; i < order.length; i++)
      assert.ok((order[i] as number) > (order[i - 1] as number), `in order at ${i}`);
  }
});

test("a clogged link holds messages until it unclogs", () => {
  const { sim, got, ctx } = cluster(2);
  sim.network.clog(0, 1);
  ctx[0]?.send(1, 1, "m");
  ctx[1]?.send(0, 2, "m");
  sim.runFor(1_000_000);
  assert.is(got[1]?.length, 0);
  assert.is(got[0]?.length, 1, "the other direction flows");
  sim.network.unclog(0, 1);
  sim.runFor(1_000_000);
  assert.equal(
    got[1]?.map((g) => g.seq),
    [1],
  );
  assert.ok((got[1]?.[0]?.atUs as number) > 1_000_000);
});

test("messages to a crashed node are lost; to a paused node they wait", () => {
  const { sim, got, ctx } = cluster(3);
  sim.crash(1, "keep");
  sim.pause(2);
  ctx[0]?.send(1, 1, "m");
  ctx[0]?.send(2, 2, "m");
  sim.runFor(1_000_000);
  sim.restart(1);
  sim.runFor(1_000_000);
  assert.equal(got[1], [], "lost: the node was down");
  assert.equal(got[2], [], "waiting: the node is paused");
  sim.resume(2);
  sim.runFor(10);
  assert.equal(
    got[2]?.map((g) => g.seq),
    [2],
  );
});

test("a message in flight to a node that restarts meanwhile is lost", () => {
  const { sim, got, ctx } = cluster(2);
  sim.network.configure(0, 1, { extraDelayUs: 100_000 });
  ctx[0]?.send(1, 1, "m");
  sim.runFor(10_000);
  sim.crash(1, "keep");
  sim.restart(1);
  sim.runFor(1_000_000);
  assert.equal(got[1], []);
});

test.run();
