import { test } from "uvu";
import * as assert from "uvu/assert";
import { NodeClock, WALL_EPOCH_US } from "../../sim/clock.js";

test("a clock without drift follows true time from its boot reading", () => {
  const c = new NodeClock(5_000);
  assert.is(c.monoUs(0), 5_000);
  assert.is(c.monoUs(1_000_000), 1_005_000);
  assert.is(c.wallUs(0), WALL_EPOCH_US + 5_000);
  assert.is(c.trueDelayUs(100_000), 100_000);
});

test("drift speeds the clock up or slows it down, without a jump", () => {
  const c = new NodeClock(0);
  c.setDriftPpm(1_000_000, 100_000); // +10% from t = 1 s
  assert.is(c.monoUs(1_000_000), 1_000_000);
  assert.is(c.monoUs(2_000_000), 2_100_000);
  assert.is(c.trueDelayUs(110_000), 100_000);
  c.setDriftPpm(2_000_000, -500_000); // half speed from t = 2 s
  assert.is(c.monoUs(2_000_000), 2_100_000, "continuous across a drift change");
  assert.is(c.monoUs(4_000_000), 3_100_000);
  assert.throws(() => c.setDriftPpm(0, -1_000_000));
});

test("the wall clock jumps; the monotonic clock does not", () => {
  const c = new NodeClock(0);
  const mono = c.monoUs(10);
  c.jumpWallUs(-30_000_000);
  assert.is(c.monoUs(10), mono);
  assert.is(c.wallUs(10), WALL_EPOCH_US + 10 - 30_000_000);
});

test.run();
