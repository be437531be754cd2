// Membership through raft (etcdserver/api/membership): remove, add, and member replace as
// etcd's robustness tests do it (remove, wipe, add back under a new id, rejoin). Changes
// are validated when they apply, as etcd's ValidateConfigurationChange does: a refused
// change reaches raft as a no-op and its caller gets etcd's error. Without this, a
// promotion of a learner another replacement had removed made it a voter again, and the
// cluster lost its quorum for good.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { ErrorResponse } from "../../models/client/history.js";
import { EtcdCluster } from "../../models/etcd/cluster.js";
import { Errors } from "../../models/etcd/errors.js";
import type { MaintenanceOp, MaintenanceResult } from "../../models/etcd/protocol.js";
import { Simulator } from "../../sim/index.js";
import {
  call,
  cluster,
  converge,
  get,
  leaderSlot,
  put,
  rev,
  servers,
  type TestCluster,
  waitFor,
} from "./harness.js";

function members(t: ReturnType<typeof cluster>): number[] {
  let out: MaintenanceResult | null = null;
  const node = t.c.nodes[leaderSlot(t.c)] as number;
  t.client.maintenance(node, { type: "member-list" }, (r) => {
    if (r.type === "members") out = r;
  });
  waitFor(t.sim, () => out !== null, 5_000_000, "the member list");
  return (out as unknown as { members: { id: number }[] }).members.map((m) => m.id).sort();
}

test("member replace: the wiped member rejoins under a new id and catches up", () => {
  const t = cluster(3, {
    seed: "replace",
    server: { raft: { snapshotCount: 20, snapshotCatchUpEntries: 5 } },
  });
  for (let i = 0; i < 30; i++) call(t, put(`k${i % 5}`, `${i}`));
  const slot = (leaderSlot(t.c) + 1) % 3;
  let result: boolean | null = null;
  t.c.replaceMember(slot, (ok) => {
    result = ok;
  });
  // writes go on during the replace
  for (let i = 0; i < 30; i++) t.client.put(`k${i % 5}`, `during-${i}`);
  waitFor(t.sim, () => result !== null, 60_000_000, "the replace");
  assert.ok(result, "replaced");
  assert.is(t.c.memberId(slot), 4);
  assert.equal(
    members(t),
    [1, 2, 3, 4].filter((id) => id !== slot + 1),
  );
  converge(t);
  assert.is(servers(t.c).length, 3);
  const last = rev(call(t, put("after", "1")));
  t.sim.runFor(1_000_000);
  assert.equal(
    servers(t.c).map((s) => s.mvcc.currentRev),
    [last, last, last],
  );
  // the new member's life starts empty: a fresh record, filled from the snapshot on
  const lives = t.c.records.filter((r) => r.name === t.c.names[slot]);
  assert.is(lives.length, 2);
  assert.is(lives[1]?.memberId, 4);
  assert.equal(t.sim.monitor.reports, []);
});

test("a removed member stops; the others go on", () => {
  const sim = new Simulator({ seed: "remove" });
  const c = new EtcdCluster(sim, { members: 3 });
  const client = c.addClient();
  const t = { sim, c, client };
  waitFor(sim, () => c.leader() !== null, 5_000_000, "a leader");
  call(t, put("a", "1"));
  const slot = (leaderSlot(c) + 1) % 3;
  let done = false;
  client.maintenance(
    c.nodes[leaderSlot(c)] as number,
    { type: "member-remove", memberId: c.memberId(slot) },
    () => {
      done = true;
    },
  );
  waitFor(sim, () => done && !sim.isUp(c.nodes[slot] as number), 10_000_000, "the removal");
  const r = call(t, get("a"));
  assert.is(r.type, "range");
  assert.ok(rev(call(t, put("a", "2"))) > 2, "writes go on with two members");
});

test("restore from scratch: the leader's snapshot becomes a new cluster; the others join it and get the data by snapshot", () => {
  const t = cluster(3, { seed: "restore-from-scratch" });
  for (let i = 0; i < 20; i++) call(t, put(`k${i % 5}`, `before-${i}`));
  const lead = leaderSlot(t.c);
  const snapshotRev = t.c.server(lead)?.mvcc.currentRev as number;
  let result: boolean | null = null;
  t.c.restoreFromScratch(lead, (ok) => {
    result = ok;
  });
  // acknowledged after the snapshot, in the second before the disaster: lost by design
  const lost = rev(call(t, put("late", "x")));
  assert.ok(lost > snapshotRev);
  waitFor(t.sim, () => result !== null, 60_000_000, "the restore");
  assert.ok(result, "restored");
  assert.is(t.c.restores.length, 1);
  assert.is(t.c.restores[0]?.state.revision, snapshotRev);
  // a new cluster: new member ids, all three serving the snapshot's data and what came after
  assert.equal(members(t), [4, 5, 6]);
  const after = rev(call(t, put("k0", "after")));
  assert.is(after, snapshotRev + 1, "the revision goes on from the snapshot's");
  converge(t);
  for (const s of servers(t.c)) {
    const r = s.mvcc.range("k", "l");
    const kvs = "kvs" in r ? r.kvs : [];
    assert.equal(
      kvs.map((kv) => `${kv.key}=${kv.value}`),
      ["k0=after", "k1=before-16", "k2=before-17", "k3=before-18", "k4=before-19"],
      `${s.cfg.memberId}: the snapshot's keys`,
    );
    const late = s.mvcc.range("late", undefined);
    assert.is("kvs" in late ? late.kvs.length : -1, 0, "the write after the snapshot is gone");
  }
  // the joiners have no log from before their join: they got the data by snapshot
  const joiners = servers(t.c).filter((s) => s.cfg.memberId !== t.c.memberId(lead));
  for (const s of joiners) assert.ok(s.raft.lastSnapshotIndex > 0, `${s.cfg.memberId} got a snapshot`);
});

/** Sends every request at once to the leader, runs until all are answered. */
function together(t: TestCluster, ops: readonly MaintenanceOp[]): (MaintenanceResult | ErrorResponse)[] {
  const admin = t.c.addClient({});
  const leader = t.c.leader();
  if (!leader) throw new Error("no leader");
  const node = t.c.route(leader.cfg.memberId);
  const out: (MaintenanceResult | ErrorResponse | null)[] = ops.map(() => null);
  ops.forEach((op, i) => {
    admin.maintenance(node, op, (r) => {
      out[i] = r;
    });
  });
  waitFor(t.sim, () => out.every((r) => r !== null), 10_000_000, "the answers");
  return out as (MaintenanceResult | ErrorResponse)[];
}

const one = (t: TestCluster, op: MaintenanceOp) => together(t, [op])[0];

function voters(t: TestCluster): { voters: number[]; learners: number[] } {
  const cs = t.c.leader()?.raft.raw.raft.trk.confState();
  return { voters: [...(cs?.voters ?? [])].sort(), learners: [...(cs?.learners ?? [])].sort() };
}

test("refused membership changes: etcd's errors, and raft's configuration untouched", () => {
  const t = cluster(3, { seed: "membership" });
  assert.is(
    (one(t, { type: "member-add", memberId: 10, learner: true }) as MaintenanceResult).type,
    "members",
  );
  assert.equal(one(t, { type: "member-add", memberId: 11, learner: true }), Errors.tooManyLearners);
  assert.equal(one(t, { type: "member-add", memberId: 10, learner: false }), Errors.memberExists);
  assert.equal(one(t, { type: "member-promote", memberId: 1 }), Errors.memberNotLearner);
  assert.equal(one(t, { type: "member-promote", memberId: 12 }), Errors.memberNotFound);
  assert.equal(one(t, { type: "member-remove", memberId: 12 }), Errors.memberNotFound);
  assert.equal(voters(t), { voters: [1, 2, 3], learners: [10] });
  // removed: never again, under any change
  assert.is((one(t, { type: "member-remove", memberId: 10 }) as MaintenanceResult).type, "members");
  assert.equal(one(t, { type: "member-promote", memberId: 10 }), Errors.memberNotFound);
  assert.equal(one(t, { type: "member-add", memberId: 10, learner: true }), Errors.memberNotFound);
  assert.equal(one(t, { type: "member-remove", memberId: 10 }), Errors.memberNotFound);
  assert.equal(voters(t), { voters: [1, 2, 3], learners: [] });
  for (const s of t.c.nodes.map((_, i) => t.c.server(i))) {
    assert.equal([...(s?.members.keys() ?? [])].sort(), [1, 2, 3], "every member's membership");
    // the bootstrap entries were validated against the (empty) backend, as etcd does, and
    // applied: the db holds the initial members (a joining member's snapshot needs them)
    s?.backend.commit();
    const stored = s?.backend.range("members", 0, Number.MAX_SAFE_INTEGER).map(([k]) => k as number);
    assert.equal(stored, [1, 2, 3], "the db's members");
  }
});

test("a promotion racing the removal of the same learner never makes it a voter", () => {
  const t = cluster(3, { seed: "membership-race" });
  one(t, { type: "member-add", memberId: 20, learner: true });
  const [removed, promoted] = together(t, [
    { type: "member-remove", memberId: 20 },
    { type: "member-promote", memberId: 20 },
  ]);
  assert.is((removed as MaintenanceResult).type, "members");
  // raft drops a change proposed while another is pending (the caller times out), or
  // the apply refuses it: either way an error
  assert.is(promoted?.type, "error");
  assert.equal(voters(t), { voters: [1, 2, 3], learners: [] });
  // the cluster still has its quorum: a write goes through
  const admin = t.c.addClient({});
  let ok = false;
  admin.kv({ type: "put", key: "k", value: "v" }, (r) => {
    ok = r.type === "put";
  });
  waitFor(t.sim, () => ok, 10_000_000, "a write");
});

test.run();
