// Per-node clocks. The simulator's own time is the truth; a node never sees it.
//
// - The monotonic clock runs at (1 + driftPpm/1e6) times true speed. Drift can change
//   during a run, but the clock is continuous: it never jumps. Timers, elections and
//   lease expiry run on it, as Go's monotonic time does inside etcd.
// - The wall clock is the monotonic clock plus an offset that faults can jump forward
//   or backward (NTP steps, a VM restored from a snapshot).

/** 2026-01-01T00:00:00Z in microseconds: a plausible epoch for wall clocks. */
export const WALL_EPOCH_US = 1_767_225_600_000_000;

export class NodeClock {
  private anchorTrueUs = 0;
  private anchorMonoUs: number;
  private rate: number; // 1e6 + driftPpm, so that integer math stays exact
  private wallOffsetUs: number;

  constructor(bootMonoUs: number, wallOffsetUs = WALL_EPOCH_US) {
    this.anchorMonoUs = bootMonoUs;
    this.rate = 1_000_000;
    this.wallOffsetUs = wallOffsetUs;
  }

  get driftPpm(): number {
    return this.rate - 1_000_000;
  }

  /** The node's monotonic reading at true time `trueUs`. */
  monoUs(trueUs: number): number {
    return this.anchorMonoUs + Math.floor(((trueUs - this.anchorTrueUs) * this.rate) / 1_000_000);
  }

  /** The node's wall-clock reading at true time `trueUs`. */
  wallUs(trueUs: number): number {
    return this.monoUs(trueUs) + this.wallOffsetUs;
  }

  /** Changes the drift from `trueUs` on, keeping the clock continuous. */
  setDriftPpm(trueUs: number, driftPpm: number): void {
    if (!(driftPpm > -1_000_000)) throw new RangeError(`drift ${driftPpm} ppm would stop the clock`);
    this.anchorMonoUs = this.monoUs(trueUs);
    this.anchorTrueUs = trueUs;
    this.rate = 1_000_000 + Math.round(driftPpm);
  }

  /** Steps the wall clock by `deltaUs` (negative goes back); monotonic time is unaffected. */
  jumpWallUs(deltaUs: number): void {
    this.wallOffsetUs += deltaUs;
  }

  /** Wall-clock offset from the monotonic clock, for reports. */
  get wallOffsetFromMonoUs(): number {
    return this.wallOffsetUs;
  }

  /**
   * True time that passes while this clock advances `localUs`. The conversion uses the
   * drift at the moment the timer is set; a later drift change does not move pending
   * timers (timers are short next to the interval between drift changes).
   */
  trueDelayUs(localUs: number): number {
    return Math.ceil((localUs * 1_000_000) / this.rate);
  }
}
