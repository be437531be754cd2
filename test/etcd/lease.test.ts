// Leases (etcd's server/lease and etcdserver/v3_server.go): grant, keep-alive through any
// member, expiry by the leader's lessor recorded as a server pseudo-client operation,
// revoke, TTLs restarted by a leader change, and revocation only after confirming
// leadership (#15247).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type LeaseGrantResponse, type RangeResponse, SERVER_CLIENT } from "../../models/client/history.js";
import { Errors } from "../../models/etcd/errors.js";
import { call, cluster, get, leaderSlot, put, rev, waitFor } from "./harness.js";

test("grant: the TTL is at least 1.5 election timeouts; keys attach; revoke deletes them in one revision", () => {
  const t = cluster(3);
  const id = 77;
  const g = call(t, { type: "lease-grant", id, ttlS: 1 }) as LeaseGrantResponse;
  assert.is(g.ttlS, 2, "1 s election timeout: minimum TTL ceil(1.5 s)");
  call(t, put("a", "1", { lease: id }));
  call(t, put("b", "1", { lease: id }));
  const before = rev(call(t, get("a")));
  assert.equal(call(t, { type: "lease-grant", id, ttlS: 10 }), Errors.leaseExists);
  assert.is(rev(call(t, { type: "lease-revoke", id })), before + 1, "both keys go in one revision");
  assert.is((call(t, get("a", { rangeEnd: "c" })) as RangeResponse).count, 0);
  assert.equal(call(t, { type: "lease-revoke", id }), Errors.leaseNotFound);
});

test("keep-alives through a follower reach the leader's lessor; the lease lives while they come", () => {
  const t = cluster(3);
  const follower = t.c.nodes[(leaderSlot(t.c) + 1) % 3] as number;
  const client = t.c.addClient({ endpoints: [follower] });
  let granted = 0;
  const id = client.leaseGrant(2, (r) => {
    granted = r.type === "lease-grant" ? r.ttlS : -1;
  });
  waitFor(t.sim, () => granted !== 0, 5_000_000, "the grant");
  assert.is(granted, 2);
  call(t, put("held", "1", { lease: id }), client);
  client.keepAlive(id, 2);
  t.sim.runFor(10_000_000);
  assert.is((call(t, get("held"), client) as RangeResponse).count, 1, "kept alive for 5 TTLs");
  const renewals = t.c.recorder.history().keepAlives ?? [];
  assert.ok(renewals.length >= 10, `renewed every TTL/3 (${renewals.length})`);
  assert.ok(renewals.every((k) => k.ttlS === 2 && k.member === t.c.names[(leaderSlot(t.c) + 1) % 3]));
});

test("expiry: the leader revokes an expired lease, and the history shows a server operation", () => {
  const t = cluster(3);
  const id = 5;
  call(t, { type: "lease-grant", id, ttlS: 2 });
  call(t, put("x", "1", { lease: id }));
  const grantedUs = t.sim.nowUs;
  waitFor(t.sim, () => (t.c.leader()?.lessor.get(id) ?? null) === null, 10_000_000, "the expiry");
  const expiredAfterUs = t.sim.nowUs - grantedUs;
  assert.ok(expiredAfterUs >= 2_000_000 && expiredAfterUs < 4_000_000, `expired after ${expiredAfterUs} µs`);
  assert.is((call(t, get("x")) as RangeResponse).count, 0);
  const server = t.c.recorder.history().operations.filter((o) => o.client === SERVER_CLIENT);
  assert.is(server.length, 1);
  const op = server[0];
  assert.equal(op?.request, { type: "lease-revoke", id });
  assert.ok(op?.returnUs !== null && (op?.returnUs ?? 0) >= (op?.callUs ?? 0));
  assert.is(op?.response?.type, "lease-revoke");
});

test("a leader change restarts every TTL (etcd #9888): the lease outlives its TTL from the grant", () => {
  const t = cluster(3);
  const id = 9;
  call(t, { type: "lease-grant", id, ttlS: 4 });
  call(t, put("x", "1", { lease: id }));
  t.sim.runFor(3_000_000);
  const old = leaderSlot(t.c);
  t.sim.crash(t.c.nodes[old] as number, "keep");
  waitFor(t.sim, () => leaderSlot(t.c) >= 0, 10_000_000, "a new leader");
  const electedUs = t.sim.nowUs;
  t.sim.runFor(2_000_000); // 5+ s after the grant: past the TTL, within the restarted one
  assert.ok(t.c.leader()?.lessor.get(id), "still alive after a leader change");
  waitFor(t.sim, () => !t.c.leader()?.lessor.get(id), 10_000_000, "the expiry");
  assert.ok(t.sim.nowUs - electedUs >= 4_000_000, "a whole TTL after the new leader took over");
});

test("with lease checkpoints, a new leader keeps the remaining TTL instead of restarting it", () => {
  const t = cluster(3, { server: { leaseCheckpointIntervalUs: 1_000_000 } });
  const id = 11;
  call(t, { type: "lease-grant", id, ttlS: 10 });
  t.sim.runFor(6_000_000);
  t.sim.crash(t.c.nodes[leaderSlot(t.c)] as number, "keep");
  waitFor(t.sim, () => leaderSlot(t.c) >= 0, 10_000_000, "a new leader");
  const electedUs = t.sim.nowUs;
  waitFor(t.sim, () => !t.c.leader()?.lessor.get(id), 20_000_000, "the expiry");
  const livedUs = t.sim.nowUs - electedUs;
  assert.ok(livedUs < 8_000_000, `expired ${livedUs} µs after the change: the checkpointed ~4 s, not 10 s`);
});

/**
 * etcd #15247: a leader whose raft loop is stuck on a slow fsync still has a primary
 * lessor. Keep-alives go through the new leader; the old one sees the lease expire.
 */
function stalledOldLeader(bugs: string[]): number {
  const t = cluster(3, { bugs });
  const old = leaderSlot(t.c);
  const followers = t.c.nodes.filter((_, i) => i !== old);
  const client = t.c.addClient({ endpoints: followers });
  let id = 0;
  id = client.leaseGrant(3, (r) => {
    if (r.type === "lease-grant") client.keepAlive(id, 3);
  });
  waitFor(t.sim, () => (t.c.leader()?.lessor.get(id) ?? null) !== null, 5_000_000, "the grant");
  call(t, put("kept", "1", { lease: id }), client);
  t.sim.disk(t.c.nodes[old] as number).faults.fsyncExtraUs = 8_000_000;
  client.put("trigger", "1"); // the leader's next WAL fsync takes 8 s: its raft loop waits
  t.sim.runFor(6_000_000);
  t.sim.disk(t.c.nodes[old] as number).faults.fsyncExtraUs = 0;
  t.sim.runFor(20_000_000); // the fsyncs queued behind the slow ones drain
  assert.is.not(leaderSlot(t.c), old, "a new leader took over");
  return (call(t, get("kept"), client) as RangeResponse).count;
}

test("a stalled old leader does not revoke leases kept alive through the new one", () => {
  assert.is(stalledOldLeader([]), 1);
});

test("planted old-leader-revokes-leases: the kept-alive key vanishes", () => {
  assert.is(stalledOldLeader(["old-leader-revokes-leases"]), 0);
});

test.run();
