// Each Raft invariant check on hand-built inputs: a case that breaks it and one that keeps it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { RaftInvariants } from "../../models/raft/invariants.js";
import { MemoryStorage, RaftLog } from "../../models/raft/log.js";
import { type Entry, EntryType } from "../../models/raft/types.js";

function checker(): { inv: RaftInvariants; reports: string[] } {
  const reports: string[] = [];
  return { inv: new RaftInvariants((checkerId, node) => reports.push(`${checkerId}@${node}`)), reports };
}

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

/** A log holding `entries` (stable). */
function log(entries: Entry[]): RaftLog {
  const s = new MemoryStorage();
  s.append(entries);
  const l = new RaftLog(s);
  l.committed = 0;
  return l;
}

test("election safety: two leaders in one term are reported, one per term is fine", () => {
  const { inv, reports } = checker();
  inv.becameLeader("m1", 2, log([]));
  inv.becameLeader("m2", 3, log([]));
  inv.becameLeader("m1", 2, log([])); // the same node again: fine
  assert.equal(reports, []);
  inv.becameLeader("m3", 3, log([]));
  assert.equal(reports, ["raft.election-safety@m3"]);
});

test("leader completeness: a leader of a later term must hold what earlier terms committed", () => {
  const { inv, reports } = checker();
  const l1 = log([entry(1, 1), entry(2, 1)]);
  inv.leaderCommitted("m1", 1, l1, 2);
  inv.becameLeader("m2", 2, log([entry(1, 1), entry(2, 1), entry(3, 2)]));
  assert.equal(reports, []);
  inv.becameLeader("m3", 3, log([entry(1, 1)]));
  assert.equal(reports, ["raft.leader-completeness@m3"], "too short");
  inv.becameLeader("m1", 4, log([entry(1, 1), entry(2, 3)]));
  assert.equal(reports.at(-1), "raft.leader-completeness@m1", "wrong term at a committed index");
});

test("leader completeness: a late leader of an old term need not hold later commits", () => {
  const { inv, reports } = checker();
  inv.leaderCommitted("m3", 3, log([entry(1, 1), entry(2, 3)]), 2);
  inv.becameLeader("m2", 2, log([entry(1, 1)]));
  assert.equal(reports, []);
});

test("log matching: the same index and term with different data is reported", () => {
  const { inv, reports } = checker();
  inv.entriesPersisted("m1", [entry(1, 1), entry(2, 1)]);
  inv.entriesPersisted("m2", [entry(1, 1), entry(2, 1), entry(3, 2)]);
  assert.equal(reports, []);
  inv.entriesPersisted("m3", [entry(2, 1, "other")]);
  assert.equal(reports, ["raft.log-matching@m3"]);
  // a replaced tail: another term at an index is fine, but that term's entry must match too
  inv.entriesPersisted("m1", [entry(3, 3, "new")]);
  inv.entriesPersisted("m2", [entry(3, 3, "new")]);
  assert.equal(reports, ["raft.log-matching@m3"]);
  inv.entriesPersisted("m3", [entry(3, 3, "newer")]);
  assert.equal(reports, ["raft.log-matching@m3", "raft.log-matching@m3"]);
});

test("leader append-only: a leader rewriting its log within its term is reported", () => {
  const { inv, reports } = checker();
  inv.leaderAppended("m1", 2, [entry(5, 2)]);
  inv.leaderAppended("m1", 2, [entry(6, 2), entry(7, 2)]);
  inv.leaderAppended("m1", 3, [entry(6, 3)]); // a new term starts over: fine
  assert.equal(reports, []);
  inv.leaderAppended("m1", 3, [entry(6, 3)]);
  assert.equal(reports, ["raft.leader-append-only@m1"]);
});

test("state machine safety: two different entries applied at one index are reported", () => {
  const { inv, reports } = checker();
  inv.applied("m1", entry(1, 1));
  inv.applied("m2", entry(1, 1));
  assert.equal(reports, []);
  inv.applied("m3", entry(1, 2, "lost-and-replaced"));
  assert.equal(reports, ["raft.state-machine-safety@m3"]);
  // the same term with other data, and the very same entry object again (told by identity)
  const shared = entry(2, 1);
  inv.applied("m1", shared);
  inv.applied("m2", shared);
  assert.equal(reports.length, 1);
  inv.applied("m3", entry(2, 1, "other"));
  assert.equal(reports, ["raft.state-machine-safety@m3", "raft.state-machine-safety@m3"]);
});

test("persisted state: term and vote never go back on disk, and a sent vote survives a restart", () => {
  const { inv, reports } = checker();
  inv.hardStateDurable("m1", { term: 2, vote: 3, commit: 0 });
  inv.hardStateDurable("m1", { term: 3, vote: 0, commit: 0 });
  inv.booted("m1", { term: 3, vote: 0, commit: 0 });
  assert.equal(reports, []);
  inv.hardStateDurable("m1", { term: 2, vote: 1, commit: 0 });
  assert.equal(reports, ["raft.persisted-state@m1"], "term went back");
  inv.voteGranted("m2", 5, 1);
  inv.booted("m2", { term: 5, vote: 0, commit: 0 });
  assert.equal(reports.at(-1), "raft.persisted-state@m2", "restarted without the vote it sent");
  const before = reports.length;
  inv.voteGranted("m3", 5, 1);
  inv.booted("m3", { term: 5, vote: 1, commit: 0 });
  assert.is(reports.length, before, "the vote survived");
});

test.run();
