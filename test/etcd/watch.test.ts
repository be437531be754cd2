// Watch (mvcc/watchable_store.go, api/v3rpc/watch.go): live and catch-up events,
// compaction, progress notifications, filters, prev_kv, future revisions, require-leader,
// resuming on another member, and slow streams.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { WatchEvent, WatchRecord, WatchRequest } from "../../models/client/history.js";
import type { EtcdServer } from "../../models/etcd/server.js";
import { call, cluster, get, leaderSlot, put, servers, type TestCluster, waitFor } from "./harness.js";

function record(t: TestCluster, id: number): WatchRecord {
  return t.c.recorder.history().watches[id] as WatchRecord;
}

function events(w: WatchRecord): WatchEvent[] {
  return w.responses.flatMap((r) => r.events);
}

function summary(evs: readonly WatchEvent[]): string[] {
  return evs.map((e) => `${e.type} ${e.kv.key}=${e.kv.value}@${e.kv.modRevision}`);
}

function watch(t: TestCluster, req: WatchRequest): number {
  const w = t.client.watch(req);
  waitFor(t.sim, () => record(t, w.record).responses.some((r) => r.created), 5_000_000, "the watch");
  return w.record;
}

test("live events arrive in revision order, with prev_kv, and a txn's events together", () => {
  const t = cluster(3);
  const id = watch(t, { key: "a", rangeEnd: "z", prevKv: true });
  call(t, put("a", "1"));
  call(t, put("a", "2"));
  call(t, { type: "txn", compare: [], success: [put("b", "1"), { type: "delete", key: "a" }], failure: [] });
  t.sim.runFor(500_000);
  const w = record(t, id);
  assert.equal(summary(events(w)), ["PUT a=1@2", "PUT a=2@3", "PUT b=1@4", "DELETE a=@4"]);
  const txnResponse = w.responses.find((r) => r.events.some((e) => e.kv.key === "b"));
  assert.is(txnResponse?.events.length, 2, "both events of the txn in one response");
  assert.is(events(w)[1]?.prevKv?.value, "1");
  assert.is(events(w)[3]?.prevKv?.value, "2");
});

test("a watch from a past revision catches up from history, then goes live", () => {
  const t = cluster(1);
  for (let i = 0; i < 5; i++) call(t, put(`k${i}`, `${i}`));
  const id = watch(t, { key: "k", rangeEnd: "l", startRevision: 3 });
  call(t, put("k9", "9"));
  t.sim.runFor(500_000);
  assert.equal(summary(events(record(t, id))), [
    "PUT k1=1@3",
    "PUT k2=2@4",
    "PUT k3=3@5",
    "PUT k4=4@6",
    "PUT k9=9@7",
  ]);
});

test("filters drop puts or deletes", () => {
  const t = cluster(1);
  const noPut = watch(t, { key: "k", filters: ["NOPUT"] });
  const noDelete = watch(t, { key: "k", filters: ["NODELETE"] });
  call(t, put("k", "1"));
  call(t, { type: "delete", key: "k" });
  t.sim.runFor(300_000);
  assert.equal(summary(events(record(t, noPut))), ["DELETE k=@3"]);
  assert.equal(summary(events(record(t, noDelete))), ["PUT k=1@2"]);
});

test("compaction: a watch below the compact revision is cancelled with it; at it, it works", () => {
  const t = cluster(1);
  for (let i = 0; i < 4; i++) call(t, put("k", `${i}`));
  call(t, { type: "compact", revision: 4 });
  const below = t.client.watch({ key: "k", startRevision: 3 });
  const at = watch(t, { key: "k", startRevision: 4 });
  t.sim.runFor(500_000);
  const cancelled = record(t, below.record).responses.find((r) => r.canceled);
  assert.is(cancelled?.compactRevision, 4);
  assert.equal(summary(events(record(t, at))), ["PUT k=2@4", "PUT k=3@5"]);
});

test("requested progress: the current revision once every watcher is synced", () => {
  const t = cluster(3);
  const id = watch(t, { key: "p" });
  call(t, put("other", "1"));
  call(t, put("other", "2"));
  t.sim.runFor(300_000);
  t.client.requestProgress();
  t.sim.runFor(300_000);
  const progress = record(t, id).responses.filter((r) => r.progressNotify);
  assert.is(progress.length, 1);
  assert.is(progress[0]?.revision, 3);
});

test("periodic progress notifications reach idle watchers that asked for them", () => {
  const t = cluster(1, { server: { progressNotifyIntervalUs: 1_000_000 } });
  const asked = watch(t, { key: "idle", progressNotify: true });
  const silent = watch(t, { key: "idle" });
  call(t, put("x", "1"));
  t.sim.runFor(3_500_000);
  const progress = record(t, asked).responses.filter((r) => r.progressNotify);
  assert.ok(progress.length >= 3, `${progress.length} notifications`);
  assert.ok(progress.every((r) => r.revision === 2));
  assert.is(record(t, silent).responses.filter((r) => r.progressNotify).length, 0);
});

test("a watch from a future revision sees nothing before it, and no progress below it", () => {
  const t = cluster(1, { server: { progressNotifyIntervalUs: 200_000 } });
  const id = watch(t, { key: "f", startRevision: 5, progressNotify: true });
  call(t, put("f", "1")); // 2
  call(t, put("f", "2")); // 3
  t.sim.runFor(1_000_000);
  assert.is(events(record(t, id)).length, 0);
  call(t, put("f", "3")); // 4
  call(t, put("f", "4")); // 5
  call(t, put("f", "5")); // 6
  t.sim.runFor(1_000_000);
  assert.equal(summary(events(record(t, id))), ["PUT f=4@5", "PUT f=5@6"]);
  const progress = record(t, id).responses.filter((r) => r.progressNotify);
  assert.ok(
    progress.every((r) => r.revision >= 4),
    "never a progress revision below start - 1",
  );
});

test("the client resumes a watch on another member after a crash: every event once, in order", () => {
  const t = cluster(3);
  const w = t.client.watch({ key: "r", rangeEnd: "s" });
  waitFor(t.sim, () => record(t, w.record).responses.some((r) => r.created), 5_000_000, "the watch");
  const first = record(t, w.record).responses[0]?.member as string;
  for (let i = 0; i < 5; i++) call(t, put(`r${i}`, "a"));
  t.sim.crash(t.c.nodes[t.c.names.indexOf(first)] as number, "keep");
  for (let i = 0; i < 5; i++) call(t, put(`r${i}`, "b"));
  t.sim.runFor(3_000_000);
  const rec = record(t, w.record);
  const revs = events(rec).map((e) => e.kv.modRevision);
  // a put sent to the crashing member has an unknown outcome: count what the store holds
  const last = t.c.leader()?.mvcc.currentRev ?? 0;
  assert.ok(last >= 10, `${last - 1} puts took effect`);
  assert.equal(
    revs,
    Array.from({ length: last - 1 }, (_, i) => i + 2),
  );
  const members = new Set(rec.responses.map((r) => r.member));
  assert.ok(members.size >= 2, "served by two members");
  const resumed = rec.responses.filter((r) => r.created);
  assert.is(resumed.length, 2);
  assert.ok((resumed[1]?.startRevision ?? 0) > 0, "resumed from a revision");
});

test("require-leader: a member that loses its leader cancels the watch; the client moves on", () => {
  const t = cluster(3);
  const isolated = (leaderSlot(t.c) + 1) % 3;
  const client = t.c.addClient({
    endpoints: [t.c.nodes[isolated] as number, ...t.c.nodes.filter((_, i) => i !== isolated)],
  });
  const w = client.watch({ key: "q", requireLeader: true });
  waitFor(t.sim, () => record(t, w.record).responses.some((r) => r.created), 5_000_000, "the watch");
  const on = record(t, w.record).responses[0]?.member;
  const slot = t.c.names.indexOf(on as string);
  const others = t.c.names.filter((_, i) => i !== slot);
  t.sim.network.partition([[t.c.names[slot] as string], others].map((g) => g.map((n) => t.sim.nodeIndex(n))));
  t.sim.runFor(5_000_000);
  const rec = record(t, w.record);
  const cancel = rec.responses.find((r) => r.canceled);
  assert.ok(cancel, "cancelled");
  assert.match(cancel?.error ?? "", /no leader/);
  const writer = t.c.addClient({ endpoints: others.map((n) => t.sim.nodeIndex(n)) });
  call(t, put("q", "1"), writer);
  t.sim.runFor(1_000_000);
  assert.equal(summary(events(record(t, w.record))), ["PUT q=1@2"], "resumed elsewhere and got the event");
});

test("a slow stream: its watcher becomes a victim and still gets every event in order", () => {
  const t = cluster(1);
  const id = watch(t, { key: "v", rangeEnd: "w" });
  const node = t.c.nodes[0] as number;
  // stall the send loop so the 128-slot channel fills up
  t.sim.armFailpoint(node, "beforeSendWatchResponse", { kind: "stall", stallUs: 2_000_000 });
  for (let i = 0; i < 300; i++) t.client.put(`v${i % 7}`, `${i}`);
  t.sim.runFor(10_000_000);
  assert.is(rev(call(t, get("v0"))), 301);
  const revs = events(record(t, id)).map((e) => e.kv.modRevision);
  assert.equal(
    revs,
    Array.from({ length: 300 }, (_, i) => i + 2),
  );
});

test("a watcher cancelled by a compaction while its stream's send loop stalls still gets what was queued before the cancel", () => {
  // Fuzz seed 7003046 (watch profile): the send loop stalled at beforeSendWatchResponse
  // with events queued; a snapshot install made the watcher catch up, a compaction above
  // it cancelled it, and the queued events were dropped as if the client had cancelled,
  // while the progress notifications behind them went out. etcd's sendLoop sends them:
  // the watch id stays in its `ids` until the client cancels it.
  const t = cluster(1);
  const id = watch(t, { key: "k", filters: ["NODELETE"] });
  const node = t.c.nodes[0] as number;
  t.sim.armFailpoint(node, "beforeSendWatchResponse", { kind: "stall", stallUs: 1_000_000 });
  call(t, put("k", "1"));
  call(t, { type: "delete", key: "k" });
  call(t, put("k", "2"));
  // a snapshot install: every synced watcher catches up from its next revision (5)
  (servers(t.c)[0] as EtcdServer).watch.restore();
  call(t, put("k", "3"));
  call(t, put("k", "4"));
  call(t, { type: "compact", revision: 6 });
  t.sim.runFor(2_000_000);
  const w = record(t, id);
  // queued before the cancel, and still through the watcher's filter
  assert.equal(summary(events(w)), ["PUT k=1@2", "PUT k=2@4"]);
  const last = w.responses[w.responses.length - 1];
  assert.ok(last?.canceled, "the cancel comes last");
  assert.is(last?.compactRevision, 6);
});

function rev(a: ReturnType<typeof call>): number {
  return a.type === "error" ? -1 : a.revision;
}

test.run();
