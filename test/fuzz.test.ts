// The correct model under every fault within etcd's assumptions (mixed), and the backup
// sidecar under the faults outside them (backup): a bounded campaign here, many more seeds
// under `npm run test:long`. Each seed is also replayed to the same trace.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runJob } from "../src/fuzz.js";
import { seedCount, seeds } from "./helpers.js";

/** Every seed passes with no bug on, and runs twice to the same trace. */
function cleanAndReplays(profile: string, list: readonly number[]): void {
  const failures: string[] = [];
  for (const seed of list) {
    const out = runJob({ kind: "seed", seed, profile, bugs: [], timeoutMs: 120_000 });
    if (out.verdict !== "ok")
      failures.push(`seed ${seed}: ${out.verdict} ${out.messages.join("; ")}${out.error ?? ""}`);
    const again = runJob({ kind: "seed", seed, profile, bugs: [], timeoutMs: 120_000 });
    assert.is(again.traceHash, out.traceHash, `seed ${seed} replays`);
  }
  assert.equal(failures, []);
}

test("mixed profile: no violation, and every seed replays", () => {
  cleanAndReplays("mixed", seeds(seedCount(8, 400), 500));
});

test("backup profile: the correct flow passes, and every seed replays", () => {
  cleanAndReplays("backup", seeds(seedCount(12, 1000), 900));
});

test.run();
