import { test } from "uvu";
import * as assert from "uvu/assert";
import { EventQueue } from "../../sim/queue.js";
import { Random } from "../../sim/random.js";

test("pops in time order, and equal times in insertion order", () => {
  const q = new EventQueue<string>(2);
  q.push(5, "c");
  q.push(1, "a");
  q.push(5, "d");
  q.push(3, "b");
  q.push(5, "e");
  const out: string[] = [];
  for (let s = q.pop(); s !== undefined; s = q.pop()) out.push(s);
  assert.equal(out, ["a", "b", "c", "d", "e"]);
  assert.is(q.size, 0);
  assert.is(q.peekTimeUs(), Number.POSITIVE_INFINITY);
});

test("agrees with a sort on many random items with many ties", () => {
  const r = new Random("heap");
  const q = new EventQueue<number>();
  const items: { t: number; i: number }[] = [];
  for (let i = 0; i < 20000; i++) {
    const t = r.int(0, 500);
    items.push({ t, i });
    q.push(t, i);
    if (i % 3 === 0) {
      // interleave pops with pushes, as a running simulation does
      const popped = q.pop() as number;
      const k = items.findIndex((x) => x.i === popped);
      const min = items.reduce((m, x) => (x.t < m.t || (x.t === m.t && x.i < m.i) ? x : m));
      assert.is(popped, min.i);
      items.splice(k, 1);
    }
  }
  items.sort((a, b) => a.t - b.t || a.i - b.i);
  for (const x of items) assert.is(q.pop(), x.i);
});

test("compact drops refused items and keeps the order of the rest, ties included", () => {
  const r = new Random("compact");
  const q = new EventQueue<number>(4);
  const kept: { t: number; i: number }[] = [];
  for (let i = 0; i < 5000; i++) {
    const t = r.int(0, 300);
    q.push(t, i);
    if (i % 3 !== 0) kept.push({ t, i });
    if (i % 997 === 996) q.compact((x) => x % 3 !== 0); // mid-way, as the simulator does
  }
  q.compact((x) => x % 3 !== 0);
  assert.is(q.size, kept.length);
  kept.sort((a, b) => a.t - b.t || a.i - b.i);
  const out: number[] = [];
  for (let x = q.pop(); x !== undefined; x = q.pop()) out.push(x);
  assert.equal(
    out,
    kept.map((k) => k.i),
  );
});

test("slots are reused across pops and compactions without mixing items up", () => {
  // the heap moves slot numbers; a freed slot must never hand back a stale item
  const r = new Random("slots");
  const q = new EventQueue<{ id: number }>(2);
  const live = new Map<number, number>(); // id -> time
  let next = 0;
  for (let round = 0; round < 3000; round++) {
    const pushes = r.int(0, 4);
    for (let k = 0; k < pushes; k++) {
      const t = r.int(0, 1000);
      live.set(next, t);
      q.push(t, { id: next++ });
    }
    if (r.chance(0.5) && live.size > 0) {
      const item = q.pop() as { id: number };
      const t = live.get(item.id) as number;
      for (const [id, u] of live) assert.ok(u > t || (u === t && id >= item.id), "popped early");
      live.delete(item.id);
    }
    if (round % 500 === 499) {
      q.compact((x) => x.id % 5 !== 0);
      for (const id of [...live.keys()]) if (id % 5 === 0) live.delete(id);
    }
    assert.is(q.size, live.size);
  }
  const order = [...live].sort((a, b) => a[1] - b[1] || a[0] - b[0]).map(([id]) => id);
  const out: number[] = [];
  for (let x = q.pop(); x !== undefined; x = q.pop()) out.push(x.id);
  assert.equal(out, order);
});

test.run();
