// The Raft consensus core, a pure state machine in the style of etcd-io/raft: driven by
// tick(), step(message) and propose(), it hands out Ready batches and does no I/O.
// Election (PreVote, CheckQuorum, randomized timeouts), replication with rejection
// hints and flow control, ReadIndex, snapshots, single-step membership changes and
// leadership transfer follow etcd-io/raft (v3.6 semantics: the leader counts its own
// entries, and a candidate its own vote, only once they are durable).
import { decode, encode } from "../codec.js";
import { entrySize, type MemoryStorage, RaftLog } from "./log.js";
import { ReadOnly, type ReadOnlyOption } from "./readonly.js";
import { ProgressState, ProgressTracker, VoteResult } from "./tracker.js";
import {
  CAMPAIGN_TRANSFER,
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  fullMessage,
  type HardState,
  isEmptySnapshot,
  type Message,
  Msg,
  type MsgType,
  message,
  NO_ENTRIES,
  NO_MESSAGES,
  NONE,
  RaftPanic,
  type ReadState,
  type Ready,
  type Snapshot,
  type SoftState,
  StateType,
} from "./types.js";

export interface RaftConfig {
  readonly id: number;
  /** Ticks without hearing from a leader before campaigning (etcd: 10 ticks of 100 ms). */
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly storage: MemoryStorage;
  /** The last applied index when restarting (0: the snapshot's index). */
  readonly applied?: number;
  readonly maxSizePerMsg?: number;
  readonly maxInflightMsgs?: number;
  readonly maxCommittedSizePerReady?: number;
  readonly checkQuorum?: boolean;
  readonly preVote?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  readonly disableProposalForwarding?: boolean;
  /** A leader removed from the configuration steps down. */
  readonly stepDownOnRemoval?: boolean;
  /** Draws the randomized election timeout. */
  readonly random: { int(min: number, max: number): number };
  /**
   * Planted bug (etcd #14370, raft before 437bcb8): the leader counts its own entries
   * as replicated when it appends them, before they are durable. Off in the correct model.
   */
  readonly commitBeforeLeaderPersist?: boolean;
}

const LOCAL_MESSAGES = new Set<MsgType>([
  Msg.Hup,
  Msg.Beat,
  Msg.Unreachable,
  Msg.SnapStatus,
  Msg.CheckQuorum,
]);
const RESPONSE_MESSAGES = new Set<MsgType>([
  Msg.AppResp,
  Msg.VoteResp,
  Msg.HeartbeatResp,
  Msg.Unreachable,
  Msg.ReadIndexResp,
  Msg.PreVoteResp,
]);

function voteRespMsgType(t: MsgType): MsgType {
  return t === Msg.Vote ? Msg.VoteResp : Msg.PreVoteResp;
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encode({ type: cc.type, nodeId: cc.nodeId, context: cc.context ?? null });
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const d = decode<{ type: ConfChange["type"]; nodeId: number; context: Uint8Array | null }>(data);
  return d.context
    ? { type: d.type, nodeId: d.nodeId, context: d.context }
    : { type: d.type, nodeId: d.nodeId };
}

const EMPTY_DATA = new Uint8Array(0);
// A Ready's empty read-state list, shared (see NO_MESSAGES)
const NO_READ_STATES: readonly ReadState[] = [];

export class Raft {
  readonly id: number;
  term = 0;
  vote = NONE;
  readStates: ReadState[] = [];
  /** Set when a proposal stepped into this raft was dropped (see RawNode.propose). */
  proposalDropped = false;
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  state: StateType = StateType.Follower;
  isLearner = false;
  /** Messages that may be sent at once. */
  msgs: Message[] = [];
  /** Messages that depend on the Ready's state being durable (votes, append acks). */
  msgsAfterAppend: Message[] = [];
  lead = NONE;
  leadTransferee = NONE;
  /** Index of the last conf change proposed; a new one waits until it is applied. */
  pendingConfIndex = 0;
  readOnly: ReadOnly;
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  randomizedElectionTimeout = 0;
  private readonly disableProposalForwarding: boolean;
  private readonly stepDownOnRemoval: boolean;
  private readonly maxMsgSize: number;
  readonly maxCommittedSizePerReady: number;
  private readonly random: RaftConfig["random"];
  private readonly commitBeforeLeaderPersist: boolean;
  /** ReadIndex requests that wait for the leader's first commit in its term. */
  private pendingReadIndexMessages: Message[] = [];

  constructor(c: RaftConfig) {
    if (c.id === NONE) throw new RaftPanic("cannot use none as id");
    if (c.heartbeatTick <= 0 || c.electionTick <= c.heartbeatTick) {
      throw new RaftPanic("election tick must be greater than heartbeat tick, which must be positive");
    }
    this.id = c.id;
    this.raftLog = new RaftLog(c.storage);
    this.trk = new ProgressTracker(c.maxInflightMsgs ?? 256);
    this.readOnly = new ReadOnly(c.readOnlyOption ?? "safe");
    this.checkQuorum = c.checkQuorum ?? true;
    this.preVote = c.preVote ?? true;
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.stepDownOnRemoval = c.stepDownOnRemoval ?? true;
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxCommittedSizePerReady = c.maxCommittedSizePerReady ?? this.maxMsgSize;
    this.random = c.random;
    this.commitBeforeLeaderPersist = c.commitBeforeLeaderPersist ?? false;
    if (this.readOnly.option === "lease-based" && !this.checkQuorum) {
      throw new RaftPanic("CheckQuorum must be enabled when ReadOnlyOption is lease-based");
    }

    const hs = c.storage.hardState;
    this.trk.restore(c.storage.confState, this.raftLog.lastIndex());
    this.isLearner = this.trk.progress.get(this.id)?.isLearner ?? false;
    if (hs.term !== 0 || hs.vote !== NONE || hs.commit !== 0) this.loadState(hs);
    if ((c.applied ?? 0) > 0) this.raftLog.appliedTo(c.applied ?? 0);
    this.becomeFollower(this.term, NONE);
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new RaftPanic(
        `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  softState(): SoftState {
    return { lead: this.lead, state: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  // ---- sending ---------------------------------------------------------------------

  /** Queues a message, stamping `from` and (for non-vote messages) the current term. */
  private send(fields: Partial<Message> & Pick<Message, "type" | "to">): void {
    const t = fields.type;
    let term = fields.term ?? 0;
    if (t === Msg.Vote || t === Msg.VoteResp || t === Msg.PreVote || t === Msg.PreVoteResp) {
      if (term === 0) throw new RaftPanic(`term should be set when sending ${t}`);
    } else {
      if (term !== 0) throw new RaftPanic(`term should not be set when sending ${t} (was ${term})`);
      // A proposal or a forwarded read index is not tagged with a term: it may travel
      // to a leader of any term.
      if (t !== Msg.Prop && t !== Msg.ReadIndex) term = this.term;
    }
    this.queue(message(fields, this.id, term));
  }

  /** `send` for the hottest messages, whole (term and `from` stamped as `send` does). */
  private sendFull(
    type: MsgType,
    to: number,
    logTerm: number,
    index: number,
    entries: readonly Entry[],
    commit: number,
    context: string,
  ): void {
    this.queue(fullMessage(type, to, this.id, this.term, logTerm, index, entries, commit, context));
  }

  private queue(m: Message): void {
    const t = m.type;
    // Append acks and votes promise durable state: they wait for the Ready to be persisted.
    if (t === Msg.AppResp || t === Msg.VoteResp || t === Msg.PreVoteResp) this.msgsAfterAppend.push(m);
    else this.msgs.push(m);
  }

  /** Sends an append (or a snapshot) to `to` if its flow control allows. */
  private maybeSendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.term(prevIndex);
    let ents: Entry[] | null = [];
    // A throttled Replicate peer gets only empty appends, which still move the commit
    // index and, acked or rejected, free its window.
    if (pr.state !== ProgressState.Replicate || !pr.inflights.full()) {
      ents = this.raftLog.entries(pr.next, this.maxMsgSize);
    }
    if ((ents === null || ents.length === 0) && !sendIfEmpty) return false;
    if (prevTerm < 0 || ents === null) {
      // The entries are compacted: send the snapshot instead.
      if (!pr.recentActive) return false;
      const snapshot = this.raftLog.snapshot();
      if (isEmptySnapshot(snapshot)) throw new RaftPanic("need non-empty snapshot");
      pr.becomeSnapshot(snapshot.metadata.index);
      this.send({ type: Msg.Snap, to, snapshot });
      return true;
    }
    const commit = this.raftLog.committed;
    this.sendFull(Msg.App, to, prevTerm, prevIndex, ents, commit, "");
    pr.sentEntries(ents.length);
    pr.sentCommitTo(commit);
    return true;
  }

  private sendAppend(to: number): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: number, ctx: string): void {
    const pr = this.trk.progress.get(to);
    if (!pr) return;
    // A follower may not have all entries up to the leader's commit: send what it matches.
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.sendFull(Msg.Heartbeat, to, 0, 0, NO_ENTRIES, commit, ctx);
    pr.sentCommitTo(commit);
  }

  bcastAppend(): void {
    for (const id of this.trk.ids) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(ctx: string = this.readOnly.lastPendingRequestCtx()): void {
    for (const id of this.trk.ids) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ---- state transitions -------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    for (const id of this.trk.ids) {
      const pr = this.trk.progress.get(id);
      if (!pr) continue;
      pr.match = id === this.id ? last : 0;
      pr.next = last + 1;
      pr.sentCommit = 0;
      pr.state = ProgressState.Probe;
      pr.pendingSnapshot = 0;
      pr.recentActive = false;
      pr.msgAppFlowPaused = false;
      pr.inflights.reset();
    }
    this.pendingConfIndex = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.random.int(0, this.electionTimeout);
  }

  becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  private becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new RaftPanic("invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  private becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new RaftPanic("invalid transition [leader -> pre-candidate]");
    // Changes neither the term nor the vote: a PreVote round must not disrupt anyone.
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
  }

  private becomeLeader(): void {
    if (this.state === StateType.Follower) throw new RaftPanic("invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const pr = this.trk.progress.get(this.id);
    if (pr) {
      pr.becomeReplicate();
      pr.recentActive = true;
    }
    // Any entry up to the last may be a conf change: delay new ones until all commit.
    this.pendingConfIndex = this.raftLog.lastIndex();
    if (!this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_DATA }])) {
      throw new RaftPanic("empty entry was dropped");
    }
  }

  /** A node can campaign if it is a voter and not in the middle of applying a snapshot. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasNextOrInProgressSnapshot();
  }

  private hup(transfer: boolean, preVote: boolean): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(transfer ? "transfer" : preVote ? "pre-election" : "election");
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    const ents = this.raftLog.slice(this.raftLog.applied + 1, this.raftLog.committed + 1) ?? [];
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  private campaign(kind: "pre-election" | "election" | "transfer"): void {
    let term: number;
    let voteMsg: MsgType;
    if (kind === "pre-election") {
      this.becomePreCandidate();
      voteMsg = Msg.PreVote;
      // PreVote requests are for the next term, before our term moves.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = Msg.Vote;
      term = this.term;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voters) {
      if (id === this.id) {
        // Our own vote counts once it is durable: it goes through msgsAfterAppend.
        this.send({ type: voteRespMsgType(voteMsg), to: id, term });
        continue;
      }
      this.send({
        type: voteMsg,
        to: id,
        term,
        index: lastIndex,
        logTerm: lastTerm,
        context: kind === "transfer" ? CAMPAIGN_TRANSFER : "",
      });
    }
  }

  private poll(id: number, granted: boolean): VoteResult {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---- ticks ---------------------------------------------------------------------------

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(message({ type: Msg.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: Msg.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: Msg.Beat, from: this.id }));
    }
  }

  // ---- stepping ------------------------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // a local message
    } else if (m.term > this.term) {
      if (m.type === Msg.Vote || m.type === Msg.PreVote) {
        const force = m.context === CAMPAIGN_TRANSFER;
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        // Heard from a leader within the election timeout: ignore the vote request
        // (Raft thesis 4.2.3), unless it comes from a leadership transfer.
        if (!force && inLease) return;
      }
      if (m.type === Msg.PreVote) {
        // never change our term in response to a PreVote
      } else if (m.type === Msg.PreVoteResp && !m.reject) {
        // a granted pre-vote carries our future term: the term moves when we win
      } else if (m.type === Msg.App || m.type === Msg.Heartbeat || m.type === Msg.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === Msg.Heartbeat || m.type === Msg.App)) {
        // A stale leader (perhaps from before a partition) learns of our term from this
        // and steps down; without it, PreVote or CheckQuorum could leave it stuck.
        this.send({ type: Msg.AppResp, to: m.from });
      } else if (m.type === Msg.PreVote) {
        this.send({ type: Msg.PreVoteResp, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case Msg.Hup:
        this.hup(false, this.preVote);
        return;
      case Msg.Vote:
      case Msg.PreVote: {
        // We can vote if this repeats a vote we cast, if we have not voted and know no
        // leader in this term, or if it is a PreVote for a future term...
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === Msg.PreVote && m.term > this.term);
        // ...and the candidate's log is at least as up to date as ours.
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send({ type: voteRespMsgType(m.type), to: m.from, term: m.term });
          if (m.type === Msg.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ type: voteRespMsgType(m.type), to: m.from, term: this.term, reject: true });
        }
        return;
      }
      default:
        if (this.state === StateType.Leader) this.stepLeader(m);
        else if (this.state === StateType.Follower) this.stepFollower(m);
        else this.stepCandidate(m);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case Msg.Beat:
        this.bcastHeartbeat();
        return;
      case Msg.CheckQuorum: {
        if (!this.trk.quorumActive(this.id)) this.becomeFollower(this.term, NONE);
        // Mark everyone (but us) inactive for the next round.
        for (const id of this.trk.ids) {
          const pr = this.trk.progress.get(id);
          if (pr && id !== this.id) pr.recentActive = false;
        }
        return;
      }
      case Msg.Prop: {
        if (m.entries.length === 0) throw new RaftPanic(`${this.id} stepped empty MsgProp`);
        // removed from the configuration, or transferring leadership: dropped
        if (!this.trk.progress.has(this.id) || this.leadTransferee !== NONE) {
          this.proposalDropped = true;
          return;
        }
        const ents = m.entries.map((e, i) => {
          if (e.type !== EntryType.ConfChange) return e;
          const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
          if (alreadyPending) {
            // one pending conf change at a time: refuse it by proposing an empty entry
            return { term: 0, index: 0, type: EntryType.Normal, data: EMPTY_DATA };
          }
          this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
          return e;
        });
        if (!this.appendEntry(ents)) return;
        this.bcastAppend();
        return;
      }
      case Msg.ReadIndex: {
        // A single voter need not confirm anything with anyone.
        if (this.trk.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // A new leader serves no read until it committed an entry in its term (its
        // commit index might be behind the previous leader's).
        if (this.raftLog.term(this.raftLog.committed) !== this.term) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndexResponse(m);
        return;
      }
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case Msg.AppResp: {
        pr.recentActive = true;
        if (m.reject) {
          let nextProbe = m.rejectHint;
          if (m.logTerm > 0) [nextProbe] = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm);
          if (pr.maybeDecrTo(m.index, nextProbe)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
          if (pr.state === ProgressState.Probe) {
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.raftLog.firstIndex()) {
            // caught up from the snapshot: back to replicating from the log
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Replicate) {
            pr.inflights.freeLE(m.index);
          }
          if (this.maybeCommit()) {
            this.releasePendingReadIndexMessages();
            this.bcastAppend();
          } else if (m.from !== this.id && pr.canBumpCommit(this.raftLog.committed)) {
            this.sendAppend(m.from);
          }
          if (m.from !== this.id) while (this.maybeSendAppend(m.from, false)) {}
          if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex())
            this.sendTimeoutNow(m.from);
        }
        return;
      }
      case Msg.HeartbeatResp: {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (this.readOnly.option !== "safe" || m.context === "") return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (acks === null) return;
        if (this.trk.voteResult(this.trk.countVoters(acks), 0) !== VoteResult.Won) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case Msg.SnapStatus: {
        if (pr.state !== ProgressState.Snapshot) return;
        if (m.reject) pr.pendingSnapshot = 0; // probe from before the snapshot
        pr.becomeProbe();
        // Wait for an append response (or a heartbeat interval) before the next append.
        pr.msgAppFlowPaused = true;
        return;
      }
      case Msg.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      case Msg.TransferLeader: {
        if (pr.isLearner) return;
        const transferee = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return;
          this.leadTransferee = NONE;
        }
        if (transferee === this.id) return;
        // A transfer should finish within one election timeout.
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return;
      }
    }
  }

  private stepCandidate(m: Message): void {
    // Only answers to our current round count (a candidate may still get pre-votes).
    const myVoteResp = this.state === StateType.PreCandidate ? Msg.PreVoteResp : Msg.VoteResp;
    switch (m.type) {
      case Msg.Prop:
        this.proposalDropped = true; // no leader
        return;
      case Msg.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case Msg.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case Msg.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign("election");
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.Lost) {
          // a rejected pre-vote may carry a future term; keep ours
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case Msg.Prop:
        if (this.lead === NONE || this.disableProposalForwarding) {
          this.proposalDropped = true;
          return;
        }
        this.msgs.push({ ...m, to: this.lead });
        return;
      case Msg.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case Msg.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case Msg.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case Msg.TransferLeader:
        if (this.lead === NONE) return;
        this.msgs.push({ ...m, to: this.lead });
        return;
      case Msg.TimeoutNow:
        // A transfer campaigns at once, without PreVote: there is no partition to recover from.
        this.hup(true, false);
        return;
      case Msg.ReadIndex:
        if (this.lead === NONE) return;
        this.msgs.push({ ...m, to: this.lead });
        return;
      case Msg.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
    }
  }

  // ---- handlers ------------------------------------------------------------------------

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.sendFull(Msg.AppResp, m.from, 0, this.raftLog.committed, NO_ENTRIES, 0, "");
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew >= 0) {
      this.sendFull(Msg.AppResp, m.from, 0, lastNew, NO_ENTRIES, 0, "");
      return;
    }
    // Reject, and hint where our log may match: the largest index at or below the
    // leader's probe whose term is at most the probe's term.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const [index, term] = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send({
      type: Msg.AppResp,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: index,
      logTerm: term,
    });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(our match, its commit), so we hold it; if not, the log was
    // lost or truncated under us and commitTo panics, as etcd-io/raft does.
    this.raftLog.commitTo(m.commit);
    this.sendFull(Msg.HeartbeatResp, m.from, 0, 0, NO_ENTRIES, 0, m.context);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    if (this.restore(s)) {
      this.send({ type: Msg.AppResp, to: m.from, index: this.raftLog.lastIndex() });
    } else {
      this.send({ type: Msg.AppResp, to: m.from, index: this.raftLog.committed });
    }
  }

  /** Installs a snapshot from the leader; false if it is stale or does not apply. */
  private restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // defense in depth: only a follower installs snapshots
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) return false;
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // we have the snapshot's last entry: just fast-forward the commit index
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.trk.restore(cs, this.raftLog.lastIndex());
    this.afterConfigChange();
    return true;
  }

  private appendEntry(es: readonly Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    const ents: Entry[] = es.map((e, i) => ({
      term: this.term,
      index: li + 1 + i,
      type: e.type,
      data: e.data,
    }));
    const last = this.raftLog.append(ents);
    if (this.commitBeforeLeaderPersist) {
      // The pre-#14370 behaviour: count our own copy at once, durable or not.
      this.trk.progress.get(this.id)?.maybeUpdate(last);
      this.maybeCommit();
    } else {
      // Self-ack once durable (delivered back to us at advance()).
      this.sendFull(Msg.AppResp, this.id, 0, last, NO_ENTRIES, 0, "");
    }
    return true;
  }

  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  private sendTimeoutNow(to: number): void {
    this.send({ type: Msg.TimeoutNow, to });
  }

  private sendReadIndexResponse(m: Message): void {
    if (this.readOnly.option === "safe") {
      this.readOnly.addRequest(this.raftLog.committed, m.context, m);
      this.readOnly.recvAck(this.id, m.context);
      this.bcastHeartbeat(m.context);
    } else {
      // lease-based: trust that no other leader exists within the lease (clocks!)
      this.respondToReadIndex(m, this.raftLog.committed);
    }
  }

  private respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context });
      return;
    }
    this.sendFull(Msg.ReadIndexResp, req.from, 0, readIndex, NO_ENTRIES, 0, req.context);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (this.raftLog.term(this.raftLog.committed) !== this.term) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  // ---- membership ----------------------------------------------------------------------

  /** Applies a committed single-step change and returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    const last = this.raftLog.lastIndex();
    // node NONE: a change the application refused (etcd zeroes its NodeID and applies it)
    if (cc.nodeId !== NONE)
      switch (cc.type) {
        case ConfChangeType.AddNode:
          this.trk.makeVoter(cc.nodeId, last);
          break;
        case ConfChangeType.AddLearnerNode:
          this.trk.makeLearner(cc.nodeId, last);
          break;
        case ConfChangeType.RemoveNode:
          this.trk.remove(cc.nodeId);
          break;
      }
    return this.afterConfigChange();
  }

  private afterConfigChange(): ConfState {
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
    if ((!pr || this.isLearner) && this.state === StateType.Leader) {
      if (this.stepDownOnRemoval) this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      for (const id of this.trk.ids) if (id !== this.id) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    return cs;
  }
}

/**
 * The application's handle on Raft (etcd-io/raft's RawNode): tick, step, propose,
 * then ready() / advance() in a loop. Between ready() and advance() the node may keep
 * stepping messages; what it produces comes out in the next Ready.
 */
export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private stepsOnAdvance: Message[] = [];
  private inReady = false;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Starts a new cluster's log: one AddNode entry per initial member, committed at term 1
   * and applied to the configuration at once (etcd's StartNode, raft's Bootstrap).
   */
  bootstrap(peers: readonly number[]): void {
    const r = this.raft;
    if (r.raftLog.lastIndex() !== 0) throw new RaftPanic("can't bootstrap a nonempty Storage");
    const ents: Entry[] = peers.map((nodeId, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.AddNode, nodeId }),
    }));
    r.becomeFollower(1, NONE);
    r.raftLog.append(ents);
    r.raftLog.committed = ents.length;
    for (const nodeId of peers) r.applyConfChange({ type: ConfChangeType.AddNode, nodeId });
  }

  tick(): void {
    this.raft.tick();
  }

  campaign(): void {
    this.raft.step(message({ type: Msg.Hup }));
  }

  /**
   * Proposes data. Returns false when raft dropped it (etcd-io/raft's ErrProposalDropped:
   * no leader known, or a leadership transfer), so the caller can fail fast.
   */
  propose(data: Uint8Array): boolean {
    return this.stepProposal(EntryType.Normal, data);
  }

  proposeConfChange(cc: ConfChange): boolean {
    return this.stepProposal(EntryType.ConfChange, encodeConfChange(cc));
  }

  private stepProposal(type: EntryType, data: Uint8Array): boolean {
    this.raft.proposalDropped = false;
    const entries = [{ term: 0, index: 0, type, data }];
    this.raft.step(fullMessage(Msg.Prop, NONE, this.raft.id, 0, 0, 0, entries, 0, ""));
    return !this.raft.proposalDropped;
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Steps a message from a peer. Local message types and answers from unknown peers are ignored. */
  step(m: Message): void {
    if (LOCAL_MESSAGES.has(m.type)) return;
    if (RESPONSE_MESSAGES.has(m.type) && !this.raft.trk.progress.has(m.from)) return;
    this.raft.step(m);
  }

  /** Asks for a linearizable read index; the answer comes back as a ReadState with `ctx`. */
  readIndex(ctx: string): void {
    this.raft.step(fullMessage(Msg.ReadIndex, NONE, this.raft.id, 0, 0, 0, NO_ENTRIES, 0, ctx));
  }

  transferLeader(transferee: number): void {
    this.raft.step(message({ type: Msg.TransferLeader, from: transferee }));
  }

  reportUnreachable(id: number): void {
    this.raft.step(message({ type: Msg.Unreachable, from: id }));
  }

  reportSnapshot(id: number, failed: boolean): void {
    this.raft.step(message({ type: Msg.SnapStatus, from: id, reject: failed }));
  }

  hasReady(): boolean {
    const r = this.raft;
    const ps = this.prevSoftState;
    if (r.lead !== ps.lead || r.state !== ps.state) return true;
    const ph = this.prevHardState;
    const commit = r.raftLog.committed;
    if (
      (r.term !== ph.term || r.vote !== ph.vote || commit !== ph.commit) &&
      (r.term !== 0 || r.vote !== 0 || commit !== 0)
    )
      return true;
    if (r.raftLog.nextUnstableSnapshot() !== null) return true;
    if (r.msgs.length > 0 || r.msgsAfterAppend.length > 0) return true;
    if (r.raftLog.hasNextUnstableEnts() || r.raftLog.hasNextCommittedEnts(true)) return true;
    return r.readStates.length > 0;
  }

  ready(): Ready {
    if (this.inReady) throw new RaftPanic("ready() called before advance()");
    const r = this.raft;
    // called after every step: nothing is allocated for what did not change
    const ps = this.prevSoftState;
    const ph = this.prevHardState;
    const softChanged = r.lead !== ps.lead || r.state !== ps.state;
    const hardChanged = r.term !== ph.term || r.vote !== ph.vote || r.raftLog.committed !== ph.commit;
    const ss = softChanged ? r.softState() : ps;
    const hs = hardChanged ? r.hardState() : ph;
    const entries = r.raftLog.nextUnstableEnts();
    const committedEntries = r.raftLog.nextCommittedEnts(true, r.maxCommittedSizePerReady);
    const afterAppend = r.msgsAfterAppend;
    const rd: Ready = {
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      readStates: r.readStates.length > 0 ? r.readStates : NO_READ_STATES,
      entries,
      snapshot: r.raftLog.nextUnstableSnapshot(),
      committedEntries,
      messages: r.msgs.length > 0 ? r.msgs : NO_MESSAGES,
      messagesAfterPersist: afterAppend.length > 0 ? afterAppend.filter((m) => m.to !== r.id) : NO_MESSAGES,
      mustSync: entries.length > 0 || hs.vote !== ph.vote || hs.term !== ph.term,
    };
    // accept it
    if (softChanged) this.prevSoftState = ss;
    if (hardChanged) this.prevHardState = hs;
    for (const m of afterAppend) if (m.to === r.id) this.stepsOnAdvance.push(m);
    // the Ready keeps the arrays it took; an empty one stays with raft
    if (r.readStates.length > 0) r.readStates = [];
    if (r.msgs.length > 0) r.msgs = [];
    if (afterAppend.length > 0) r.msgsAfterAppend = [];
    r.raftLog.acceptUnstable();
    // (never index -1 of an empty array: V8 looks "-1" up as a property name, slowly)
    const n = committedEntries.length;
    if (n > 0) r.raftLog.acceptApplying((committedEntries[n - 1] as Entry).index);
    this.inReady = true;
    return rd;
  }

  /** The Ready was persisted, sent and applied. */
  advance(rd: Ready): void {
    if (!this.inReady) throw new RaftPanic("advance() without ready()");
    this.inReady = false;
    const r = this.raft;
    // Entries handed out may have been overwritten since; mark stable the newest that stands.
    for (let i = rd.entries.length - 1; i >= 0; i--) {
      const e = rd.entries[i] as Entry;
      const t = r.raftLog.term(e.index);
      if (t === e.term) {
        r.raftLog.stableTo(e.index, e.term);
        break;
      }
    }
    if (rd.snapshot) {
      r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
      r.raftLog.appliedTo(rd.snapshot.metadata.index);
    }
    const n = rd.committedEntries.length;
    if (n > 0) r.raftLog.appliedTo((rd.committedEntries[n - 1] as Entry).index);
    const steps = this.stepsOnAdvance;
    this.stepsOnAdvance = [];
    for (const m of steps) r.step(m);
  }

  get inProgress(): boolean {
    return this.inReady;
  }

  get status(): {
    id: number;
    term: number;
    vote: number;
    lead: number;
    state: StateType;
    commit: number;
    applied: number;
  } {
    const r = this.raft;
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      lead: r.lead,
      state: r.state,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
    };
  }
}

export { entrySize };
