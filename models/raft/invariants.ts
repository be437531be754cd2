// Raft's safety properties, checked while a simulation runs (Raft paper, Figure 3).
// The simulator sees every node, so one checker per run watches them all; nodes tell
// it what they did, and a broken property becomes a monitor report (with node, term,
// index and virtual time), never an exception that would end the run.
import { hashBytes } from "../../sim/index.js";
import type { RaftLog } from "./log.js";
import type { Entry, HardState } from "./types.js";

export type Report = (
  checker: string,
  node: string,
  message: string,
  details: Record<string, unknown>,
) => void;

interface Vote {
  readonly term: number;
  readonly vote: number;
}

export class RaftInvariants {
  /** term → the node that led it */
  private readonly leaders = new Map<number, string>();
  // log matching: the first entry persisted at each index (a dense array), and the
  // digest of any other term's there (a replaced tail: rare). Entries travel between
  // nodes uncopied, so the same data is the usual case and is told without hashing.
  private readonly seenEntry: Entry[] = [];
  private readonly seenOther = new Map<number, Map<number, number>>();
  /** index → the committed entry there */
  private readonly committedEntry: Entry[] = [];
  private maxCommitted = 0;
  /** leader term → the highest index its leader committed */
  private readonly commitByTerm = new Map<number, number>();
  /** per leader node: its term and the last index it created in that term */
  private readonly leaderLast = new Map<string, { term: number; lastIndex: number }>();
  /** per node: the newest term and vote known durable, and the newest vote it promised */
  private readonly durable = new Map<string, Vote>();
  private readonly promised = new Map<string, Vote>();
  private electedBefore = 0;

  constructor(private readonly report: Report) {}

  /**
   * Election safety, and leader completeness: the new leader of `term` holds every entry
   * committed by leaders of earlier terms. (A leader of an old term can still be elected
   * late, by delayed vote responses: it need not hold what later terms committed.)
   */
  becameLeader(node: string, term: number, log: RaftLog): void {
    const other = this.leaders.get(term);
    if (other !== undefined && other !== node) {
      this.report("raft.election-safety", node, `two leaders in term ${term}: ${other} and ${node}`, {
        term,
        leaders: [other, node],
      });
    } else {
      this.leaders.set(term, node);
    }
    this.leaderLast.delete(node);
    let required = 0;
    for (const [t, index] of this.commitByTerm) if (t < term && index > required) required = index;
    if (log.lastIndex() < required) {
      this.report(
        "raft.leader-completeness",
        node,
        `${node} became leader of term ${term} with last index ${log.lastIndex()}, below index ${required} committed in an earlier term`,
        { term, lastIndex: log.lastIndex(), committed: required },
      );
      return;
    }
    for (let i = Math.max(log.firstIndex(), 1); i <= required; i++) {
      const want = this.committedEntry[i]?.term;
      if (want === undefined) continue;
      const have = log.term(i);
      if (have !== want) {
        this.report(
          "raft.leader-completeness",
          node,
          `${node} became leader of term ${term} without committed entry ${i} (term ${want}; it has term ${have})`,
          { term, index: i, committedTerm: want, leaderTerm: have },
        );
        return;
      }
    }
  }

  /** The leader of `term` moved its commit index to `commit`: record what became committed. */
  leaderCommitted(node: string, term: number, log: RaftLog, commit: number): void {
    if ((this.commitByTerm.get(term) ?? 0) < commit) this.commitByTerm.set(term, commit);
    const from = Math.max(this.maxCommitted + 1, log.firstIndex());
    if (commit < from) return;
    const ents = log.slice(from, commit + 1) ?? [];
    for (const e of ents) this.committed(node, e, "committed");
  }

  /** Leader append-only: a leader only ever appends new indexes in its term. */
  leaderAppended(node: string, term: number, entries: readonly Entry[]): void {
    const first = entries[0];
    if (!first) return;
    // Only appends within one term are compared: a new term starts a new record.
    const last = this.leaderLast.get(node);
    if (last && last.term === term && first.index <= last.lastIndex) {
      this.report(
        "raft.leader-append-only",
        node,
        `leader ${node} of term ${term} rewrote its log from index ${first.index} (last was ${last.lastIndex})`,
        { term, index: first.index, lastIndex: last.lastIndex },
      );
    }
    this.leaderLast.set(node, { term, lastIndex: (entries[entries.length - 1] as Entry).index });
  }

  /** Log matching: two entries with the same index and term hold the same data. */
  entriesPersisted(node: string, entries: readonly Entry[]): void {
    for (const e of entries) {
      const first = this.seenEntry[e.index];
      let differs: boolean;
      if (first === undefined) {
        this.seenEntry[e.index] = e;
        continue;
      } else if (first.term === e.term) differs = !sameEntry(first, e);
      else {
        let byTerm = this.seenOther.get(e.index);
        if (!byTerm) this.seenOther.set(e.index, (byTerm = new Map()));
        const digest = entryDigest(e);
        const prior = byTerm.get(e.term);
        if (prior === undefined) byTerm.set(e.term, digest);
        differs = prior !== undefined && prior !== digest;
      }
      if (differs) {
        this.report("raft.log-matching", node, `entry ${e.index} of term ${e.term} differs between nodes`, {
          index: e.index,
          term: e.term,
        });
      }
    }
  }

  /** State machine safety: an index, once committed anywhere, holds the same entry everywhere. */
  applied(node: string, e: Entry): void {
    this.committed(node, e, "applied");
  }

  private committed(node: string, e: Entry, how: string): void {
    const prior = this.committedEntry[e.index];
    if (prior === undefined) {
      this.committedEntry[e.index] = e;
      if (e.index > this.maxCommitted) this.maxCommitted = e.index;
      return;
    }
    if (prior.term !== e.term || !sameEntry(prior, e)) {
      this.report(
        "raft.state-machine-safety",
        node,
        `${node} ${how} a different entry at index ${e.index} (term ${e.term}) than was committed before (term ${prior.term})`,
        { index: e.index, term: e.term, committedTerm: prior.term },
      );
    }
  }

  /** A vote was sent: the node promised it will not vote for anyone else in that term. */
  voteGranted(node: string, term: number, vote: number): void {
    const p = this.promised.get(node);
    if (!p || term > p.term) this.promised.set(node, { term, vote });
  }

  /** The WAL fsync finished with this hard state: term and vote never go back on disk. */
  hardStateDurable(node: string, hs: HardState): void {
    const d = this.durable.get(node);
    if (d && (hs.term < d.term || (hs.term === d.term && d.vote !== 0 && hs.vote !== d.vote))) {
      this.report(
        "raft.persisted-state",
        node,
        `${node} persisted term ${hs.term} vote ${hs.vote} after term ${d.term} vote ${d.vote}`,
        { term: hs.term, vote: hs.vote, previousTerm: d.term, previousVote: d.vote },
      );
    }
    if (!d || hs.term > d.term || (hs.term === d.term && hs.vote !== 0))
      this.durable.set(node, { term: hs.term, vote: hs.vote });
  }

  /** A restart recovered this hard state: it must hold what was durable and what was promised. */
  booted(node: string, hs: HardState): void {
    for (const [what, v] of [
      ["durable", this.durable.get(node)],
      ["promised", this.promised.get(node)],
    ] as const) {
      if (!v) continue;
      if (hs.term < v.term || (hs.term === v.term && v.vote !== 0 && hs.vote !== v.vote)) {
        this.report(
          "raft.persisted-state",
          node,
          `${node} restarted with term ${hs.term} vote ${hs.vote}, but had ${what} term ${v.term} vote ${v.vote}`,
          { term: hs.term, vote: hs.vote, [`${what}Term`]: v.term, [`${what}Vote`]: v.vote },
        );
      }
    }
    // What it restarted with is now its durable state (a disk fault may have lost more).
    this.durable.set(node, { term: hs.term, vote: hs.vote });
    const p = this.promised.get(node);
    if (p && (hs.term > p.term || hs.vote === p.vote)) this.promised.delete(node);
  }

  /** The node's data was wiped and it rejoins as a new member: its old promises are void. */
  forget(node: string): void {
    this.durable.delete(node);
    this.promised.delete(node);
    this.leaderLast.delete(node);
  }

  /**
   * A new cluster from the same members (a restore from backup): raft starts again at
   * term 0 and index 0, so nothing known about the old one applies.
   */
  reset(): void {
    this.electedBefore += this.leaders.size;
    for (const m of [
      this.leaders,
      this.seenOther,
      this.commitByTerm,
      this.leaderLast,
      this.durable,
      this.promised,
    ])
      m.clear();
    this.committedEntry.length = 0;
    this.seenEntry.length = 0;
    this.maxCommitted = 0;
  }

  /** How many terms elected a leader (across resets). */
  get leadersElected(): number {
    return this.electedBefore + this.leaders.size;
  }

  /** The highest index applied anywhere so far. */
  get committedIndex(): number {
    return this.maxCommitted;
  }
}

/** Same type and data: by identity when the bytes are shared, else by digest. */
function sameEntry(a: Entry, b: Entry): boolean {
  if (a.type !== b.type) return false;
  return a.data === b.data || entryDigest(a) === entryDigest(b);
}

export function entryDigest(e: Entry): number {
  return hashBytes(e.data) ^ (e.type << 30);
}
