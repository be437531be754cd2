// `etcd-dst check`: verdicts as exit codes, JSON on stdout only, clean errors.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generateHistory } from "../../src/check/generate.js";
import { historyToJson, historyToMsgpack } from "../../src/history/io.js";
import { TESTDATA } from "../helpers.js";
import { cli, scratchDir } from "./io.js";

test("exit 0 linearizable, 1 not, 3 unknown; --json prints one document", async () => {
  const ok = await cli("check", join(TESTDATA, "jepsen-etcd/etcd_002.log"), "--json");
  assert.is(ok.code, 0);
  const doc = JSON.parse(ok.out);
  assert.is(doc.verdict, "linearizable");
  assert.is(doc.ops, 77);
  assert.type(doc.wallMs, "number");
  const bad = await cli("check", join(TESTDATA, "kv/c10-bad.txt"));
  assert.is(bad.code, 1);
  assert.match(bad.out, /NOT linearizable/);
  assert.match(bad.out, /could be placed next/);
  const unknown = await cli("check", join(TESTDATA, "kv/c50-ok.txt"), "--budget", "100", "--json");
  assert.is(unknown.code, 3);
  assert.is(JSON.parse(unknown.out).verdict, "unknown");
});

test("etcd-dst histories as JSON and msgpack, with --format or detected", async () => {
  const dir = scratchDir();
  const h = generateHistory({ seed: "cli", ops: 300, unknownRate: 0.02 });
  writeFileSync(join(dir, "h.json"), historyToJson(h));
  writeFileSync(join(dir, "h.msgpack"), historyToMsgpack(h));
  for (const f of ["h.json", "h.msgpack"]) {
    const r = await cli("check", join(dir, f), "--json");
    assert.is(r.code, 0, f);
    assert.is(JSON.parse(r.out).verdict, "linearizable");
  }
  const bad = generateHistory({ seed: "cli", ops: 300, unknownRate: 0.02, anomaly: "stale-read" });
  writeFileSync(join(dir, "bad.json"), historyToJson(bad));
  assert.is((await cli("check", join(dir, "bad.json"), "--format", "etcd-dst")).code, 1);
});

test("bad usage and bad input: exit 2 with one line, the line number for a malformed file", async () => {
  const dir = scratchDir();
  writeFileSync(
    join(dir, "broken.log"),
    "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nthis is not a log line\n",
  );
  const broken = await cli("check", join(dir, "broken.log"));
  assert.is(broken.code, 2);
  assert.match(broken.err, /broken\.log:2:/);
  assert.is(broken.err.trim().split("\n").length, 1);
  assert.is((await cli("check")).code, 2);
  assert.is((await cli("check", join(dir, "missing.json"))).code, 2);
  assert.is((await cli("check", join(dir, "broken.log"), "--format", "yaml")).code, 2);
  assert.is((await cli("check", join(dir, "broken.log"), "--budget", "lots")).code, 2);
  writeFileSync(join(dir, "what.txt"), "hello\n");
  const what = await cli("check", join(dir, "what.txt"));
  assert.is(what.code, 2);
  assert.match(what.err, /--format/);
});

test.run();
