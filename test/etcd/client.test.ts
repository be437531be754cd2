// The client model: unknown outcomes in the history, and the concurrency recipes
// (clientv3/concurrency): Mutex and Election over a session's lease, with #11456's
// recheck of the session key (and the planted bug that skips it).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Done, Mutex, Session } from "../../models/client/concurrency.js";
import type { LockRecord, RangeResponse } from "../../models/client/history.js";
import { Errors } from "../../models/etcd/errors.js";
import { call, cluster, get, leaderSlot, put, type TestCluster, waitFor } from "./harness.js";

test("a write whose member crashes under it has an unknown outcome; a rejected one does not", () => {
  const t = cluster(3, { seed: "client-unknown" });
  const f = (leaderSlot(t.c) + 1) % 3;
  const pinned = t.c.addClient({ endpoints: [t.c.nodes[f] as number] });
  let answered = false;
  pinned.put("x", "1", {}, () => {
    answered = true;
  });
  t.sim.crash(t.c.nodes[f] as number, "keep"); // before the request arrives
  waitFor(t.sim, () => answered, 10_000_000, "the failure");
  const viaLeader = t.c.addClient({ endpoints: [t.c.nodes[leaderSlot(t.c)] as number] });
  const rejected = call(t, put("y", "1", { lease: 424242 }), viaLeader);
  assert.equal(rejected, Errors.leaseNotFound);
  const ops = t.c.recorder.history().operations;
  const lost = ops.find((o) => o.request.type === "put" && o.request.key === "x");
  assert.is(lost?.returnUs, null, "unknown: it may or may not have happened");
  assert.is(lost?.response?.type, "error");
  const known = ops.find((o) => o.request.type === "put" && o.request.key === "y");
  assert.ok(known?.returnUs !== null, "a definite error returned: it took no effect");
});

/** Opens a session on `client` and waits for it. */
function session(t: TestCluster, client = t.client, ttlS = 5): Session {
  const s = new Session(client, ttlS);
  let ok: boolean | null = null;
  let why = "";
  s.open((r, error) => {
    ok = r;
    why = error ?? "";
  });
  waitFor(t.sim, () => ok !== null, 10_000_000, "a session");
  assert.ok(ok, `session opened ${why}`);
  return s;
}

function lock(m: Mutex, value = ""): { done: boolean; ok: boolean; error?: string } {
  const out: { done: boolean; ok: boolean; error?: string } = { done: false, ok: false };
  const cb: Done = (ok, error) => {
    out.done = true;
    out.ok = ok;
    if (error) out.error = error;
  };
  m.lock(cb, value);
  return out;
}

function locks(t: TestCluster): LockRecord[] {
  return [...(t.c.recorder.history().locks ?? [])];
}

test("Mutex: the second locker waits until the first unlocks", () => {
  const t = cluster(3, { seed: "mutex" });
  const b = t.c.addClient();
  const ma = new Mutex(session(t), "/lock");
  const mb = new Mutex(session(t, b), "/lock");
  const la = lock(ma);
  waitFor(t.sim, () => la.done, 5_000_000, "a's lock");
  const lb = lock(mb);
  t.sim.runFor(2_000_000);
  assert.ok(la.ok);
  assert.not.ok(lb.done, "b waits while a holds it");
  let unlocked = false;
  ma.unlock(() => {
    unlocked = true;
  });
  waitFor(t.sim, () => unlocked && lb.done, 5_000_000, "b's lock");
  assert.ok(lb.ok);
  const [ra, rb] = locks(t);
  assert.ok(ra && rb && ra.client !== rb.client);
  assert.ok((rb?.acquiredRevision ?? 0) > (ra?.acquiredRevision ?? 0));
  assert.ok(
    (ra?.releasedUs ?? Number.POSITIVE_INFINITY) <= (rb?.acquiredUs ?? 0),
    "a released before b acquired",
  );
  // at b's revision, a's key is gone and b's is the oldest
  const at = call(
    t,
    get("/lock/", { rangeEnd: "/lock0", revision: rb?.acquiredRevision as number }),
  ) as RangeResponse;
  assert.equal(
    at.kvs.map((kv) => kv.key),
    [rb?.key],
  );
});

/**
 * etcd #11456: b waits for a; b's process pauses past its lease TTL; meanwhile a unlocks,
 * b's key expires and c takes the lock. When b wakes, does it think it holds the lock?
 */
function pausedWaiter(bugs: string[]): {
  b: { done: boolean; ok: boolean; error?: string };
  records: LockRecord[];
  t: TestCluster;
} {
  const t = cluster(3, { seed: "mutex-pause", bugs });
  const skip = t.c.bugs.has("lock-without-lease-recheck");
  const bClient = t.c.addClient();
  const cClient = t.c.addClient();
  const ma = new Mutex(session(t), "/lock", "lock", skip);
  const mb = new Mutex(session(t, bClient, 2), "/lock", "lock", skip);
  const mc = new Mutex(session(t, cClient), "/lock", "lock", skip);
  const la = lock(ma);
  waitFor(t.sim, () => la.done, 5_000_000, "a's lock");
  const lb = lock(mb);
  t.sim.runFor(500_000);
  t.sim.pause(bClient.ctx.id);
  ma.unlock(() => {});
  t.sim.runFor(6_000_000); // b's 2 s lease expires
  const lc = lock(mc);
  waitFor(t.sim, () => lc.done, 5_000_000, "c's lock");
  assert.ok(lc.ok, "c holds the lock");
  t.sim.resume(bClient.ctx.id);
  waitFor(t.sim, () => lb.done, 10_000_000, "b's answer");
  return { b: lb, records: locks(t), t };
}

test("Mutex rechecks its session key after waiting: a paused waiter whose lease expired does not hold the lock", () => {
  const { b, records } = pausedWaiter([]);
  assert.not.ok(b.ok);
  assert.match(b.error ?? "", /session expired/);
  assert.is(records.length, 2, "a and c only");
});

test("planted lock-without-lease-recheck: the paused waiter believes it holds the lock while its key is gone", () => {
  const { b, records, t } = pausedWaiter(["lock-without-lease-recheck"]);
  assert.ok(b.ok);
  const rb = records.at(-1) as LockRecord;
  const at = call(t, get(rb.key, { revision: rb.acquiredRevision })) as RangeResponse;
  assert.is(at.count, 0, "its key did not exist at the revision it acquired at");
});

test("Election: campaign, proclaim while leading, resign; the next candidate takes over", () => {
  const t = cluster(3, { seed: "election" });
  const other = t.c.addClient();
  const e1 = new Mutex(session(t), "/elect", "election");
  const e2 = new Mutex(session(t, other), "/elect", "election");
  const c1 = lock(e1, "one");
  waitFor(t.sim, () => c1.done, 5_000_000, "the first campaign");
  const c2 = lock(e2, "two");
  let proclaimed: boolean | null = null;
  e1.proclaim("one-again", (ok) => {
    proclaimed = ok;
  });
  waitFor(t.sim, () => proclaimed !== null, 5_000_000, "proclaim");
  assert.ok(proclaimed);
  const leader = [...(call(t, get("/elect/", { rangeEnd: "/elect0" })) as RangeResponse).kvs].sort(
    (a, b) => a.createRevision - b.createRevision,
  )[0];
  assert.is(leader?.value, "one-again");
  e1.unlock(() => {});
  waitFor(t.sim, () => c2.done, 5_000_000, "the second campaign");
  assert.ok(c2.ok);
  assert.equal(
    locks(t).map((r) => r.kind),
    ["election", "election"],
  );
});

test.run();
