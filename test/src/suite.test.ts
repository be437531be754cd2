// The differential suite's generator (src/real/suite.ts): deterministic in its seed, each
// script on its own key prefix, and covering every request form and answer kind that the
// comparison with a real etcd must see. The comparison itself runs in `npm run test:real`.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prefixEnd } from "../../models/client/history.js";
import { execOnModel, parseScript } from "../../src/exec.js";
import { coverage, differences, firstDifference, SUITE, suiteBatches } from "../../src/real/suite.js";

const batches = [...suiteBatches({ ...SUITE, members: 1 })];

test("the suite is at least 200 scripts, drawn the same way every time", () => {
  assert.ok(SUITE.scripts >= 200);
  assert.is(
    batches.reduce((n, b) => n + b.scriptLines.length, 0),
    SUITE.scripts,
  );
  const again = [...suiteBatches({ ...SUITE, scripts: 40, members: 1 })];
  assert.equal(
    again.map((b) => b.text),
    batches.slice(0, 2).map((b) => b.text),
  );
  assert.is.not(batches[0]?.text, batches[1]?.text);
});

test("each script stays on its own key prefix", () => {
  let script = -1;
  for (const b of batches)
    for (const line of b.text.split("\n")) {
      const m = /^# script (\d+)$/.exec(line);
      if (m) script = Number(m[1]);
      if (!line.startsWith("{")) continue;
      for (const key of line.matchAll(/"(?:key|range_end)":"([^"]*)"/g))
        assert.ok(
          (key[1] as string).startsWith(`s${script}/`) || key[1] === prefixEnd(`s${script}/`),
          `${line} strays from script ${script}`,
        );
    }
});

test("the batch's model answers are what `exec` answers for its text", () => {
  const b = batches[1];
  assert.ok(b);
  assert.equal(execOnModel(parseScript(b.text), 1), b.model);
});

test("the suite covers every request form and answer kind it compares", () => {
  const seen = new Map<string, number>();
  for (const b of batches) coverage(b, seen);
  const need = [
    "put.prev_kv",
    "put.lease",
    "range.revision",
    "range.limit",
    "range.serializable",
    "range.keys_only",
    "range.count_only",
    "range: more",
    "delete_range.range_end",
    "delete_range.prev_kv",
    "txn.request_range.keys_only",
    "txn.request_range.count_only",
    "txn.request_range.revision",
    "txn.request_put.lease",
    "txn.request_delete_range.prev_kv",
    "compare.range_end",
    "txn: succeeded",
    "txn: failed",
    "compact.physical",
    "lease_grant",
    "lease_revoke",
    "lease_revoke: deleted keys",
    "watch.start_revision",
    "watch.prev_kv",
    "watch.filters",
    "watch.progress_notify",
    "watch.range_end",
    "progress",
    "watch response: events",
    "watch response: prev_kv",
    "watch response: compacted",
    "watch response: progress",
    "error: etcdserver: mvcc: required revision has been compacted",
    "error: etcdserver: mvcc: required revision is a future revision",
    "error: etcdserver: requested lease not found",
    "error: etcdserver: duplicate key given in txn request",
  ];
  for (const target of ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"])
    for (const result of ["EQUAL", "NOT_EQUAL", "GREATER", "LESS"]) need.push(`compare.${target}.${result}`);
  const missing = need.filter((k) => !seen.get(k));
  assert.equal(missing, []);
});

test("differences name the answer, its script line and the first differing field", () => {
  const b = batches[0];
  assert.ok(b);
  assert.equal(differences(b, b.model), []);
  const real = b.model.map((x) => structuredClone(x));
  (real[2] as { header: { revision: number } }).header.revision += 1;
  const d = differences(b, real);
  assert.is(d.length, 1);
  assert.match(d[0] as string, `answer 3, line ${b.answerLines[2]} (script 0): .header.revision: model`);
  assert.is(
    firstDifference({ kvs: [{ version: 1 }] }, { kvs: [{ version: 2 }] }),
    ".kvs[0].version: model 1, etcd 2",
  );
  assert.is(firstDifference([1], [1, 2]), "[1]: model undefined, etcd 2");
  assert.is(firstDifference({ a: 1 }, { a: 1 }), null);
});

test.run();
