// The KV API against etcd's documented semantics (api/v3rpc, mvcc/kvstore_txn.go,
// etcdserver/apply.go), end to end: client, raft, apply, MVCC, backend.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { KeyValue, RangeResponse, TxnResponse } from "../../models/client/history.js";
import { Errors } from "../../models/etcd/errors.js";
import { call, cluster, get, put, rev, script } from "./harness.js";

test("revisions: one per write transaction; a delete of nothing takes none", () => {
  const t = cluster(1);
  assert.is(rev(call(t, get("a"))), 1, "a new store is at revision 1");
  assert.is(rev(call(t, put("a", "1"))), 2);
  assert.is(rev(call(t, put("a", "2"))), 3);
  const none = call(t, { type: "delete", key: "missing" });
  assert.equal(none, { type: "delete", revision: 3, deleted: 0 });
  const both = call(t, {
    type: "txn",
    compare: [],
    success: [put("x", "1"), put("y", "1"), { type: "delete", key: "a" }],
    failure: [],
  }) as TxnResponse;
  assert.is(both.revision, 4, "a txn with three writes takes one revision");
  const kvs = (call(t, { type: "range", key: "x", rangeEnd: "z" }) as RangeResponse).kvs;
  assert.equal(
    kvs.map((kv) => kv.modRevision),
    [4, 4],
  );
  assert.is(
    rev(call(t, { type: "txn", compare: [], success: [get("x")], failure: [] })),
    4,
    "a read-only txn takes none",
  );
});

test("create revision, mod revision and version follow a key's generations", () => {
  const t = cluster(1);
  script(t, [put("k", "a"), put("k", "b"), { type: "delete", key: "k" }, put("k", "c")]);
  const kv = (call(t, get("k")) as RangeResponse).kvs[0] as KeyValue;
  assert.equal(kv, { key: "k", value: "c", createRevision: 5, modRevision: 5, version: 1, lease: 0 });
  const old = (call(t, get("k", { revision: 3 })) as RangeResponse).kvs[0] as KeyValue;
  assert.equal(old, { key: "k", value: "b", createRevision: 2, modRevision: 3, version: 2, lease: 0 });
  assert.is((call(t, get("k", { revision: 4 })) as RangeResponse).kvs.length, 0, "deleted at 4");
});

test("range options: limit and more, count only, keys only, prefix; prev_kv on put and delete", () => {
  const t = cluster(1);
  script(t, [put("a", "1"), put("b", "2"), put("c", "3"), put("d", "4")]);
  const limited = call(t, get("a", { rangeEnd: "d", limit: 2 })) as RangeResponse;
  assert.equal(
    limited.kvs.map((kv) => kv.key),
    ["a", "b"],
  );
  assert.is(limited.count, 3);
  assert.is(limited.more, true);
  const counted = call(t, get("a", { rangeEnd: "\0", countOnly: true })) as RangeResponse;
  assert.is(counted.kvs.length, 0);
  assert.is(counted.count, 4);
  const keys = call(t, get("a", { rangeEnd: "c", keysOnly: true })) as RangeResponse;
  assert.equal(
    keys.kvs.map((kv) => [kv.key, kv.value]),
    [
      ["a", ""],
      ["b", ""],
    ],
  );
  const prev = call(t, put("a", "9", { prevKv: true }));
  assert.equal(prev, {
    type: "put",
    revision: 6,
    prevKv: { key: "a", value: "1", createRevision: 2, modRevision: 2, version: 1, lease: 0 },
  });
  const del = call(t, { type: "delete", key: "b", rangeEnd: "d", prevKv: true });
  assert.is(del.type === "delete" && del.deleted, 2);
  assert.equal(del.type === "delete" ? del.prevKvs?.map((kv) => kv.key) : null, ["b", "c"]);
});

test("compaction: below the compact revision is gone, the compact revision itself is readable", () => {
  const t = cluster(1);
  script(t, [put("a", "1"), put("a", "2"), put("a", "3")]);
  assert.equal(call(t, { type: "compact", revision: 3 }), { type: "compact", revision: 4 });
  assert.equal(call(t, get("a", { revision: 2 })), Errors.compacted);
  const at3 = call(t, get("a", { revision: 3 })) as RangeResponse;
  assert.is(at3.kvs[0]?.value, "2");
  assert.equal(
    call(t, { type: "compact", revision: 3 }),
    Errors.compacted,
    "compacting again at the same revision",
  );
  assert.equal(call(t, { type: "compact", revision: 2 }), Errors.compacted);
  assert.equal(call(t, { type: "compact", revision: 99 }), Errors.futureRevision);
  assert.equal(call(t, get("a", { revision: 99 })), Errors.futureRevision);
  const txn = call(t, {
    type: "txn",
    compare: [],
    success: [put("b", "1"), get("a", { revision: 2 })],
    failure: [],
  });
  assert.equal(txn, Errors.compacted, "a txn reading a compacted revision fails whole");
  assert.is(rev(call(t, get("b"))), 4, "and its put did not happen");
  // the range revision is checked against the revision the txn began at, not the one its
  // own put will create (etcd's checkRequests before any op runs)
  const ahead = call(t, {
    type: "txn",
    compare: [],
    success: [put("b", "2"), get("a", { revision: 5 })],
    failure: [],
  });
  assert.equal(ahead, Errors.futureRevision);
});

test("txn compares: value, version, create and mod revision, lease; =, !=, <, >", () => {
  const t = cluster(1);
  script(t, [put("k", "m"), put("k", "m2")]); // k: create 2, mod 3, version 2
  const holds = (
    target: "VALUE" | "VERSION" | "CREATE" | "MOD" | "LEASE",
    result: "EQUAL" | "NOT_EQUAL" | "GREATER" | "LESS",
    value: string | number,
    key = "k",
  ) =>
    (
      call(t, {
        type: "txn",
        compare: [{ key, target, result, value }],
        success: [],
        failure: [],
      }) as TxnResponse
    ).succeeded;
  assert.ok(holds("VALUE", "EQUAL", "m2"));
  assert.not.ok(holds("VALUE", "EQUAL", "m"));
  assert.ok(holds("VALUE", "GREATER", "m"));
  assert.ok(holds("VALUE", "LESS", "n"));
  assert.ok(holds("VALUE", "NOT_EQUAL", "x"));
  assert.ok(holds("VERSION", "EQUAL", 2));
  assert.ok(holds("CREATE", "EQUAL", 2));
  assert.ok(holds("MOD", "EQUAL", 3));
  assert.ok(holds("MOD", "GREATER", 2));
  assert.ok(holds("LEASE", "EQUAL", 0));
  // a missing key: zero for numbers, and a value compare always fails
  assert.ok(holds("VERSION", "EQUAL", 0, "missing"));
  assert.ok(holds("CREATE", "EQUAL", 0, "missing"));
  assert.not.ok(holds("VALUE", "EQUAL", "", "missing"));
  assert.not.ok(holds("VALUE", "NOT_EQUAL", "x", "missing"));
  // exactly one branch runs; reads in the txn see its own writes
  const r = call(t, {
    type: "txn",
    compare: [{ key: "k", target: "VERSION", result: "EQUAL", value: 99 }],
    success: [put("s", "1")],
    failure: [put("f", "1"), get("f")],
  }) as TxnResponse;
  assert.is(r.succeeded, false);
  assert.is((r.responses[1] as RangeResponse).kvs[0]?.value, "1");
  assert.is((call(t, get("s")) as RangeResponse).kvs.length, 0);
});

test("request validation gives etcd's errors before raft", () => {
  const t = cluster(1);
  const many = Array.from({ length: 129 }, (_, i) => get(`k${i}`));
  assert.equal(call(t, { type: "txn", compare: [], success: many, failure: [] }), Errors.tooManyOps);
  assert.equal(
    call(t, { type: "txn", compare: [], success: [put("a", "1"), put("a", "2")], failure: [] }),
    Errors.duplicateKey,
  );
  assert.equal(
    call(t, {
      type: "txn",
      compare: [],
      success: [put("b", "1"), { type: "delete", key: "a", rangeEnd: "c" }],
      failure: [],
    }),
    Errors.duplicateKey,
  );
  assert.equal(call(t, put("", "x")), Errors.emptyKey);
  assert.equal(call(t, put("a", "x", { lease: 12345 })), Errors.leaseNotFound);
  assert.is(rev(call(t, get("a"))), 1, "none of them wrote");
});

test("three members agree: every member applies the same revisions", () => {
  const t = cluster(3);
  for (let i = 0; i < 20; i++) call(t, put(`k${i % 4}`, `v${i}`));
  t.sim.runFor(1_000_000);
  const hashes = t.c.names.map((_, i) => JSON.stringify(t.c.server(i)?.mvcc.hashKV(0)));
  assert.is(new Set(hashes).size, 1);
  assert.is(t.c.server(0)?.mvcc.currentRev, 21);
});

test.run();
