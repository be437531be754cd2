// Known-answer histories from Porcupine's test data: every verdict must match.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { kvModel } from "../../src/check/kv.js";
import { checkLinearizability } from "../../src/check/linearizability.js";
import { registerModel } from "../../src/check/register.js";
import { parseJepsenLog } from "../../src/history/jepsen.js";
import { parsePorcupineKv } from "../../src/history/porcupine-kv.js";

import { TESTDATA } from "../helpers.js";

test("every Jepsen etcd log gets the verdict in EXPECTED.txt", () => {
  const dir = join(TESTDATA, "jepsen-etcd");
  const expected = new Map(
    readFileSync(join(dir, "EXPECTED.txt"), "utf8")
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/) as [string, string]),
  );
  const files = readdirSync(dir).filter((f) => f.endsWith(".log"));
  assert.is(files.length, expected.size);
  let bad = 0;
  for (const f of files) {
    const r = checkLinearizability(registerModel, parseJepsenLog(readFileSync(join(dir, f), "utf8")));
    assert.is(r.verdict, expected.get(f), f);
    if (r.verdict === "not-linearizable") {
      bad++;
      assert.ok(r.failure && r.failure.stuck.length > 0, `${f}: the failure names the stuck operations`);
    } else {
      assert.ok(r.witness?.[0] && r.witness[0].length > 0, `${f}: a witness order`);
    }
  }
  assert.ok(bad > 0 && bad < files.length, "both verdicts occur");
});

test("every KV log: -ok is linearizable, -bad is not", () => {
  const dir = join(TESTDATA, "kv");
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".txt"))) {
    const r = checkLinearizability(kvModel(), parsePorcupineKv(readFileSync(join(dir, f), "utf8")));
    assert.is(r.verdict, f.includes("-ok") ? "linearizable" : "not-linearizable", f);
  }
});

test.run();
