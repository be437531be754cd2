// The same seed gives the same run of the whole etcd model, event for event: the trace
// hash and the history are equal. A different seed gives a different run.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { historyToJson } from "../../src/history/io.js";
import { generateScenario } from "../../src/profiles.js";
import { runScenario } from "../../src/runner.js";

function run(seed: number): { hash: string; history: string; ops: number; faults: number } {
  const r = runScenario(generateScenario(seed, "etcd"));
  return {
    hash: r.traceHash,
    history: historyToJson(r.artifacts.history),
    ops: r.stats.ops,
    faults: r.stats.faults,
  };
}

test("an etcd run under faults replays exactly from its seed", () => {
  const a = run(7);
  const b = run(7);
  assert.ok(a.ops > 100 && a.faults > 0, `${a.ops} operations, ${a.faults} faults`);
  assert.is(a.hash, b.hash);
  assert.is(a.history, b.history);
  const other = run(8);
  assert.is.not(other.hash, a.hash);
});

test.run();
