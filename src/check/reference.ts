// The reference history: the requests the cluster committed, in log order, replayed
// through the etcd specification (etcd.ts) to give the state at every revision and the
// events each revision produced. etcd's robustness tests rebuild this from the members'
// WALs; the simulator records what every member applied, so WAL faults cannot blind it.
//
// An index applied with two different requests (a log entry lost and replaced: #14370)
// counts with the request applied last: that is what the cluster kept.
import type {
  ErrorResponse,
  KeyValue,
  KvRequest,
  KvResponse,
  TxnOp,
  WatchEvent,
} from "../../models/client/history.js";
import type { AppliedRecord, MemberRecord } from "../../models/etcd/cluster.js";
import { applyRequest, type EtcdState, INITIAL_ETCD_STATE, inRange, keyValueAt } from "./etcd.js";

export interface CommittedEntry {
  readonly index: number;
  readonly requestId: string;
  readonly request: KvRequest;
  /** The history operation that proposed it, if a client call did. */
  readonly callId: number | undefined;
  /** A revoke a leader's lessor proposed on expiry. */
  readonly expiry: boolean;
  /** When a member first applied it. */
  readonly appliedUs: number;
  /** The answer of the member that applied it first (a granted TTL, for instance). */
  readonly memberResponse: KvResponse | ErrorResponse;
  /** The specification's answer and the store's revision after it, on replay. */
  readonly response: KvResponse | ErrorResponse;
  readonly revision: number;
}

/** The events of one revision, in etcd's order (a txn's ops in order, ranges by key). */
export interface RevisionEvents {
  readonly revision: number;
  readonly entry: CommittedEntry;
  readonly events: readonly WatchEvent[];
}

export class Reference {
  /** In log order. */
  readonly entries: readonly CommittedEntry[];
  private readonly byCall = new Map<number, CommittedEntry>();
  /** The state after each revision (index = revision; 1 is the empty store). */
  private readonly states: EtcdState[] = [];
  /** The events of each revision that has some (dense by revision: walked per watch). */
  private readonly events: (RevisionEvents | undefined)[] = [];
  /** The revision each compaction committed set, in order. */
  readonly compactions: { readonly revision: number; readonly entry: CommittedEntry }[] = [];

  /** The revision of the initial state: reached before anything this reference saw. */
  readonly firstRevision: number;

  /**
   * `initial`: the store before the first entry (an epoch's, after a restore). `prior`:
   * the reference of the epoch before, whose history up to `initial`'s revision the
   * restored store still holds (a watch or a read at an older revision is served from it).
   */
  constructor(members: readonly MemberRecord[], initial: EtcdState = INITIAL_ETCD_STATE, prior?: Reference) {
    this.firstRevision = initial.revision;
    if (prior) {
      for (let r = 1; r <= initial.revision && r <= prior.lastRevision; r++) {
        const st = prior.stateAt(r);
        if (st && r < initial.revision) this.states[r] = st;
        const ev = prior.eventsAt(r);
        if (ev) this.events[r] = ev;
      }
      for (const c of prior.compactions) if (c.revision <= initial.revision) this.compactions.push(c);
    }
    // by raft index (dense): the record that counts, and when a member first applied it
    const latest: AppliedRecord[] = [];
    const firstAppliedUs: number[] = [];
    for (const m of members) {
      for (const rec of m.applied) {
        const seen = latest[rec.index];
        if (!seen || (seen.requestId !== rec.requestId && rec.atUs >= seen.atUs)) {
          latest[rec.index] = rec;
          firstAppliedUs[rec.index] = rec.atUs;
        } else if (seen.requestId === rec.requestId && rec.atUs < (firstAppliedUs[rec.index] as number))
          firstAppliedUs[rec.index] = rec.atUs;
      }
    }
    let state = initial;
    this.states[initial.revision] = state;
    const entries: CommittedEntry[] = [];
    for (let index = 0; index < latest.length; index++) {
      const rec = latest[index];
      if (rec === undefined) continue;
      const firstUs = firstAppliedUs[index] as number;
      const before = state;
      const applied = applyRequest(before, rec.request);
      state = applied.state;
      const entry: CommittedEntry = {
        index,
        requestId: rec.requestId,
        request: rec.request,
        callId: rec.callId,
        expiry: rec.expiry,
        appliedUs: firstUs,
        memberResponse: rec.response,
        response: applied.response,
        revision: state.revision,
      };
      entries.push(entry);
      if (entry.callId !== undefined) this.byCall.set(entry.callId, entry);
      if (state.revision > before.revision) {
        this.events[state.revision] = {
          revision: state.revision,
          entry,
          events: eventsOf(rec.request, applied.response, before, state),
        };
      }
      if (rec.request.type === "compact" && applied.response.type !== "error")
        this.compactions.push({ revision: rec.request.revision, entry });
      this.states[state.revision] = state;
    }
    this.entries = entries;
  }

  /** The highest revision the cluster committed. */
  get lastRevision(): number {
    return this.states.length - 1;
  }

  /** The state right after `revision` (null: never reached). */
  stateAt(revision: number): EtcdState | null {
    return revision >= 1 && revision < this.states.length ? (this.states[revision] ?? null) : null;
  }

  /** The committed entry a history operation proposed, if it was committed. */
  entryOf(callId: number): CommittedEntry | undefined {
    return this.byCall.get(callId);
  }

  /** Whether the run recorded call ids at all (imported histories do not). */
  get tracksCalls(): boolean {
    return this.byCall.size > 0;
  }

  eventsAt(revision: number): RevisionEvents | undefined {
    return this.events[revision];
  }

  /** The first event of `revision` on `key`, if that revision has one. */
  eventAt(revision: number, key: string): WatchEvent | undefined {
    const re = this.events[revision];
    if (re) for (const e of re.events) if (e.kv.key === key) return e;
    return undefined;
  }

  /** Events of revisions in [from, to] whose key `matches`, in order. */
  eventsBetween(from: number, to: number, matches: (e: WatchEvent) => boolean): WatchEvent[] {
    const out: WatchEvent[] = [];
    for (let r = Math.max(2, from); r <= Math.min(to, this.lastRevision); r++) {
      const re = this.events[r];
      if (re) for (const e of re.events) if (matches(e)) out.push(e);
    }
    return out;
  }

  /** The first revision at or after `from` with an event that `matches` (null: none yet). */
  firstEventAtOrAfter(from: number, matches: (e: WatchEvent) => boolean): WatchEvent | null {
    for (let r = Math.max(2, from); r <= this.lastRevision; r++) {
      const re = this.events[r];
      if (re) for (const e of re.events) if (matches(e)) return e;
    }
    return null;
  }

  /** When the cluster first reached `revision` (a member applied it); Infinity if never. */
  reachedUs(revision: number): number {
    if (revision <= this.firstRevision) return 0;
    return this.events[revision]?.entry.appliedUs ?? Number.POSITIVE_INFINITY;
  }
}

function tombstone(key: string, revision: number): KeyValue {
  return { key, value: "", createRevision: 0, modRevision: revision, version: 0, lease: 0 };
}

/** The watch events a committed request produced, in etcd's order. */
function eventsOf(
  req: KvRequest,
  response: KvResponse | ErrorResponse,
  before: EtcdState,
  after: EtcdState,
): WatchEvent[] {
  const rev = after.revision;
  const out: WatchEvent[] = [];
  // (built whole: a spread with an added prevKv takes V8's slow path, per event)
  const event = (type: "PUT" | "DELETE", kv: KeyValue, key: string): WatchEvent => {
    const prevKv = keyValueAt(before, key);
    return prevKv ? { type, kv, prevKv } : { type, kv };
  };
  const op = (o: TxnOp | KvRequest) => {
    if (o.type === "put") out.push(event("PUT", keyValueAt(after, o.key) as KeyValue, o.key));
    else if (o.type === "delete") {
      for (const k of before.kvs.keys)
        if (inRange(k, o.key, o.rangeEnd) && !after.kvs.has(k))
          out.push(event("DELETE", tombstone(k, rev), k));
    }
  };
  switch (req.type) {
    case "put":
    case "delete":
      op(req);
      break;
    case "txn":
      if (response.type === "txn") for (const o of response.succeeded ? req.success : req.failure) op(o);
      break;
    case "lease-revoke":
      for (const k of before.kvs.keys) if (!after.kvs.has(k)) out.push(event("DELETE", tombstone(k, rev), k));
      break;
  }
  return out;
}
