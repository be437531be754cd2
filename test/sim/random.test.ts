import { test } from "uvu";
import * as assert from "uvu/assert";
import { Random } from "../../sim/random.js";

const draws = (r: Random, n: number) => Array.from({ length: n }, () => r.next());

test("the same seed gives the same stream", () => {
  assert.equal(draws(new Random("42"), 100), draws(new Random("42"), 100));
});

test("different seeds give different streams", () => {
  assert.not.equal(draws(new Random("42"), 10), draws(new Random("43"), 10));
});

test("a forked stream does not depend on how much the parent or a sibling drew", () => {
  const a = new Random("7");
  const b = new Random("7");
  draws(a, 1000);
  draws(a.fork("other"), 500);
  assert.equal(draws(a.fork("net"), 50), draws(b.fork("net"), 50));
  assert.not.equal(draws(a.fork("net"), 10), draws(a.fork("disk"), 10));
});

test("state can be saved and restored mid-stream", () => {
  const r = new Random("s");
  draws(r, 37);
  const saved = JSON.parse(JSON.stringify(r.state()));
  const expected = draws(r, 200);
  assert.equal(draws(Random.restore(saved), 200), expected);
});

test("int stays in range and reaches both ends", () => {
  const r = new Random("int");
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const v = r.int(3, 8);
    assert.ok(v >= 3 && v < 8 && Number.isInteger(v));
    seen.add(v);
  }
  assert.equal([...seen].sort(), [3, 4, 5, 6, 7]);
  assert.throws(() => r.int(5, 5));
  const big = r.int(0, 2 ** 40);
  assert.ok(big >= 0 && big < 2 ** 40 && Number.isInteger(big));
});

test("chance follows its probability", () => {
  const r = new Random("p");
  let hits = 0;
  for (let i = 0; i < 20000; i++) if (r.chance(0.25)) hits++;
  assert.ok(Math.abs(hits / 20000 - 0.25) < 0.02, `rate ${hits / 20000}`);
  assert.not.ok(r.chance(0));
  assert.ok(r.chance(1));
});

test("shuffle permutes and pick chooses members", () => {
  const r = new Random("sh");
  const xs = Array.from({ length: 20 }, (_, i) => i);
  const shuffled = r.shuffle([...xs]);
  assert.not.equal(shuffled, xs);
  assert.equal(
    [...shuffled].sort((a, b) => a - b),
    xs,
  );
  for (let i = 0; i < 100; i++) assert.ok(xs.includes(r.pick(xs)));
  assert.throws(() => r.pick([]));
});

test("exponential has the right mean and latency stays bounded", () => {
  const r = new Random("exp");
  let sum = 0;
  for (let i = 0; i < 20000; i++) sum += r.exponential(100);
  assert.ok(Math.abs(sum / 20000 - 100) < 5, `mean ${sum / 20000}`);
  for (let i = 0; i < 2000; i++) {
    const v = r.latencyUs(200, 1000, 3000);
    assert.ok(v >= 200 && v <= 3000 && Number.isInteger(v));
  }
});

test("weighted follows the weights, never picks a zero weight, and needs a choice", () => {
  const r = new Random("weighted");
  const counts = new Map<string, number>();
  for (let i = 0; i < 30000; i++) {
    const c = r.weighted([
      ["a", 1],
      ["never", 0],
      ["b", 3],
    ] as const);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  assert.is(counts.get("never"), undefined);
  const share = (counts.get("b") ?? 0) / 30000;
  assert.ok(Math.abs(share - 0.75) < 0.02, `b drawn ${share}`);
  assert.throws(() => r.weighted([]));
});

test.run();
