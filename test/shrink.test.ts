// The shrinker on a failing scenario (a planted bug): the result still fails with the
// same checker, is strictly smaller, replays deterministically, and is 1-minimal in
// faults (removing any one of them makes the failure go away).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generateScenario } from "../src/profiles.js";
import { runScenario } from "../src/runner.js";
import type { Scenario } from "../src/scenario.js";
import { measure, shrink, type Trial } from "../src/shrink.js";

function firstChecker(sc: Scenario): string | undefined {
  return [...new Set(runScenario(sc).validation.violations.map((v) => v.checker))].sort()[0];
}

test("a planted bug's failing scenario shrinks to a smaller one that fails the same way", async () => {
  const input: Scenario = { ...generateScenario(2, "single-node"), bugs: ["single-node-ack-before-fsync"] };
  const checker = firstChecker(input);
  assert.ok(checker, "the input fails");
  const fails = (sc: Scenario) => runScenario(sc).validation.violations.some((v) => v.checker === checker);
  const evaluate = async (cands: readonly Scenario[]): Promise<Trial[]> =>
    cands.map((sc) => {
      const r = runScenario(sc);
      return {
        fails: r.validation.violations.some((v) => v.checker === checker),
        ops: r.stats.ops,
        virtualMs: r.stats.virtualMs,
        events: r.stats.events,
      };
    });
  const result = await shrink(input, evaluate, { maxRuns: 400, batch: 1 });
  const out = result.scenario;
  assert.ok(result.complete, "ran to the end");
  assert.ok(fails(out), "still fails with the same checker");
  assert.ok(out.faults.length < input.faults.length, `${input.faults.length} -> ${out.faults.length} faults`);
  const [a, b] = [measure(out), measure(input)];
  assert.ok(a.join() !== b.join(), "strictly smaller");
  assert.is(runScenario(out).traceHash, runScenario(out).traceHash, "replays deterministically");
  for (let i = 0; i < out.faults.length; i++)
    assert.not.ok(fails({ ...out, faults: out.faults.filter((_, j) => j !== i) }), `fault ${i} is needed`);
  // the same seed without the bug does not fail: it is the bug the story shows
  assert.not.ok(fails({ ...out, bugs: [] }));
});

test.run();
