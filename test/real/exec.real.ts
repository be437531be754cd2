// The model against a real etcd (Debian's etcd-server, 3.4): the same scripts through
// `etcd-dst exec` and `exec --real` must answer alike. Run by `npm run test:real`; says
// so and registers nothing when no etcd binary is installed.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { etcdBinary, etcdVersion } from "../../src/real/etcd.js";
import { SAMPLE } from "../cli/exec-sample.js";
import { cli, scratchDir } from "../cli/io.js";

const bin = etcdBinary();
if (!bin) {
  console.log("test:real SKIPPED: no etcd binary (apt-get install etcd-server, or set ETCD_BIN)");
} else {
  console.log(`test:real against ${bin} (etcd ${etcdVersion(bin)})`);
  for (const members of ["1", "3"])
    test(`the sample script answers alike on the model and on ${members} real member(s)`, async () => {
      const file = join(scratchDir(), "sample.jsonl");
      writeFileSync(file, SAMPLE);
      const model = await cli("exec", file, "--members", members);
      const real = await cli("exec", file, "--members", members, "--real");
      assert.is(real.code, 0, real.err);
      assert.is(real.out, model.out);
    });
}

test.run();
