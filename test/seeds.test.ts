// The curated corpus: every scenario file in seeds/ replays to its `expect`.
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
}

test.run();
