// Shared test helpers.

/** True under `npm run test:long`, which runs the same suites with many more seeds. */
export const LONG = process.env.ETCD_DST_LONG === "1";

/** How many seeds a randomized test runs: bounded under `npm test`, many under test:long. */
export function seedCount(quick: number, long: number): number {
  return LONG ? long : quick;
}

/** Seeds 1..n as numbers. */
export function seeds(n: number, from = 1): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

/** Porcupine's known-answer histories (../shared/testdata/porcupine). */
export const TESTDATA = new URL("./data/porcupine", import.meta.url).pathname;
