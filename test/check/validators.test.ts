// Each validator on hand-built run artifacts: one input that breaks exactly its property,
// and one that keeps it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type {
  History,
  KeepAliveRecord,
  KeyValue,
  KvRequest,
  LockRecord,
  Operation,
  PutRequest,
  WatchEvent,
  WatchRecord,
  WatchResponse,
} from "../../models/client/history.js";
import type { AppliedRecord, MemberRecord } from "../../models/etcd/cluster.js";
import { checkAgreement } from "../../src/check/agreement.js";
import type { LivenessProbe, MemberEnd, RunArtifacts, Violation } from "../../src/check/artifacts.js";
import { checkDurability } from "../../src/check/durability.js";
import { applyRequest, INITIAL_ETCD_STATE } from "../../src/check/etcd.js";
import { checkLeases } from "../../src/check/lease.js";
import { checkLiveness } from "../../src/check/liveness.js";
import { checkLocks } from "../../src/check/lock.js";
import { Reference } from "../../src/check/reference.js";
import { checkRevisionRollback } from "../../src/check/revision.js";
import { checkStaleReads } from "../../src/check/stale-read.js";
import { validateRun } from "../../src/check/validate.js";
import { checkWatches } from "../../src/check/watch.js";

// ---- builders --------------------------------------------------------------------------

interface Step {
  readonly request: KvRequest;
  readonly callId?: number;
  readonly expiry?: boolean;
  readonly atUs?: number;
}

/** Member lives that applied `steps` in order, revisions and answers from the specification. */
function lives(steps: readonly Step[], names = ["m1", "m2", "m3"]): MemberRecord[] {
  let state = INITIAL_ETCD_STATE;
  const applied: AppliedRecord[] = steps.map((s, i) => {
    const r = applyRequest(state, s.request);
    state = r.state;
    return {
      index: i + 3,
      term: 2,
      requestId: `r${i}`,
      origin: 1,
      request: s.request,
      response: r.response,
      revision: state.revision,
      expiry: s.expiry ?? false,
      atUs: s.atUs ?? (i + 1) * 1000,
      callId: s.callId,
    };
  });
  return names.map((name, i) => ({ name, memberId: i + 1, applied: applied.map((a) => ({ ...a })) }));
}

const put = (key: string, value: string, lease?: number): PutRequest => ({
  type: "put",
  key,
  value,
  ...(lease ? { lease } : {}),
});
const kv = (key: string, value: string, create: number, mod: number, version: number): KeyValue => ({
  key,
  value,
  createRevision: create,
  modRevision: mod,
  version,
  lease: 0,
});
const ev = (type: "PUT" | "DELETE", k: KeyValue, prevKv?: KeyValue): WatchEvent => ({
  type,
  kv: k,
  ...(prevKv ? { prevKv } : {}),
});
const resp = (
  atUs: number,
  revision: number,
  events: WatchEvent[],
  extra: Partial<WatchResponse> = {},
): WatchResponse => ({
  atUs,
  member: "m1",
  revision,
  events,
  ...extra,
});
const created = (atUs: number, revision: number, startRevision = 0): WatchResponse =>
  resp(atUs, revision, [], { created: true, startRevision });

function watchRecord(request: WatchRecord["request"], responses: WatchResponse[]): WatchRecord {
  return { id: 0, client: 1, callUs: 0, request, responses };
}

function history(
  operations: Operation[],
  watches: WatchRecord[] = [],
  extra: Partial<History> = {},
): History {
  return { operations, watches, ...extra };
}

let nextOp = 0;
function op(
  client: number,
  callUs: number,
  returnUs: number | null,
  request: KvRequest,
  response: Operation["response"],
): Operation {
  return { id: nextOp++, client, callUs, returnUs, request, response };
}

const checkers = (vs: readonly Violation[]) => vs.map((v) => v.checker);

// three puts on "a" (revisions 2, 3, 4), then "b" (5)
const BASE: Step[] = [
  { request: put("a", "1") },
  { request: put("a", "2") },
  { request: put("a", "3") },
  { request: put("b", "1") },
];
const ref = new Reference(lives(BASE));

// ---- the reference ---------------------------------------------------------------------

test("reference: replays committed entries into states and events; a replaced entry loses", () => {
  assert.is(ref.lastRevision, 5);
  assert.is(ref.stateAt(3)?.kvs.get("a")?.value, "2");
  const e = ref.eventsAt(3)?.events[0];
  assert.is(e?.prevKv?.value, "1");
  // index 3 applied with one request, then (after a lost WAL tail) another: the later counts
  const first = lives([{ request: put("x", "lost"), callId: 1, atUs: 10 }], ["m1"]);
  const second = lives([{ request: put("x", "kept"), callId: 2, atUs: 20 }], ["m1"]);
  const replaced = (second[0]?.applied ?? []).map((a) => ({ ...a, requestId: "r-other" }));
  const both: MemberRecord[] = [
    { name: "m1", memberId: 1, applied: [...(first[0]?.applied ?? []), ...replaced] },
  ];
  const r = new Reference(both);
  assert.is(r.entryOf(1), undefined);
  assert.is(r.entryOf(2)?.revision, 2);
});

// ---- watch -------------------------------------------------------------------------------

const A2 = kv("a", "1", 2, 2, 1);
const A3 = kv("a", "2", 2, 3, 2);
const A4 = kv("a", "3", 2, 4, 3);

test("watch: a faithful watch passes every watch check", () => {
  const w = watchRecord({ key: "a", startRevision: 2, prevKv: true }, [
    created(10, 1, 2),
    resp(20, 2, [ev("PUT", A2)]),
    resp(30, 3, [ev("PUT", A3, A2)]),
    resp(35, 3, [], { progressNotify: true }),
    resp(40, 4, [ev("PUT", A4, A3)]),
  ]);
  assert.equal(checkWatches(history([], [w]), ref), []);
});

test("watch.filter, ordered, unique, atomic: each breach is named", () => {
  const filter = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 5, [ev("PUT", A2), ev("PUT", kv("b", "1", 5, 5, 1))]),
  ]);
  assert.ok(checkers(checkWatches(history([], [filter]), ref)).includes("watch.filter"));
  const noput = watchRecord({ key: "a", startRevision: 2, filters: ["NOPUT"] }, [
    created(1, 1, 2),
    resp(2, 2, [ev("PUT", A2)]),
  ]);
  assert.ok(checkers(checkWatches(history([], [noput]), ref)).includes("watch.filter"));
  const ordered = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 3, [ev("PUT", A3)]),
    resp(3, 3, [ev("PUT", A2)]),
  ]);
  const o = checkers(checkWatches(history([], [ordered]), ref));
  assert.ok(o.includes("watch.ordered"));
  assert.not.ok(o.includes("watch.unique"), "an event out of order is not a duplicate");
  // an event sent again after a later one: out of order and twice
  const resent = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 2, [ev("PUT", A2)]),
    resp(3, 3, [ev("PUT", A3)]),
    resp(4, 3, [ev("PUT", A2)]),
  ]);
  const rs = checkers(checkWatches(history([], [resent]), ref));
  assert.ok(rs.includes("watch.unique") && rs.includes("watch.ordered"), rs.join());
  const unique = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 2, [ev("PUT", A2)]),
    resp(3, 2, [ev("PUT", A2)]),
  ]);
  const u = checkers(checkWatches(history([], [unique]), ref));
  assert.ok(u.includes("watch.unique"));
  assert.not.ok(u.includes("watch.ordered"), "equal revisions are in order");
  // a txn's two events (revision 2 on a and b) split across responses
  const txn = new Reference(
    lives([{ request: { type: "txn", compare: [], success: [put("a", "1"), put("b", "1")], failure: [] } }]),
  );
  const split = watchRecord({ key: "a", rangeEnd: "c", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 2, [ev("PUT", kv("a", "1", 2, 2, 1))]),
    resp(3, 2, [ev("PUT", kv("b", "1", 2, 2, 1))]),
  ]);
  assert.equal(checkers(checkWatches(history([], [split]), txn)), ["watch.atomic"]);
});

test("watch.bookmarkable: no event at or below a progress notification; notifications never go back", () => {
  const after = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 4, [], { progressNotify: true }),
    resp(3, 4, [ev("PUT", A3)]),
  ]);
  assert.ok(checkers(checkWatches(history([], [after]), ref)).includes("watch.bookmarkable"));
  const back = watchRecord({ key: "a", startRevision: 5 }, [
    created(1, 5, 5),
    resp(2, 5, [], { progressNotify: true }),
    resp(3, 3, [], { progressNotify: true }),
  ]);
  assert.ok(checkers(checkWatches(history([], [back]), ref)).includes("watch.bookmarkable"));
});

test("watch.reliable: a missed committed event, and an event nothing committed", () => {
  const missed = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 2, [ev("PUT", A2)]),
    resp(3, 4, [ev("PUT", A4)]),
  ]);
  const vs = checkWatches(history([], [missed]), ref);
  assert.equal(checkers(vs), ["watch.reliable"]);
  assert.match(vs[0]?.message ?? "", /missed PUT a="2"@3/);
  const invented = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 3, [ev("PUT", A2), ev("PUT", kv("a", "9", 2, 3, 2))]),
  ]);
  assert.ok(checkers(checkWatches(history([], [invented]), ref)).includes("watch.reliable"));
});

test("watch.reliable: a revision's events compare as a set of keys; one missing from it is caught", () => {
  // one txn writes b then a at revision 2, a put of a follows at 3
  const txnRef = new Reference(
    lives([
      {
        request: {
          type: "txn",
          compare: [],
          success: [put("b", "1"), put("a", "1")],
          failure: [],
        },
      },
      { request: put("a", "2") },
    ]),
  );
  const B = kv("b", "1", 2, 2, 1);
  const a1 = kv("a", "1", 2, 2, 1);
  const a2 = kv("a", "2", 2, 3, 2);
  // (created without a start revision: W7's first-event rule, which takes etcd's op order, is not in play)
  const prefix = { key: "a", rangeEnd: "c", startRevision: 2 };
  const inKeyOrder = watchRecord(prefix, [
    created(1, 1),
    resp(2, 3, [ev("PUT", a1), ev("PUT", B)]),
    resp(3, 3, [ev("PUT", a2)]),
  ]);
  assert.equal(checkWatches(history([], [inKeyOrder]), txnRef), []);
  const missing = watchRecord(prefix, [
    created(1, 1),
    resp(2, 3, [ev("PUT", B)]),
    resp(3, 3, [ev("PUT", a2)]),
  ]);
  const vs = checkWatches(history([], [missing]), txnRef);
  assert.equal(checkers(vs), ["watch.reliable"]);
  assert.match(vs[0]?.message ?? "", /missed PUT a="1"@2/);
  // out of revision order: reported as such, and the set of events still compared whole
  const backwards = watchRecord(prefix, [
    created(1, 1),
    resp(2, 3, [ev("PUT", a2)]),
    resp(3, 3, [ev("PUT", B), ev("PUT", a1)]),
  ]);
  assert.equal(checkers(checkWatches(history([], [backwards]), txnRef)), ["watch.ordered"]);
});

test("watch.resumable: after a resume from R, the first event is the first committed one at or after R", () => {
  const skipped = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 2, [ev("PUT", A2)]),
    created(3, 4, 3), // resumed on another member from 3
    resp(4, 4, [ev("PUT", A4)]),
  ]);
  assert.ok(checkers(checkWatches(history([], [skipped]), ref)).includes("watch.resumable"));
  const good = watchRecord({ key: "a", startRevision: 2 }, [
    created(1, 1, 2),
    resp(2, 2, [ev("PUT", A2)]),
    created(3, 4, 3),
    resp(4, 4, [ev("PUT", A3), ev("PUT", A4)]),
  ]);
  assert.equal(checkWatches(history([], [good]), ref), []);
});

test("watch.is-create and watch.prev-kv against the state just before the event", () => {
  const wrongCreate = watchRecord({ key: "a", startRevision: 3 }, [
    created(1, 2, 3),
    resp(2, 3, [ev("PUT", kv("a", "2", 3, 3, 1))]),
  ]);
  assert.ok(checkers(checkWatches(history([], [wrongCreate]), ref)).includes("watch.is-create"));
  const wrongPrev = watchRecord({ key: "a", startRevision: 3, prevKv: true }, [
    created(1, 2, 3),
    resp(2, 3, [ev("PUT", A3, A4)]),
  ]);
  assert.equal(checkers(checkWatches(history([], [wrongPrev]), ref)), ["watch.prev-kv"]);
});

test("watch.compaction and watch.require-leader", () => {
  const compacted = new Reference(lives([...BASE, { request: { type: "compact", revision: 4 } }]));
  const good = watchRecord({ key: "a", startRevision: 2 }, [
    resp(1, 5, [], { canceled: true, compactRevision: 4 }),
  ]);
  assert.equal(checkWatches(history([], [good]), compacted), []);
  const spurious = watchRecord({ key: "a", startRevision: 4 }, [
    resp(1, 5, [], { canceled: true, compactRevision: 4 }),
  ]);
  assert.equal(checkers(checkWatches(history([], [spurious]), compacted)), ["watch.compaction"]);
  const unknown = watchRecord({ key: "a", startRevision: 2 }, [
    resp(1, 5, [], { canceled: true, compactRevision: 3 }),
  ]);
  assert.equal(checkers(checkWatches(history([], [unknown]), compacted)), ["watch.compaction"]);
  const noLeader = (requireLeader: boolean) =>
    watchRecord({ key: "a", requireLeader }, [
      created(1, 5),
      resp(2, 5, [], { canceled: true, error: "etcdserver: no leader" }),
    ]);
  assert.equal(checkers(checkWatches(history([], [noLeader(false)]), ref)), ["watch.require-leader"]);
  assert.equal(checkWatches(history([], [noLeader(true)]), ref), []);
});

// ---- reads and revisions -------------------------------------------------------------------

test("stale-read: a serializable read must show the committed state at its revision", () => {
  const stale = op(
    1,
    10_000,
    20_000,
    { type: "range", key: "a", serializable: true },
    { type: "range", revision: 3, kvs: [A3], count: 1, more: false },
  );
  assert.equal(checkStaleReads(history([stale]), ref), [], "stale but true to revision 3");
  const wrong = op(
    1,
    10_000,
    20_000,
    { type: "range", key: "a", serializable: true },
    { type: "range", revision: 3, kvs: [A2], count: 1, more: false },
  );
  assert.equal(checkers(checkStaleReads(history([wrong]), ref)), ["stale-read"]);
  const past = op(
    1,
    10_000,
    20_000,
    { type: "range", key: "a", revision: 2 },
    { type: "range", revision: 5, kvs: [A4], count: 1, more: false },
  );
  assert.equal(
    checkers(checkStaleReads(history([past]), ref)),
    ["stale-read"],
    "a read at revision 2 showing later data",
  );
  const future = op(
    1,
    10_000,
    20_000,
    { type: "range", key: "a", serializable: true },
    { type: "range", revision: 9, kvs: [], count: 0, more: false },
  );
  assert.equal(checkers(checkStaleReads(history([future]), ref)), ["stale-read"]);
});

test("revision-rollback: a later request never sees a lower revision; serializable reads are exempt", () => {
  const first = op(1, 0, 100, put("a", "1"), { type: "put", revision: 5 });
  const later = op(
    2,
    200,
    300,
    { type: "range", key: "a" },
    { type: "range", revision: 4, kvs: [], count: 0, more: false },
  );
  const vs = checkRevisionRollback(history([first, later]));
  assert.equal(checkers(vs), ["revision-rollback"]);
  assert.match(vs[0]?.message ?? "", /went back/);
  const concurrent = op(
    2,
    50,
    300,
    { type: "range", key: "a" },
    { type: "range", revision: 4, kvs: [], count: 0, more: false },
  );
  assert.equal(checkRevisionRollback(history([first, concurrent])), [], "began before the other returned");
  const serializable = op(
    2,
    200,
    300,
    { type: "range", key: "a", serializable: true },
    { type: "range", revision: 4, kvs: [], count: 0, more: false },
  );
  assert.equal(checkRevisionRollback(history([first, serializable])), []);
});

// ---- durability and agreement ---------------------------------------------------------------

test("durability: an acknowledged write must be in the reference", () => {
  const acked = op(1, 0, 100, put("x", "1"), { type: "put", revision: 2 });
  const kept = new Reference(lives([{ request: put("x", "1"), callId: acked.id }]));
  assert.equal(checkDurability(history([acked]), kept), []);
  const lost = new Reference(lives([{ request: put("y", "1"), callId: 10_000 }]));
  assert.equal(checkers(checkDurability(history([acked]), lost)), ["durability"]);
});

test("agreement: end hashes, and the revision each member reached with each entry", () => {
  const end = (hash: number, revision = 5): MemberEnd => ({
    name: `m${hash}`,
    memberId: hash,
    hashKv: { hash, revision, compactRevision: -1 },
  });
  const same: MemberEnd[] = [0, 1].map((i) => ({ ...end(7), name: `m${i + 1}` }));
  assert.equal(checkAgreement(lives(BASE), same), []);
  assert.equal(checkers(checkAgreement(lives(BASE), [end(1), end(2)])), ["agreement"]);
  // m3 skipped the second entry: every revision after is one lower
  const m = lives(BASE);
  const m3 = m[2] as MemberRecord;
  const skipped: MemberRecord = {
    ...m3,
    applied: m3.applied
      .filter((a) => a.index !== 4)
      .map((a) => (a.index > 4 ? { ...a, revision: a.revision - 1 } : a)),
  };
  const vs = checkAgreement([m[0] as MemberRecord, m[1] as MemberRecord, skipped], []);
  assert.equal(checkers(vs), ["agreement"]);
  assert.match(vs[0]?.message ?? "", /m3 .*entry 5/);
});

// ---- leases -------------------------------------------------------------------------------

const PARAMS = { electionTimeoutUs: 1_000_000, maxClockDriftPpm: 0 };

function leaseRun(revokeAtUs: number): { h: History; r: Reference } {
  const steps: Step[] = [
    { request: { type: "lease-grant", id: 7, ttlS: 10 }, atUs: 0 },
    { request: put("k", "v", 7), atUs: 10 },
    { request: { type: "lease-revoke", id: 7 }, expiry: true, atUs: revokeAtUs },
  ];
  const keep: KeepAliveRecord = {
    client: 1,
    lease: 7,
    member: "m2",
    callUs: 1_000_000,
    returnUs: 1_001_000,
    ttlS: 10,
  };
  return { h: history([], [], { keepAlives: [keep] }), r: new Reference(lives(steps)) };
}

test("lease.keepalive: an expiry revoke must come a TTL after the last renewal", () => {
  const early = leaseRun(3_000_000);
  assert.equal(checkers(checkLeases(early.h, early.r, PARAMS, 60_000_000, null)), ["lease.keepalive"]);
  const due = leaseRun(11_500_000);
  assert.equal(checkLeases(due.h, due.r, PARAMS, 60_000_000, null), []);
});

test("lease.expiry: a lease nobody keeps alive is gone by the end", () => {
  const steps: Step[] = [{ request: { type: "lease-grant", id: 8, ttlS: 5 }, atUs: 0 }];
  const r = new Reference(lives(steps));
  assert.equal(checkers(checkLeases(history([]), r, PARAMS, 60_000_000, 1_000_000)), ["lease.expiry"]);
  assert.equal(checkLeases(history([]), r, PARAMS, 10_000_000, 1_000_000), [], "not due yet");
  const revoked = new Reference(
    lives([...steps, { request: { type: "lease-revoke", id: 8 }, expiry: true, atUs: 6_000_000 }]),
  );
  assert.equal(checkLeases(history([]), revoked, PARAMS, 60_000_000, 1_000_000), []);
});

// ---- locks and elections -------------------------------------------------------------------

test("lock.ownership: the holder's key exists at its revision and is the oldest", () => {
  const steps: Step[] = [
    { request: put("/l/a", "", 0) },
    { request: put("/l/b", "", 0) },
    { request: { type: "delete", key: "/l/a" } },
  ];
  const r = new Reference(lives(steps));
  const rec = (key: string, createRevision: number, acquiredRevision: number): LockRecord => ({
    kind: "lock",
    client: 1,
    prefix: "/l",
    key,
    lease: 0,
    createRevision,
    acquiredUs: 1,
    acquiredRevision,
    releasedUs: null,
  });
  assert.equal(
    checkLocks(history([], [], { locks: [rec("/l/a", 2, 2), rec("/l/b", 3, 4)] }), r, 10).violations,
    [],
  );
  assert.equal(
    checkers(checkLocks(history([], [], { locks: [rec("/l/b", 3, 3)] }), r, 10).violations),
    ["lock.ownership"],
    "a was older",
  );
  assert.equal(
    checkers(checkLocks(history([], [], { locks: [rec("/l/a", 2, 4)] }), r, 10).violations),
    ["lock.ownership"],
    "a was gone",
  );
  // holders overlapping in real time: an observation only
  const both = checkLocks(
    history([], [], { locks: [rec("/l/a", 2, 2), { ...rec("/l/b", 3, 4), client: 2 }] }),
    r,
    10,
  );
  assert.is(both.observations.length, 1);
});

test("lock: fenced writes of two holders must not interleave", () => {
  // a holds from 2; b queues at 3 and holds once a's key goes at 4
  const steps: Step[] = [
    { request: put("/l/a", "") },
    { request: put("/l/b", "") },
    { request: { type: "delete", key: "/l/a" } },
  ];
  const r = new Reference(lives(steps));
  const rec = (
    client: number,
    key: string,
    createRevision: number,
    acquiredRevision: number,
  ): LockRecord => ({
    kind: "lock",
    client,
    prefix: "/l",
    key,
    lease: 0,
    createRevision,
    acquiredUs: 0,
    acquiredRevision,
    releasedUs: 1,
  });
  const fenced = (key: string, create: number, revision: number) =>
    op(
      1,
      revision,
      revision + 1,
      {
        type: "txn",
        compare: [{ key, target: "CREATE", result: "EQUAL", value: create }],
        success: [put("data", `${revision}`)],
        failure: [],
      },
      { type: "txn", revision, succeeded: true, responses: [{ type: "put", revision }] },
    );
  const locks = [rec(1, "/l/a", 2, 2), rec(2, "/l/b", 3, 4)];
  const ok = [fenced("/l/a", 2, 10), fenced("/l/a", 2, 11), fenced("/l/b", 3, 12)];
  assert.equal(checkLocks(history(ok, [], { locks }), r, 10).violations, []);
  const bad = [fenced("/l/a", 2, 10), fenced("/l/b", 3, 11), fenced("/l/a", 2, 12)];
  assert.equal(checkers(checkLocks(history(bad, [], { locks }), r, 10).violations), ["lock.ownership"]);
});

test("election.leadership: an Observe watch never sees the leader go back", () => {
  const steps: Step[] = [
    { request: put("/e/a", "one") },
    { request: put("/e/b", "two") },
    { request: { type: "delete", key: "/e/a" } },
  ];
  const r = new Reference(lives(steps));
  const record: LockRecord = {
    kind: "election",
    client: 1,
    prefix: "/e",
    key: "/e/a",
    lease: 0,
    createRevision: 2,
    acquiredUs: 0,
    acquiredRevision: 2,
    releasedUs: null,
  };
  const observe = (events: WatchEvent[][]) =>
    watchRecord({ key: "/e/", rangeEnd: "/e0", startRevision: 2 }, [
      created(0, 1, 2),
      ...events.map((e, i) => resp(i + 1, 4, e)),
    ]);
  const a = kv("/e/a", "one", 2, 2, 1);
  const b = kv("/e/b", "two", 3, 3, 1);
  const good = observe([[ev("PUT", a)], [ev("PUT", b)], [ev("DELETE", kv("/e/a", "", 0, 4, 0))]]);
  assert.equal(checkLocks(history([], [good], { locks: [record] }), r, 10).violations, []);
  const back = observe([[ev("PUT", b)], [ev("PUT", a)]]);
  assert.ok(
    checkers(checkLocks(history([], [back], { locks: [record] }), r, 10).violations).includes(
      "election.leadership",
    ),
  );
});

// ---- liveness and the whole run -------------------------------------------------------------

test("liveness: a write and a read within the bound after the heal", () => {
  const probe = (writeOkUs: number | null, readOkUs: number | null): LivenessProbe => ({
    healedUs: 1_000_000,
    writeOkUs,
    readOkUs,
    boundUs: 10_000_000,
  });
  assert.equal(checkLiveness(probe(2_000_000, 2_100_000)), []);
  assert.equal(checkers(checkLiveness(probe(null, 2_100_000))), ["liveness"]);
  assert.equal(checkers(checkLiveness(probe(2_000_000, 12_000_000))), ["liveness"]);
});

function artifacts(h: History, members: MemberRecord[], extra: Partial<RunArtifacts> = {}): RunArtifacts {
  return {
    history: h,
    members,
    end: [],
    liveness: null,
    reports: [],
    endUs: 1_000_000,
    params: PARAMS,
    ...extra,
  };
}

test("validateRun: unknown writes settled by the reference; violations ordered by checker id", () => {
  const unknown = op(1, 0, null, put("z", "1"), {
    type: "error",
    code: "Unavailable",
    message: "etcdserver: request timed out",
  });
  const read = op(
    2,
    5000,
    6000,
    { type: "range", key: "z" },
    { type: "range", revision: 2, kvs: [kv("z", "1", 2, 2, 1)], count: 1, more: false },
  );
  const committed = lives([{ request: put("z", "1"), callId: unknown.id }]);
  const ok = validateRun(artifacts(history([unknown, read]), committed));
  assert.is(ok.verdict, "ok");
  assert.is(ok.linearizability.verdict, "linearizable");
  // the cluster never committed it, yet a read saw it
  const never = validateRun(
    artifacts(history([unknown, read]), lives([{ request: put("y", "0"), callId: 99_999 }])),
  );
  assert.ok(never.violations.some((v) => v.checker === "linearizability"));
  const report = {
    checker: "raft.election-safety",
    message: "two leaders in term 3",
    node: "m2",
    virtualUs: 7,
  };
  const acked = op(1, 0, 100, put("q", "1"), { type: "put", revision: 2 });
  const many = validateRun(
    artifacts(history([acked]), lives([{ request: put("q", "1"), callId: 123_456 }]), {
      reports: [report],
      liveness: { healedUs: 0, writeOkUs: null, readOkUs: null, boundUs: 1 },
    }),
  );
  const ids = many.violations.map((v) => v.checker);
  assert.equal(ids, [...ids].sort());
  assert.ok(ids.includes("durability") && ids.includes("liveness") && ids.includes("raft.election-safety"));
  assert.is(many.verdict, "violation");
});

test.run();
