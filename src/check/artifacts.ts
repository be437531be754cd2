// What a run leaves for the checkers: the client history, every entry each member applied
// (the simulator sees all of them), the members' end state, the liveness probe and the
// models' own reports. Plain data, so a saved run can be validated again.
import type { History } from "../../models/client/history.js";
import type { BackupRecord, MemberRecord, RestoreRecord } from "../../models/etcd/cluster.js";
import type { HashKv } from "../../models/etcd/protocol.js";
import type { MonitorReport } from "../../sim/index.js";

export interface MemberEnd {
  readonly name: string;
  readonly memberId: number;
  /** Null when the member is down at the end. */
  readonly hashKv: HashKv | null;
}

/** After the faults healed: when a probe write and a linearizable read first succeeded. */
export interface LivenessProbe {
  readonly healedUs: number;
  readonly writeOkUs: number | null;
  readonly readOkUs: number | null;
  readonly boundUs: number;
}

/** Bounds of the run that the checks rely on. */
export interface RunParams {
  readonly electionTimeoutUs: number;
  /** The largest clock drift the faults could cause, in parts per million. */
  readonly maxClockDriftPpm: number;
}

export interface RunArtifacts {
  readonly history: History;
  /** Every member life's applied entries (`EtcdCluster.records`). */
  readonly members: readonly MemberRecord[];
  readonly end: readonly MemberEnd[];
  readonly liveness: LivenessProbe | null;
  /** Property violations the models reported as the run went (raft's invariants). */
  readonly reports: readonly MonitorReport[];
  readonly endUs: number;
  readonly params: RunParams;
  /** With backup sidecars: uploads, validations, starts of serving and restores. */
  readonly backup?: BackupRecord;
  /** The cluster restored from a snapshot (disaster recovery): each begins an epoch. */
  readonly restores?: readonly RestoreRecord[];
}

/**
 * A broken property: the checker's id, one paragraph in plain words, and where to look
 * (virtual time, members, history operation and watch ids).
 */
export interface Violation {
  readonly checker: string;
  readonly message: string;
  readonly atUs?: number;
  readonly members?: readonly string[];
  readonly operations?: readonly number[];
  readonly watches?: readonly number[];
}

/** Formats virtual microseconds as seconds, for messages. */
export function secs(us: number): string {
  return `${(us / 1e6).toFixed(3)}s`;
}
