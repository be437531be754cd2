// The revision fast path (with settling of unknown outcomes) must give the same verdict
// as the raw full search, on random histories, valid and with planted anomalies.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkEtcdHistory } from "../../src/check/etcd-history.js";
import { type Anomaly, generateHistory } from "../../src/check/generate.js";
import { seedCount } from "../helpers.js";

const ANOMALIES: (Anomaly | undefined)[] = [
  undefined,
  "stale-read",
  "lost-write",
  "revision-back",
  "wrong-compare",
];

test(`fast path and settling agree with the full search (${seedCount(250, 3000)} random histories)`, () => {
  const tally = { linearizable: 0, "not-linearizable": 0, fast: 0, undecidedByFull: 0 };
  const n = seedCount(250, 3000);
  for (let s = 1; s <= n; s++) {
    const anomaly = ANOMALIES[s % ANOMALIES.length];
    const h = generateHistory({
      seed: `equivalence-${s}`,
      ops: 20 + (s % 8) * 15,
      unknownRate: [0, 0.03, 0.1][s % 3] as number,
      rich: s % 2 === 0,
      clients: 3 + (s % 5),
      ...(anomaly ? { anomaly } : {}),
    });
    const full = checkEtcdHistory(h, { fullSearchOnly: true, noSettle: true, budgetSteps: 2_000_000 });
    if (full.verdict === "unknown") {
      tally.undecidedByFull++;
      continue;
    }
    const fast = checkEtcdHistory(h, { quickStepsPerOp: 0 });
    assert.is(fast.verdict, full.verdict, `seed ${s} (${anomaly ?? "valid"})`);
    tally[full.verdict]++;
    if (fast.path === "fast") tally.fast++;
    // and as the runs use it: a short full search first
    assert.is(
      checkEtcdHistory(h).verdict,
      full.verdict,
      `seed ${s} (${anomaly ?? "valid"}), quick search first`,
    );
  }
  assert.ok(tally.linearizable > n / 5 && tally["not-linearizable"] > n / 5, JSON.stringify(tally));
  assert.ok(tally.fast > n / 5, `the fast path decided often: ${JSON.stringify(tally)}`);
  assert.ok(tally.undecidedByFull < n / 20, JSON.stringify(tally));
});

test.run();
