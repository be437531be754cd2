// Seeded random streams. One generator type everywhere (xor128: ~3 ns a draw, and one
// type keeps call sites monomorphic), always seeded with a string.
import seedrandom from "seedrandom";

type Xor128 = seedrandom.StatefulPRNG<seedrandom.State.Xor128>;

/** A saved stream: enough to resume it exactly where it was. */
export interface RandomState {
  readonly seed: string;
  readonly xor128: object;
}

/**
 * A named stream of random numbers. `fork(name)` derives an independent stream whose
 * seed is the parent's seed plus the name, so what one subsystem draws never shifts
 * another's draws: removing a fault while shrinking leaves the network's choices alone.
 */
export class Random {
  readonly seed: string;
  private readonly g: Xor128;

  constructor(seed: string, state?: object) {
    this.seed = seed;
    this.g = state
      ? seedrandom.xor128("", { state: state as seedrandom.State.Xor128 })
      : seedrandom.xor128(seed, { state: true });
  }

  /** An independent stream named `name` under this one; the same name gives the same stream. */
  fork(name: string): Random {
    return new Random(`${this.seed}/${name}`);
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.g();
  }

  /** An integer in [min, max). */
  int(min: number, max: number): number {
    const span = max - min;
    if (!(span > 0)) throw new RangeError(`Random.int: empty range [${min}, ${max})`);
    const u = span > 0x100000000 ? this.g.double() : this.g();
    return min + Math.floor(u * span);
  }

  /** A float in [min, max). */
  float(min: number, max: number): number {
    return min + this.g.double() * (max - min);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && (p >= 1 || this.g() < p);
  }

  /** One of `choices` by weight (weights need not sum to 1). */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    if (choices.length === 0) throw new RangeError("Random.weighted: no choices");
    let total = 0;
    for (const [, w] of choices) total += w;
    let x = this.float(0, total);
    for (const [c, w] of choices) {
      if (x < w) return c;
      x -= w;
    }
    return (choices[choices.length - 1] as readonly [T, number])[0];
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Random.pick: no items");
    return items[Math.floor(this.g() * items.length)] as T;
  }

  /** Shuffles in place (Fisher–Yates) and returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.g() * (i + 1));
      const t = items[i] as T;
      items[i] = items[j] as T;
      items[j] = t;
    }
    return items;
  }

  /** An exponential draw with the given mean (a float; 0 when the mean is 0). */
  exponential(mean: number): number {
    if (mean <= 0) return 0;
    return -mean * Math.log(1 - this.g());
  }

  /**
   * A latency in integer microseconds: `minUs` plus an exponential tail of mean
   * `meanExtraUs`, capped at `maxUs`. Variance between draws is what reorders messages.
   */
  latencyUs(minUs: number, meanExtraUs: number, maxUs: number): number {
    const v = minUs + Math.round(this.exponential(meanExtraUs));
    return Math.min(v, maxUs);
  }

  state(): RandomState {
    return { seed: this.seed, xor128: this.g.state() };
  }

  static restore(state: RandomState): Random {
    return new Random(state.seed, state.xor128);
  }
}
