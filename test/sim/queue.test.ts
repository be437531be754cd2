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

test.run();

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
