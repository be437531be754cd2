// Raft's vocabulary, shaped like etcd-io/raft's raftpb: entries, hard state, snapshots,
// configuration changes and messages. Node ids are positive integers; 0 means none.

export const NONE = 0;

/** An assertion inside raft failed: etcd-io/raft panics here, and so the process dies. */
export class RaftPanic extends Error {}

export const EntryType = { Normal: 0, ConfChange: 1 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** A log entry. Shared between nodes in the simulation, so never mutated once created. */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** The application's payload (an empty array for the leader's no-op entry). */
  readonly data: Uint8Array;
}

/** What must be durable before a node acts on it (raftpb.HardState). */
export interface HardState {
  readonly term: number;
  readonly vote: number;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

/** Membership: etcd uses ConfChange v1 only, so there are no joint configurations. */
export interface ConfState {
  readonly voters: readonly number[];
  readonly learners: readonly number[];
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The application's state at `metadata.index`. */
  readonly data: Uint8Array;
}

export const EMPTY_SNAPSHOT: Snapshot = {
  metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  data: new Uint8Array(0),
};

export const ConfChangeType = { AddNode: 0, RemoveNode: 1, AddLearnerNode: 2 } as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** A single membership change (raftpb.ConfChange); `AddNode` on a learner promotes it. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: number;
  /** Opaque to raft (etcd puts the member's attributes here). */
  readonly context?: Uint8Array;
}

/** Message types, numbered for the hot path; `MSG_NAMES` gives the readable names. */
export const Msg = {
  Hup: 0,
  Beat: 1,
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  Snap: 7,
  Heartbeat: 8,
  HeartbeatResp: 9,
  Unreachable: 10,
  SnapStatus: 11,
  CheckQuorum: 12,
  TransferLeader: 13,
  TimeoutNow: 14,
  ReadIndex: 15,
  ReadIndexResp: 16,
  PreVote: 17,
  PreVoteResp: 18,
} as const;
export type MsgType = (typeof Msg)[keyof typeof Msg];

export const MSG_NAMES: readonly string[] = [
  "MsgHup",
  "MsgBeat",
  "MsgProp",
  "MsgApp",
  "MsgAppResp",
  "MsgVote",
  "MsgVoteResp",
  "MsgSnap",
  "MsgHeartbeat",
  "MsgHeartbeatResp",
  "MsgUnreachable",
  "MsgSnapStatus",
  "MsgCheckQuorum",
  "MsgTransferLeader",
  "MsgTimeoutNow",
  "MsgReadIndex",
  "MsgReadIndexResp",
  "MsgPreVote",
  "MsgPreVoteResp",
];

/**
 * One message shape for every type, as raftpb.Message: fields a type does not use stay
 * at their zero values. One shape keeps property access monomorphic in the hot path.
 */
export interface Message {
  /** Tells raft messages apart from other traffic on the simulated network. */
  readonly kind: "raft";
  readonly type: MsgType;
  readonly to: number;
  readonly from: number;
  readonly term: number;
  /** MsgApp: term of the entry before `entries`; vote requests: candidate's last term; rejections: hint term. */
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot: Snapshot | null;
  readonly reject: boolean;
  readonly rejectHint: number;
  /** Heartbeats carry the read-index request context; vote requests carry CAMPAIGN_TRANSFER. */
  readonly context: string;
}

/**
 * A shared empty message list (a Ready with nothing to send, a node with no early votes).
 * Read-only by type, not frozen: a frozen array has another map, and the loops that take
 * these would deoptimize on it.
 */
export const NO_MESSAGES: readonly Message[] = [];

export const NO_ENTRIES: readonly Entry[] = [];

/**
 * A message with every field at its zero value except those given (`from` and `term`
 * may come apart from `fields`, which saves a copy of them on the hot path).
 */
export function message(
  fields: Partial<Message> & Pick<Message, "type">,
  from = fields.from ?? NONE,
  term = fields.term ?? 0,
): Message {
  return {
    kind: "raft",
    type: fields.type,
    to: fields.to ?? NONE,
    from,
    term,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? NO_ENTRIES,
    commit: fields.commit ?? 0,
    snapshot: fields.snapshot ?? null,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    context: fields.context ?? "",
  };
}

/**
 * A message from every field but the rejection's, in `message`'s order, for the hottest
 * senders (appends, heartbeats, read indexes and their answers, proposals): `message`
 * reads its fields from literals of many shapes, which V8 can only do slowly
 * (megamorphic loads) where it does not inline.
 */
export function fullMessage(
  type: MsgType,
  to: number,
  from: number,
  term: number,
  logTerm: number,
  index: number,
  entries: readonly Entry[],
  commit: number,
  context: string,
): Message {
  return {
    kind: "raft",
    type,
    to,
    from,
    term,
    logTerm,
    index,
    entries,
    commit,
    snapshot: null,
    reject: false,
    rejectHint: 0,
    context,
  };
}

/** Vote requests with this context come from a leadership transfer and bypass the lease check. */
export const CAMPAIGN_TRANSFER = "CampaignTransfer";

export const StateType = { Follower: 0, Candidate: 1, Leader: 2, PreCandidate: 3 } as const;
export type StateType = (typeof StateType)[keyof typeof StateType];
export const ROLE_NAMES: Readonly<Record<StateType, string>> = [
  "follower",
  "candidate",
  "leader",
  "pre-candidate",
];
export const STATE_NAMES: readonly string[] = ["follower", "candidate", "leader", "pre-candidate"];

export interface SoftState {
  readonly lead: number;
  readonly state: StateType;
}

/** A read index served: the application may answer the read once it applied `index`. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: string;
}

/**
 * What the application must do now (raft.Ready): persist `hardState`, `entries` and
 * `snapshot`; send `messages` (after persisting, unless the node is the leader, whose
 * own messages may go out in parallel with its write, Raft thesis 10.2.1) and
 * `messagesAfterPersist` (votes and append acks: always after persisting); apply
 * `committedEntries`; hand `readStates` to waiting reads. Then call advance().
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly readStates: readonly ReadState[];
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  /** Whether the write must be fsynced: entries, or a term or vote change (raft.MustSync). */
  readonly mustSync: boolean;
}

export function isRaftMessage(m: unknown): m is Message {
  return (m as Message | null)?.kind === "raft";
}

export function isEmptySnapshot(s: Snapshot | null): boolean {
  return s === null || s.metadata.index === 0;
}
