// The differential suite: 200 scripts generated from a fixed seed (src/real/suite.ts), 20 per
// fresh cluster, each on its own key prefix, answered by the model and by a real etcd with
// one and with three members; every answer must be identical, field by field. A batch that
// differs is saved under .etcd-dst/diff/ to be rerun with `etcd-dst exec FILE --real`.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseScript } from "../../src/exec.js";
import { etcdBinary, execOnReal } from "../../src/real/etcd.js";
import { differences, SUITE, suiteBatches } from "../../src/real/suite.js";

if (etcdBinary())
  for (const members of [1, 3])
    test(`${SUITE.scripts} generated scripts answer alike on the model and on ${members} real member(s)`, async () => {
      const found: string[] = [];
      let b = 0;
      let answers = 0;
      for (const batch of suiteBatches({ ...SUITE, members })) {
        const real = await execOnReal(parseScript(batch.text), members);
        answers += real.length;
        const diffs = differences(batch, real);
        if (diffs.length) {
          const dir = join(".etcd-dst", "diff");
          mkdirSync(dir, { recursive: true });
          const base = join(dir, `members-${members}-batch-${b}`);
          writeFileSync(`${base}.jsonl`, batch.text);
          writeFileSync(`${base}.model`, batch.model.map((x) => JSON.stringify(x)).join("\n"));
          writeFileSync(`${base}.etcd`, real.map((x) => JSON.stringify(x)).join("\n"));
          found.push(`batch ${b} (${base}.jsonl): ${diffs.length} difference(s); first: ${diffs[0]}`);
        }
        b++;
      }
      console.log(`  ${members} member(s): ${b} batches, ${answers} answers compared`);
      assert.equal(found, []);
    });

test.run();
