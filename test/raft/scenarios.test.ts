// Scripted scenarios for the Raft core, one rule each, in the spirit of etcd-io/raft's
// interaction tests: ticks, messages and partitions with the expected outcome.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ConfChangeType, Msg, StateType } from "../../models/raft/types.js";
import { msgName, TestCluster } from "./harness.js";

const { Follower, Leader, Candidate, PreCandidate } = StateType;

test("a node campaigns after its randomized election timeout and wins with PreVote", () => {
  const c = new TestCluster([1, 2, 3]);
  const n1 = c.node(1);
  const timeout = n1.raft.randomizedElectionTimeout;
  assert.ok(timeout >= 10 && timeout < 20, "timeout drawn from [T, 2T)");
  c.tick(1, timeout - 1);
  c.stabilize();
  assert.is(n1.raft.state, Follower, "not before the timeout");
  c.tick(1, 1);
  assert.is(n1.raft.state, PreCandidate);
  assert.is(n1.raft.term, 0, "a pre-candidate does not raise its term");
  c.stabilize();
  assert.is(n1.raft.state, Leader);
  assert.is(n1.raft.term, 1);
  assert.is(c.node(2).raft.lead, 1);
  assert.ok(c.delivered.some((m) => m.type === Msg.PreVote) && c.delivered.some((m) => m.type === Msg.Vote));
});

test("a proposal commits on a quorum and every node applies it in order", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "a");
  c.propose(2, "b"); // forwarded to the leader
  for (const id of [1, 2, 3]) assert.equal(c.appliedData(id), ["a", "b"]);
  assert.is(c.node(3).raft.raftLog.committed, 3, "no-op + 2 entries");
});

test("a vote is granted once per term and only to an up-to-date candidate", () => {
  const c = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
  c.elect(1);
  c.propose(1, "x");
  // node 3 misses entries, then campaigns: it is behind and must lose
  c.isolate(3);
  c.propose(1, "y");
  c.heal();
  c.isolate(1);
  c.elect(3);
  assert.is.not(c.node(3).raft.state, Leader, "a stale log cannot win");
  const rejections = c.delivered.filter((m) => m.type === Msg.VoteResp && m.to === 3 && m.reject);
  assert.ok(
    rejections.some((m) => m.from === 2),
    "node 2 refused: the candidate's log is behind",
  );
  // node 2 voted for nobody in that term, so it can still vote for 2 itself
  c.elect(2);
  assert.is(c.node(2).raft.state, Leader);
});

test("a partitioned old leader cannot commit; its entries are replaced after healing", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "before");
  c.isolate(1);
  c.node(1).raw.propose(new TextEncoder().encode("lost"));
  c.stabilize();
  assert.is(c.node(1).raft.state, Leader, "still thinks it leads");
  assert.equal(c.appliedData(1), ["before"], "cannot commit alone");
  c.elect(2);
  c.propose(2, "after");
  assert.equal(c.appliedData(3), ["before", "after"]);
  c.heal();
  c.tick(2, 1); // heartbeat: the old leader sees the new term
  c.stabilize();
  assert.is(c.node(1).raft.state, Follower);
  assert.equal(c.appliedData(1), ["before", "after"], "the uncommitted entry is overwritten");
  const log = c
    .node(1)
    .raft.raftLog.allEntries()
    .map((e) => new TextDecoder().decode(e.data));
  assert.not.ok(log.includes("lost"));
});

test("PreVote stops a rejoining node from disrupting a stable leader", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  const term = c.node(1).raft.term;
  c.isolate(3);
  c.tick(3, 50); // many election timeouts alone
  c.stabilize();
  assert.is(c.node(3).raft.term, term, "pre-votes fail without raising the term");
  c.heal();
  c.tick(3, 30);
  c.tick(1, 1);
  c.stabilize();
  assert.is(c.node(1).raft.state, Leader);
  assert.is(c.node(1).raft.term, term, "the leader was not disrupted");
  assert.is(c.node(3).raft.lead, 1);
});

test("without PreVote the same rejoin disrupts the leader (the test can fail)", () => {
  const c = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
  c.elect(1);
  const term = c.node(1).raft.term;
  c.isolate(3);
  c.tick(3, 50);
  c.stabilize();
  assert.ok(c.node(3).raft.term > term);
  c.heal();
  c.tick(3, 30);
  c.stabilize();
  assert.ok(c.node(1).raft.term > term, "the leader's term was bumped");
});

test("CheckQuorum makes an isolated leader step down after an election timeout", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.isolate(1);
  c.tick(1, 10);
  c.stabilize();
  assert.is(c.node(1).raft.state, Leader, "one round: the peers were active until now");
  c.tick(1, 10);
  c.stabilize();
  assert.is(c.node(1).raft.state, Follower);
});

test("a node that heard from a leader within the timeout ignores vote requests", () => {
  const c = new TestCluster([1, 2, 3], { preVote: false });
  c.elect(1);
  c.isolate(1);
  c.cutLink(3, 2); // node 2 does not hear node 3's campaign...
  c.node(3).raw.campaign();
  c.stabilize();
  c.heal();
  const t3 = c.node(3).raft.term;
  // ...and now gets its MsgVote while still in the leader's lease
  c.tick(2, 2);
  c.deliver([{ ...c.delivered.filter((m) => m.type === Msg.Vote && m.from === 3).at(-1)!, to: 2 }]);
  assert.ok(c.node(2).raft.term < t3, "the vote request was ignored: no term change");
});

test("a lagging follower catches up by snapshot once the leader compacted its log", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  for (let i = 0; i < 20; i++) c.propose(1, `v${i}`);
  const leader = c.node(1);
  const applied = leader.raft.raftLog.applied;
  leader.storage.createSnapshot(
    applied,
    { voters: [1, 2, 3], learners: [] },
    new TextEncoder().encode("state"),
  );
  leader.storage.compact(applied - 2);
  c.heal();
  c.tick(1, 1);
  c.stabilize();
  const n3 = c.node(3);
  assert.ok(
    c.delivered.some((m) => m.type === Msg.Snap && m.to === 3),
    "a snapshot was sent",
  );
  assert.is(n3.snapshotsApplied.length, 1);
  assert.is(n3.raft.raftLog.committed, leader.raft.raftLog.committed);
  c.propose(1, "after");
  assert.equal(c.appliedData(3).at(-1), "after");
});

test("a read index waits for the new leader's first commit in its term", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "x");
  // Node 2 wins an election but its no-op cannot commit yet (appends are dropped).
  c.ignore(Msg.App);
  c.isolate(1);
  c.elect(2);
  const n2 = c.node(2);
  assert.is(n2.raft.state, Leader);
  n2.raw.readIndex("r1");
  c.stabilize();
  assert.equal(n2.readStates, [], "no read before a commit in the new term");
  c.unignoreAll();
  c.tick(2, 1);
  c.stabilize();
  assert.equal(
    n2.readStates.map((r) => r.requestCtx),
    ["r1"],
  );
  assert.is(n2.readStates[0]?.index, n2.raft.raftLog.committed);
});

test("a safe read index needs a heartbeat round: an isolated leader serves none", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "x");
  c.isolate(1);
  c.node(1).raw.readIndex("stale?");
  c.stabilize();
  assert.equal(c.node(1).readStates, []);
  c.heal();
  c.node(2).raw.readIndex("via-follower");
  c.stabilize();
  assert.equal(
    c.node(2).readStates.map((r) => r.requestCtx),
    ["via-follower"],
    "followers forward to the leader",
  );
  const acked = c.delivered.filter((m) => m.type === Msg.HeartbeatResp && m.context === "via-follower");
  assert.ok(acked.length >= 1, "confirmed by a heartbeat round carrying the context");
});

test("a lease-based read index is served at once, without a heartbeat round", () => {
  const c = new TestCluster([1, 2, 3], { readOnlyOption: "lease-based" });
  c.elect(1);
  c.propose(1, "x");
  c.isolate(1);
  c.node(1).raw.readIndex("lease");
  c.stabilize();
  assert.equal(
    c.node(1).readStates.map((r) => r.requestCtx),
    ["lease"],
    "served while isolated",
  );
});

test("a rejected append skips back a term at a time using the hint", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  // node 1 builds a long uncommitted tail in term 1 while isolated
  c.isolate(1);
  for (let i = 0; i < 30; i++) c.node(1).raw.propose(new TextEncoder().encode(`stale${i}`));
  c.stabilize();
  c.elect(2);
  for (let i = 0; i < 40; i++) c.propose(2, `new${i}`);
  c.elect(3); // a leader that knows nothing of node 1's log: it probes from its last index
  c.heal();
  c.delivered.length = 0;
  c.tick(3, 1);
  c.stabilize();
  const rejects = c.delivered.filter((m) => m.type === Msg.AppResp && m.from === 1 && m.reject);
  assert.ok(
    rejects.length >= 1 && rejects.length <= 2,
    `probes: ${rejects.length} (not one per stale entry)`,
  );
  assert.is(rejects[0]?.rejectHint, 31, "the follower hints at its last index");
  assert.is(rejects[0]?.logTerm, 1, "with its term there");
  assert.equal(c.appliedData(1).slice(-2), ["new38", "new39"]);
  assert.not.ok(c.appliedData(1).includes("stale0"));
});

test("the leader stops sending appends when its inflight window is full", () => {
  const c = new TestCluster([1, 2, 3], { maxInflightMsgs: 2 });
  c.elect(1);
  c.ignore(Msg.AppResp);
  for (let i = 0; i < 5; i++) c.node(1).raw.propose(new TextEncoder().encode(`p${i}`));
  c.delivered.length = 0;
  c.stabilize();
  const appsTo2 = c.delivered.filter((m) => m.type === Msg.App && m.to === 2);
  assert.is(appsTo2.length, 2, "two appends in flight, then paused");
});

test("a leader counts its own entry only once durable; the #14370 switch commits at once", () => {
  for (const buggy of [false, true]) {
    const c = new TestCluster([1], { commitBeforeLeaderPersist: buggy });
    c.elect(1);
    const raw = c.node(1).raw;
    assert.is(raw.raft.state, Leader);
    raw.propose(new TextEncoder().encode("w"));
    const rd = raw.ready();
    assert.is(rd.entries.length, 1, "the entry is to be persisted");
    const committedSameReady = rd.committedEntries.some((e) => e.index === rd.entries[0]?.index);
    assert.is(
      committedSameReady,
      buggy,
      buggy ? "buggy: committed before durable" : "correct: not yet committed",
    );
    c.handleReady(1, rd);
    if (!buggy) {
      const next = raw.ready();
      assert.ok(
        next.committedEntries.some((e) => e.data.length === 1),
        "committed after the write is durable",
      );
    }
  }
});

test("a candidate's own vote counts only after it is persisted", () => {
  const c = new TestCluster([1], {});
  const n = c.node(1);
  n.raw.campaign(); // pre-vote round: single voter
  let rd = n.raw.ready();
  assert.is(n.raft.state, PreCandidate);
  n.raw.advance(rd); // self pre-vote stepped: now a candidate
  assert.is(n.raft.state, Candidate);
  rd = n.raw.ready();
  assert.is(rd.hardState?.vote, 1, "the vote is in the Ready to persist");
  assert.ok(rd.mustSync);
  assert.is(n.raft.state, Candidate, "not leader before the vote is durable");
  n.raw.advance(rd);
  assert.is(n.raft.state, Leader);
});

test("membership: add a learner, promote it, remove a voter; one change at a time", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.addNode(4, { voters: [], learners: [] });
  c.node(1).raw.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4 });
  c.stabilize();
  assert.equal(c.node(1).raft.trk.learners, [4]);
  c.tick(1, 1);
  c.stabilize();
  c.propose(1, "to-learner");
  assert.equal(c.appliedData(4).at(-1), "to-learner", "the learner receives entries");
  assert.not.ok(c.node(4).raft.promotable(), "a learner cannot campaign");
  // two changes proposed back to back: the second is refused (becomes an empty entry)
  c.node(1).raw.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: 4 });
  c.node(1).raw.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 });
  c.stabilize();
  assert.equal(c.node(1).raft.trk.voters, [1, 2, 3, 4], "promoted; the removal was refused");
  c.node(1).raw.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 });
  c.stabilize();
  assert.equal(c.node(1).raft.trk.voters, [1, 2, 4]);
  c.isolate(3);
  c.propose(1, "without-3");
  assert.equal(c.appliedData(4).at(-1), "without-3");
});

test("a removed leader steps down", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.node(1).raw.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1 });
  c.stabilize();
  assert.is(c.node(1).raft.state, Follower);
  c.expireLease(3); // node 3 stops hearing from the removed leader
  c.tick(2, 30);
  c.stabilize();
  assert.is(c.leader(), 2, "the remaining voters elect a leader among themselves");
});

test("leadership transfer: the transferee catches up, then campaigns at once", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.isolate(3);
  c.propose(1, "x");
  c.heal();
  c.node(1).raw.transferLeader(3);
  c.stabilize();
  assert.is(c.node(3).raft.state, Leader);
  assert.ok(c.delivered.some((m) => m.type === Msg.TimeoutNow && m.to === 3));
  const vote = c.delivered.find((m) => m.type === Msg.Vote && m.from === 3);
  assert.is(vote?.context, "CampaignTransfer", "transfer bypasses PreVote and the lease check");
  assert.equal(c.appliedData(3), ["x"]);
});

test("a restart rebuilds the node from its storage and re-applies committed entries", () => {
  const c = new TestCluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "a");
  c.propose(1, "b");
  const n2 = c.node(2);
  const { term, vote } = n2.raft;
  n2.restart();
  assert.is(n2.raft.term, term);
  assert.is(n2.raft.vote, vote);
  c.tick(1, 1);
  c.stabilize();
  assert.equal(c.appliedData(2), ["a", "b"]);
});

test("message names are readable", () => {
  assert.is(msgName({ type: Msg.ReadIndexResp } as never), "MsgReadIndexResp");
});

test.run();
