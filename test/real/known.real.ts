// Known differences between etcd 3.4 (what apt installs) and the 3.5 behaviour the model
// follows, pinned: each test fails when either side changes (docs/fidelity.md).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execOnModel, parseScript } from "../../src/exec.js";
import { etcdBinary, execOnReal } from "../../src/real/etcd.js";

const script = (...lines: object[]) => parseScript(lines.map((l) => JSON.stringify(l)).join("\n"));

if (etcdBinary()) {
  test("progress with a watch from a future revision: etcd 3.4 reports below its start, the model stays silent (#20221)", async () => {
    const steps = script(
      { watch: { key: "f", start_revision: 10 } },
      { put: { key: "f", value: "1" } },
      { progress: {} },
    );
    const model = execOnModel(steps, 1);
    const real = await execOnReal(steps, 1);
    const put = { header: { revision: 2 } };
    assert.equal(model, [put]);
    // 3.4 answers a progress request at once with the current revision, on watch id -1
    assert.equal(real, [put, { watch: 0, header: { revision: 2 } }]);
  });
}

test.run();
