// The monitor: how a model reports a broken property without throwing. A thrown
// exception would end the run and hide everything after it; a report becomes part of
// the run's verdict, and `models/` needs nothing from `src/` to make one.

export interface MonitorReport {
  /** A checker id from the CLI contract, e.g. `raft.election-safety`. */
  readonly checker: string;
  readonly message: string;
  /** The node where it was seen, if one. */
  readonly node?: string;
  readonly virtualUs: number;
  /** Structured facts for reports (term, index, ...). Plain data only. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Reports beyond this many per checker are counted, not kept (bounded memory). */
const KEEP_PER_CHECKER = 20;

export class Monitor {
  private readonly kept: MonitorReport[] = [];
  private readonly counts = new Map<string, number>();

  report(r: MonitorReport): void {
    const n = (this.counts.get(r.checker) ?? 0) + 1;
    this.counts.set(r.checker, n);
    if (n <= KEEP_PER_CHECKER) this.kept.push(r);
  }

  get reports(): readonly MonitorReport[] {
    return this.kept;
  }

  /** How many reports each checker made, including those not kept. */
  countOf(checker: string): number {
    return this.counts.get(checker) ?? 0;
  }

  get empty(): boolean {
    return this.kept.length === 0;
  }
}
