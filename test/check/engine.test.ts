// The generic search on small register histories: witnesses, failures, unknown
// outcomes, the step budget, partitions and determinism.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type CheckOp, checkLinearizability } from "../../src/check/linearizability.js";
import { type RegisterInput, type RegisterOutput, registerModel } from "../../src/check/register.js";

type Op = CheckOp<RegisterInput, RegisterOutput>;
const write = (client: number, call: number, ret: number, value: number): Op => ({
  client,
  callUs: call,
  returnUs: ret,
  input: { f: "write", value },
  output: { ok: true },
  optional: false,
});
const read = (client: number, call: number, ret: number, value: number | null): Op => ({
  client,
  callUs: call,
  returnUs: ret,
  input: { f: "read" },
  output: { ok: true, value },
  optional: false,
});
const lostWrite = (client: number, call: number, value: number): Op => ({
  client,
  callUs: call,
  returnUs: Number.POSITIVE_INFINITY,
  input: { f: "write", value },
  output: { ok: false },
  optional: true,
});

test("concurrent operations may be ordered either way; the witness is a valid order", () => {
  const ops = [write(1, 0, 10, 1), read(2, 5, 15, 1), read(3, 12, 20, 1)];
  const r = checkLinearizability(registerModel, ops);
  assert.is(r.verdict, "linearizable");
  assert.equal(r.witness, [[0, 1, 2]]);
});

test("a read of an overwritten value after the overwrite returned is not linearizable", () => {
  const ops = [write(1, 0, 10, 1), write(1, 11, 20, 2), read(2, 21, 30, 1)];
  const r = checkLinearizability(registerModel, ops);
  assert.is(r.verdict, "not-linearizable");
  assert.equal(r.failure?.prefix, [0, 1]);
  assert.equal(r.failure?.stuck, [2]);
  assert.is(r.failure?.state, 2);
});

test("an operation with an unknown outcome may have happened, late, or not at all", () => {
  // the unknown write of 7 explains the read of 7 long after its call
  assert.is(
    checkLinearizability(registerModel, [lostWrite(1, 0, 7), write(2, 10, 20, 1), read(3, 30, 40, 7)])
      .verdict,
    "linearizable",
  );
  // ...or it never happened
  assert.is(
    checkLinearizability(registerModel, [lostWrite(1, 0, 7), read(3, 30, 40, null)]).verdict,
    "linearizable",
  );
  // ...but it cannot explain a value it did not write
  assert.is(
    checkLinearizability(registerModel, [lostWrite(1, 0, 7), read(3, 30, 40, 8)]).verdict,
    "not-linearizable",
  );
  // ...nor take effect before it was called
  assert.is(
    checkLinearizability(registerModel, [read(3, 0, 5, 7), lostWrite(1, 10, 7)]).verdict,
    "not-linearizable",
  );
});

test("a spent budget gives unknown, never a pass; the same history spends the same steps", () => {
  const ops: Op[] = [];
  for (let i = 0; i < 12; i++) ops.push(lostWrite(i, i, i));
  for (let i = 0; i < 12; i++) ops.push(read(20 + i, 100 + i, 200, 99));
  const a = checkLinearizability(registerModel, ops, { budgetSteps: 50 });
  assert.is(a.verdict, "unknown");
  const b = checkLinearizability(registerModel, ops, { budgetSteps: 1_000_000 });
  const c = checkLinearizability(registerModel, ops, { budgetSteps: 1_000_000 });
  assert.is(b.verdict, "not-linearizable");
  assert.is(b.steps, c.steps, "deterministic");
});

test("partitions are checked independently and one failing partition fails the whole", () => {
  const model = {
    ...registerModel,
    partition: (ops: readonly Op[]) => [
      ops.map((_, i) => i).filter((i) => i % 2 === 0),
      ops.map((_, i) => i).filter((i) => i % 2 === 1),
    ],
  };
  const good = [write(1, 0, 10, 1), write(2, 0, 10, 5), read(1, 20, 30, 1), read(2, 20, 30, 5)];
  assert.is(checkLinearizability(model, good).verdict, "linearizable");
  const bad = [write(1, 0, 10, 1), write(2, 0, 10, 5), read(1, 20, 30, 1), read(2, 20, 30, 6)];
  const r = checkLinearizability(model, bad);
  assert.is(r.verdict, "not-linearizable");
  assert.equal(r.failure?.partition, [1, 3]);
});

test("a cas that failed saw another value; one that succeeded saw its own", () => {
  const cas = (client: number, call: number, ret: number, from: number, to: number, ok: boolean): Op => ({
    client,
    callUs: call,
    returnUs: ret,
    input: { f: "cas", from, to },
    output: { ok },
    optional: false,
  });
  assert.is(
    checkLinearizability(registerModel, [write(1, 0, 5, 1), cas(2, 10, 20, 1, 2, true), read(3, 30, 40, 2)])
      .verdict,
    "linearizable",
  );
  assert.is(
    checkLinearizability(registerModel, [write(1, 0, 5, 1), cas(2, 10, 20, 1, 2, false)]).verdict,
    "not-linearizable",
  );
  assert.is(
    checkLinearizability(registerModel, [write(1, 0, 5, 1), cas(2, 10, 20, 3, 2, false), read(3, 30, 40, 1)])
      .verdict,
    "linearizable",
  );
});

/** A write whose answer never came, settled as applied: required, with no return. */
const settledWrite = (client: number, call: number, value: number): Op => ({
  client,
  callUs: call,
  returnUs: Number.POSITIVE_INFINITY,
  input: { f: "write", value },
  output: { ok: true },
  optional: false,
});

test("entries order alike whatever the times: integers, fractions, negatives and huge values", () => {
  // The search orders call and return entries by packing integer times into numbers, and
  // falls back to a comparison sort for any other time: both must give the same order,
  // calls before returns at equal times (a read called as a write returns may see it).
  const histories: Op[][] = [
    [write(1, 0, 10, 1), read(2, 10, 20, 1), write(3, 10, 10, 2), read(4, 20, 30, 2)],
    [write(1, 0, 10, 1), read(2, 10, 20, null), read(3, 5, 10, 1)],
    [write(1, 0, 10, 1), write(1, 11, 20, 2), read(2, 21, 30, 1)],
    [lostWrite(1, 0, 7), write(2, 10, 20, 1), read(3, 20, 40, 7), read(4, 40, 50, 7)],
    // returns that never came order after every time, and among themselves by operation
    [
      settledWrite(1, 0, 7),
      write(2, 5, 15, 1),
      read(3, 10, 20, 7),
      read(4, 30, 40, 7),
      settledWrite(5, 12, 9),
    ],
    [
      settledWrite(1, 0, 7),
      settledWrite(2, 1, 8),
      read(3, 50, 60, 8),
      read(4, 70, 80, 7),
      read(5, 90, 99, 8),
    ],
  ];
  const scaled = (ops: Op[], f: (t: number) => number): Op[] =>
    ops.map((o) => ({ ...o, callUs: f(o.callUs), returnUs: f(o.returnUs) }));
  const verdicts = [];
  for (const h of histories) {
    const base = checkLinearizability(registerModel, h);
    verdicts.push(base.verdict);
    for (const f of [(t: number) => t / 1000, (t: number) => t - 1e6, (t: number) => t * 1e12]) {
      const r = checkLinearizability(registerModel, scaled(h, f));
      assert.is(r.verdict, base.verdict);
      assert.equal(r.witness, base.witness);
      assert.equal(r.failure?.prefix, base.failure?.prefix);
      assert.equal(r.failure?.stuck, base.failure?.stuck);
    }
  }
  // both verdicts are covered; the second history passes only because a call at the
  // instant of a return counts as before it
  assert.equal(verdicts, [
    "linearizable",
    "linearizable",
    "not-linearizable",
    "linearizable",
    "linearizable",
    "not-linearizable",
  ]);
});

test.run();
