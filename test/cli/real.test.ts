// `etcd-dst real`'s bad input is refused with exit 2 and a reason, before any etcd starts
// (the runs themselves are in test/real, under `npm run test:real`).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { cli } from "./io.js";

for (const [argv, reason] of [
  [["--faults", "kill,bogus"], /unknown fault 'bogus'/],
  [["--profile", "kubernetes"], /real runs the 'etcd' profile's traffic/],
  [["--duration", "20"], /needs a duration with a unit/],
  [["--duration", "1s"], /at least 2s/],
  [["--members", "0"], /--members must be an integer >= 1/],
  [["--members", "1", "--faults", "partition"], /partition needs 2 members/],
] as const)
  test(`real ${argv.join(" ")} exits 2: ${reason.source}`, async () => {
    const r = await cli("real", ...argv);
    assert.is(r.code, 2);
    assert.match(r.err, reason);
  });

test("real --help prints its synopsis", async () => {
  const r = await cli("real", "--help");
  assert.is(r.code, 0);
  assert.match(r.out, "etcd-dst real [--members N] [--duration DUR]");
});

test.run();
