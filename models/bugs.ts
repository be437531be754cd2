// The registry of planted bugs: etcd's (and Raft's) historical mistakes, each a switch
// read by the model at the place of the real mistake, off by default. The correct
// model never turns one on. `etcd-dst bugs` lists them (../shared/CLI.md).

export interface PlantedBug {
  readonly name: string;
  /** The etcd issue (or paper) the mistake comes from. */
  readonly etcdIssue: string;
  readonly summary: string;
  /** The profile in which fuzzing finds it. */
  readonly profile: string;
  /** Checker ids expected to detect it. */
  readonly detectors: readonly string[];
}

export const BUGS: readonly PlantedBug[] = [
  {
    name: "vote-granted-before-persist",
    etcdIssue: "Raft paper, Figure 2",
    summary:
      "a vote is sent before the hard state is fsynced; a crash that loses it lets the node vote twice in one term",
    profile: "etcd",
    detectors: ["raft.persisted-state", "raft.election-safety"],
  },
];

export const BUG_NAMES: readonly string[] = BUGS.map((b) => b.name);

/** The set of planted bugs switched on for a run. */
export class Bugs {
  private readonly on: ReadonlySet<string>;

  constructor(names: readonly string[] = []) {
    for (const n of names) if (!BUG_NAMES.includes(n)) throw new RangeError(`unknown bug '${n}'`);
    this.on = new Set(names);
  }

  has(name: string): boolean {
    return this.on.has(name);
  }

  get names(): string[] {
    return [...this.on].sort();
  }

  static readonly none = new Bugs();
}
