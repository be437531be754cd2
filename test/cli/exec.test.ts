// `etcd-dst exec`: scripts in etcd's v3 JSON shape on the model, answered as etcd does
// (revisions, errors, txn branches, watch events after the last answer).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseScript, ScriptError } from "../../src/exec.js";
import { SAMPLE } from "./exec-sample.js";
import { cli, scratchDir } from "./io.js";

function script(text: string): string {
  const file = join(scratchDir(), "script.jsonl");
  writeFileSync(file, text);
  return file;
}

test("exec answers each request as etcd does, then the watch's events", async () => {
  const r = await cli("exec", script(SAMPLE));
  assert.is(r.code, 0, r.err);
  const lines = r.out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(lines[0], { header: { revision: 2 } });
  assert.equal(lines[1].prev_kv, { key: "a", create_revision: 2, mod_revision: 2, version: 1, value: "1" });
  assert.equal(lines[2].kvs[0].value, "1", "a read at revision 2 sees that revision");
  assert.equal(lines[3].error.code, "OutOfRange");
  assert.equal(lines[5].more, true);
  assert.is(lines[5].count, 2);
  assert.is(lines[6].succeeded, true);
  assert.equal(lines[7], { header: { revision: 5 }, ID: 7, TTL: 60 });
  assert.equal(lines[10].error.message, "etcdserver: mvcc: required revision has been compacted");
  assert.is(lines[11].deleted, 2);
  assert.equal(lines[12].error, { code: "NotFound", message: "etcdserver: requested lease not found" });
  const events = lines.slice(13);
  assert.ok(events.every((e) => e.watch === 0));
  assert.equal(
    events.map((e) => e.header.revision),
    [2, 3, 4, 5, 6],
    "one response per revision (a revoke of a lease without keys makes none)",
  );
  assert.equal(
    events.at(-1).events.map((e: { type: string; kv: { key: string } }) => `${e.type} ${e.kv.key}`),
    ["DELETE a", "DELETE a1"],
    "the range delete's two keys in one response",
  );
  // three members answer the same
  const three = await cli("exec", script(SAMPLE), "--members", "3");
  assert.is(three.out, r.out);
});

test("a malformed script exits 2 with its line number", async () => {
  for (const [text, line, what] of [
    ['{"put":{"key":"a"}}\n{"put":{"key":"a"', 2, "not JSON"],
    ['\n{"get":{"key":"a"}}', 2, "unknown request"],
    ['{"range":{"key":"a","limit":-1}}', 1, "limit"],
    ['{"txn":{"compare":[{"key":"a","target":"SIZE"}]}}', 1, "compare target"],
  ] as const) {
    const r = await cli("exec", script(text));
    assert.is(r.code, 2);
    assert.ok(r.err.includes(`:${line}:`) && r.err.includes(what), r.err);
  }
  assert.throws(
    () => parseScript('{"watch":{"key":"a","filters":["NOPE"]}}'),
    (e: unknown) => e instanceof ScriptError,
  );
  assert.is((await cli("exec")).code, 2);
});

test.run();
