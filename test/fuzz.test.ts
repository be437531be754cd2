// The correct model under every fault within etcd's assumptions: a bounded campaign here,
// many more seeds under `npm run test:long`. Each seed is also replayed to the same trace.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runJob } from "../src/fuzz.js";
import { seedCount, seeds } from "./helpers.js";

test("mixed profile: no violation, and every seed replays", () => {
  const failures: string[] = [];
  for (const seed of seeds(seedCount(8, 400), 500)) {
    const out = runJob({ kind: "seed", seed, profile: "mixed", bugs: [], timeoutMs: 120_000 });
    if (out.verdict !== "ok")
      failures.push(`seed ${seed}: ${out.verdict} ${out.messages.join("; ")}${out.error ?? ""}`);
    const again = runJob({ kind: "seed", seed, profile: "mixed", bugs: [], timeoutMs: 120_000 });
    assert.is(again.traceHash, out.traceHash, `seed ${seed} replays`);
  }
  assert.equal(failures, []);
});

test.run();
