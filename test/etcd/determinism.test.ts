// The same seed gives the same run of the whole etcd model, event for event: the trace
// hash and the history are equal. A different seed gives a different run.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { KvRequest } from "../../models/client/history.js";
import { EtcdCluster } from "../../models/etcd/cluster.js";
import { Simulator } from "../../sim/index.js";
import { generateFaults, healAll, scheduleFaults } from "../../src/faults.js";
import { historyToJson } from "../../src/history/io.js";

function run(seed: string): { hash: string; history: string; events: number } {
  const sim = new Simulator({ seed });
  const c = new EtcdCluster(sim, {
    members: 3,
    server: { raft: { snapshotCount: 40, snapshotCatchUpEntries: 10 } },
  });
  const target = { sim, members: c.names, index: (n: string) => sim.nodeIndex(n) };
  scheduleFaults(
    target,
    generateFaults(sim.random.fork("faults"), {
      members: c.names,
      startUs: 1_000_000,
      endUs: 5_000_000,
      meanGapUs: 500_000,
      mix: { crash: 2, partition: 2, pause: 1, link: 1, "slow-disk": 1, "clock-drift": 1, failpoint: 1 },
      crashModes: ["keep", "lose", "torn"],
      failpoints: ["beforeCommit", "raftAfterSave", "compactBeforeSetFinishedCompact"],
      maxDown: 1,
    }),
  );
  for (let ci = 0; ci < 2; ci++) {
    const client = c.addClient();
    const rng = sim.random.fork(`load-${ci}`);
    const w = client.watch({ key: "k", rangeEnd: "l" });
    void w;
    let n = 0;
    const next = () => {
      if (sim.nowUs > 5_000_000) return;
      const key = `k${rng.int(0, 3)}`;
      const d = rng.int(0, 10);
      const req: KvRequest =
        d < 5
          ? { type: "put", key, value: `${ci}-${n++}` }
          : d < 8
            ? { type: "range", key }
            : { type: "delete", key };
      client.kv(req, () => sim.after(rng.int(0, 30_000), "think", next));
    };
    next();
  }
  sim.runUntil(5_000_000);
  healAll(target);
  sim.runUntil(7_000_000);
  return { hash: sim.trace.hash, history: historyToJson(c.recorder.history()), events: sim.stats.events };
}

test("an etcd run under faults replays exactly from its seed", () => {
  const a = run("replay-1");
  const b = run("replay-1");
  assert.ok(a.events > 500, `${a.events} events`);
  assert.ok(a.history.split("\n").length > 20, "a history worth comparing");
  assert.is(a.hash, b.hash);
  assert.is(a.history, b.history);
  const other = run("replay-2");
  assert.is.not(other.hash, a.hash);
});

test.run();
