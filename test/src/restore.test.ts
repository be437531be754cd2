// Disaster recovery (the functional tester's
// SIGQUIT_AND_REMOVE_QUORUM_AND_RESTORE_LEADER_SNAPSHOT_FROM_SCRATCH): a run splits into
// epochs at the restore; writes after the snapshot are lost by design and counted; the
// restored store must be what the cluster had committed at the snapshot's revision.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { RunArtifacts } from "../../src/check/artifacts.js";
import { validateRun } from "../../src/check/validate.js";
import { generateScenario } from "../../src/profiles.js";
import { runScenario } from "../../src/runner.js";

const CASE = "SIGQUIT_AND_REMOVE_QUORUM_AND_RESTORE_LEADER_SNAPSHOT_FROM_SCRATCH";

const run = (seed: number, profile: string) => runScenario(generateScenario(seed, profile, CASE));

test("a restore from scratch passes every check, and the writes after the snapshot are counted as lost", () => {
  const r = run(1, "etcd");
  assert.is(r.validation.verdict, "ok", JSON.stringify(r.validation.violations.slice(0, 2)));
  const restore = r.stats.restore;
  assert.ok(restore, "the run says it restored");
  assert.is(restore.restores, 1);
  assert.ok(restore.lostWrites > 0, "writes were acknowledged between the snapshot and the disaster");
  const at = r.artifacts.restores?.[0]?.atUs as number;
  const acked = r.artifacts.history.operations.filter((o) => o.response && o.response.type !== "error");
  assert.ok(acked.some((o) => (o.returnUs as number) < at) && acked.some((o) => (o.returnUs as number) > at));
  // every member serves the new cluster at the end, and they agree
  const hashes = new Set(r.artifacts.end.map((e) => JSON.stringify(e.hashKv)));
  assert.is(hashes.size, 1);
  assert.ok(r.artifacts.end.every((e) => e.hashKv !== null));
});

test("without the epochs, the same run breaks: the revision went back", () => {
  const r = run(1, "etcd");
  const { restores: _, ...whole } = r.artifacts;
  const v = validateRun(whole as RunArtifacts);
  assert.is(v.verdict, "violation");
  assert.ok(v.violations.some((x) => x.checker === "revision-rollback" || x.checker === "linearizability"));
});

test("durability: a restored store that is not what the cluster committed at its revision", () => {
  const r = run(2, "etcd");
  assert.is(r.validation.verdict, "ok");
  const restore = r.artifacts.restores?.[0];
  assert.ok(restore && restore.state.kvs.length > 0);
  const [first, ...rest] = restore.state.kvs;
  const tampered: RunArtifacts = {
    ...r.artifacts,
    restores: [
      { ...restore, state: { ...restore.state, kvs: [{ ...first!, value: "never-written" }, ...rest] } },
    ],
  };
  const v = validateRun(tampered);
  const d = v.violations.find(
    (x) => x.checker === "durability" && x.message.includes("restored from a snapshot"),
  );
  assert.ok(d, JSON.stringify(v.violations.map((x) => x.checker)));
  assert.match(d.message, /never-written/);
});

test("the case runs on every profile's traffic (watches, leases, locks) without a false alarm", () => {
  for (const profile of ["kubernetes", "watch", "lease", "lock", "single-node"]) {
    const r = run(3, profile);
    assert.is(
      r.validation.verdict,
      "ok",
      `${profile}: ${JSON.stringify(r.validation.violations.slice(0, 2))}`,
    );
    assert.is(r.stats.restore?.restores, 1, profile);
  }
});

test.run();
