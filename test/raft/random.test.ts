// Raft under random faults: crashes (losing unsynced writes, tearing the last write),
// restarts, partitions of every shape, pauses, clock drift and jumps, message loss,
// duplication and delay, slow disks. Every seed must keep Raft's invariants; after the
// faults heal, a proposal must commit within 10 s of virtual time, and every member
// must converge to the same applied state.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { memberStates, RAFT_LIVENESS_DEADLINE_US, runRaftScenario } from "../../src/raft-scenario.js";
import { seedCount, seeds } from "../helpers.js";

const QUICK = seedCount(60, 1000);

for (const members of [3, 5]) {
  test(`${members} members: invariants hold, a commit within 10 s of the heal, members converge (${QUICK} seeds)`, () => {
    let faults = 0;
    let crashes = 0;
    let terms = 0;
    for (const seed of seeds(QUICK, members * 10_000)) {
      const run = runRaftScenario(seed, { members });
      faults += run.faults;
      crashes += run.sim.stats.crashes;
      terms += run.cluster.member(0)?.raft.term ?? 0;
      assert.equal(run.sim.monitor.reports, [], `seed ${seed}: invariant violations`);
      assert.ok(
        run.recoveryUs >= 0 && run.recoveryUs < RAFT_LIVENESS_DEADLINE_US,
        `seed ${seed}: no commit within 10 s of the heal`,
      );
      assert.ok(run.converged, `seed ${seed}: members diverge: ${memberStates(run.cluster).join(" ")}`);
    }
    assert.ok(faults > QUICK * 5, `faults injected: ${faults}`);
    assert.ok(crashes > QUICK, `crashes: ${crashes}`);
    assert.ok(terms > QUICK * 1.5, `leader changes happened: ${terms}`);
  });
}

// Slow fsyncs widen the window between sending a vote and persisting it, as on an
// overloaded disk; crashes then lose the vote.
const VOTE_MIX = { crash: 4, "slow-disk": 4, partition: 2, pause: 1 };

test("the invariant checks can fail: a vote sent before it is durable is caught, and only then", () => {
  const caught: number[] = [];
  const checkers = new Set<string>();
  for (const seed of seeds(seedCount(300, 1000))) {
    const run = runRaftScenario(seed, { members: 3, voteBeforePersist: true, mix: VOTE_MIX });
    if (!run.sim.monitor.empty) {
      caught.push(seed);
      for (const r of run.sim.monitor.reports) checkers.add(r.checker);
      if (caught.length >= 3) break;
    }
  }
  assert.ok(caught.length >= 1, "caught within a few hundred seeds");
  assert.ok(
    checkers.has("raft.persisted-state") || checkers.has("raft.election-safety"),
    [...checkers].join(","),
  );
  for (const seed of caught) {
    const clean = runRaftScenario(seed, { members: 3, mix: VOTE_MIX });
    assert.equal(clean.sim.monitor.reports, [], `seed ${seed} passes with the bug off`);
  }
});

test("a single voter committing before its write is durable (etcd #14370) loses a committed entry", () => {
  const mix = { crash: 5, "slow-disk": 3 };
  const caught: number[] = [];
  for (const seed of seeds(seedCount(100, 500), 70_000)) {
    const run = runRaftScenario(seed, { members: 1, commitBeforeLeaderPersist: true, mix });
    if (run.sim.monitor.reports.some((r) => r.checker === "raft.state-machine-safety")) caught.push(seed);
    if (caught.length >= 3) break;
  }
  assert.ok(caught.length >= 1, "caught");
  for (const seed of caught) {
    assert.equal(
      runRaftScenario(seed, { members: 1, mix }).sim.monitor.reports,
      [],
      `seed ${seed} passes with it off`,
    );
  }
});

test.run();
