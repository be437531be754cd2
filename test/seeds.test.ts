// The curated corpus: every scenario file in seeds/ replays to its `expect`; the planted
// bugs' files (bug-<name>.json) must also pass with the bug off.
import { readdirSync, readFileSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runScenario } from "../src/runner.js";
import { parseScenario } from "../src/scenario.js";

const DIR = new URL("../seeds/", import.meta.url).pathname;

for (const file of readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .sort()) {
  test(`seeds/${file} replays to its expectation`, () => {
    const sc = parseScenario(readFileSync(`${DIR}${file}`, "utf8"));
    assert.ok(sc.expect, "a corpus file says what it must give");
    const r = runScenario(sc);
    const got = [...new Set(r.validation.violations.map((v) => v.checker))].sort();
    assert.is(
      r.validation.verdict,
      sc.expect?.verdict,
      `${file}: ${r.validation.violations.map((v) => v.message.split("\n")[0]).join("; ")}`,
    );
    for (const c of sc.expect?.checkers ?? [])
      assert.ok(got.includes(c), `${file}: ${c} should fail (failed: ${got.join(", ") || "none"})`);
  });
  // a planted bug's scenario passes once the bug is off: the bug, not the schedule, fails it
  if (file.startsWith("bug-"))
    test(`seeds/${file} passes with its bugs off`, () => {
      const sc = parseScenario(readFileSync(`${DIR}${file}`, "utf8"));
      assert.ok(sc.bugs.length > 0, "a bug-* file switches its bug on");
      const r = runScenario(sc, { bugs: [] });
      assert.is(
        r.validation.verdict,
        "ok",
        `${file} without ${sc.bugs.join(", ")}: ${r.validation.violations.map((v) => v.message.split("\n")[0]).join("; ")}`,
      );
    });
}

test.run();
