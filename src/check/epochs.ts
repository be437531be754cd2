// Epochs: stretches of a run that each begin from a store older, perhaps, than what the
// clients had seen. A lone member that its backup sidecar started on its volume or on a
// restored backup (models/backup), and a cluster the operator restored from a snapshot
// (the functional tester's SIGQUIT_AND_REMOVE_QUORUM_AND_RESTORE_LEADER_SNAPSHOT_FROM_SCRATCH)
// both serve a store whose revision may be lower than the last one acknowledged. Each
// epoch is checked on its own, from the store it began with; the checks that look across
// epochs (backup.restore-loss, and durability of a restore) compare each new store with
// what the cluster had committed at its revision. Writes acknowledged after the snapshot
// or backup a store came from are lost by design: that loss window is reported, not failed.
//
// A request dies with the process that received it, so each epoch owns the requests that
// returned while it served (and those still open whose call came shortly before it); a
// watch is held to the contract only up to the end of the epoch it was created in.
import type { StoreState } from "../../models/etcd/cluster.js";
import { proposerOf } from "../../models/etcd/protocol.js";
import type { RunArtifacts, Violation } from "./artifacts.js";
import { secs } from "./artifacts.js";
import { type EtcdState, etcdStateOf, keyValueAt } from "./etcd.js";
import type { Reference } from "./reference.js";

/** Where an epoch begins: a member starting to serve `state`. */
export interface EpochStart {
  readonly atUs: number;
  readonly member: string;
  /** The newest revision in the backup store then (0: no store, or empty). */
  readonly newestBackup: number;
  readonly state: StoreState;
  /** The process that began serving, as its request ids name it (a lone member's). */
  readonly proposer?: string;
}

export interface Epoch {
  readonly artifacts: RunArtifacts;
  readonly initial: EtcdState;
  readonly start: EpochStart;
}

/** Writes acknowledged and then lost with the data (a restore, or faults outside etcd's assumptions). */
export interface LossWindow {
  /** Acknowledged writes whose revision the store no longer had when it served again. */
  readonly lostWrites: number;
  /** Their acknowledgement times: from the first to the last (null: none lost). */
  readonly fromUs: number | null;
  readonly toUs: number | null;
}

const EMPTY_STORE: StoreState = { revision: 1, compactRevision: -1, kvs: [], leases: [] };

/** The epochs of a run (null: it is one). */
export function epochsOf(a: RunArtifacts): Epoch[] | null {
  const restores = a.restores ?? [];
  if (restores.length > 0) {
    // the cluster's first life from the empty store, then one epoch per restore
    const starts: EpochStart[] = [
      { atUs: 0, member: "", newestBackup: 0, state: EMPTY_STORE },
      ...restores.map((r) => ({ atUs: r.atUs, member: r.member, newestBackup: 0, state: r.state })),
    ];
    return splitEpochs(
      a,
      starts,
      restores.map((r) => r.atUs),
    );
  }
  const serves = (a.backup?.serves ?? []).filter((s) => s.state !== undefined);
  if (serves.length < 2) return null;
  return splitEpochs(
    a,
    serves.map((s) => ({ ...s, state: s.state as StoreState })),
    // each process starts with the validation that let it start
    (a.backup?.validations ?? []).map((v) => v.atUs),
  );
}

/**
 * Splits a run at each start of serving. `processStarts`: when processes started, so that
 * an epoch's requests are reckoned from its process's start, and its committed log ends
 * where the next process starts (a process that never served, such as a stale volume
 * replaying its WAL before being restored over, may apply a forked history at the same
 * indexes: it belongs to no epoch).
 */
function splitEpochs(
  a: RunArtifacts,
  starts: readonly EpochStart[],
  processStarts: readonly number[],
): Epoch[] {
  const bounds = starts.map((s, k) => {
    if (k === 0) return 0;
    const prev = (starts[k - 1] as EpochStart).atUs;
    let from = s.atUs;
    for (const us of processStarts) if (us > prev && us <= s.atUs) from = us;
    return from;
  });
  const epochAt = (us: number) => {
    let k = 0;
    while (k + 1 < bounds.length && (bounds[k + 1] as number) <= us) k++;
    return k;
  };
  // one on its way at a boundary may reach either side
  const spanUs = 1_000_000;
  const inEpoch = (k: number, callUs: number, returnUs: number | null): boolean => {
    // an answer, error or not, comes from the process serving when it returns
    if (returnUs !== null) return epochAt(returnUs) === k;
    const first = epochAt(callUs);
    return k === first || (k === first + 1 && (bounds[k] as number) < callUs + spanUs);
  };
  const windows = starts.map((start) => {
    const from = start.atUs;
    return { from, to: processStarts.find((us) => us > from) ?? Number.POSITIVE_INFINITY };
  });
  const inWindow = (us: number) => windows.some((w) => us >= w.from && us < w.to);
  return starts.map((start, k) => {
    const { from, to } = windows[k] as { from: number; to: number };
    const endUs = (bounds[k + 1] as number | undefined) ?? Number.POSITIVE_INFINITY;
    const h = a.history;
    const last = k === starts.length - 1;
    const artifacts: RunArtifacts = {
      ...a,
      history: {
        operations: h.operations.filter((o) => inEpoch(k, o.callUs, o.returnUs)),
        // a watch across the boundary is judged on what came before it
        watches: h.watches
          .filter((w) => epochAt(w.callUs) === k)
          .map((w) => (last ? w : { ...w, responses: w.responses.filter((r) => r.atUs < endUs) })),
        ...(h.keepAlives ? { keepAlives: h.keepAlives.filter((x) => epochAt(x.callUs) === k) } : {}),
        ...(h.locks ? { locks: h.locks.filter((x) => epochAt(x.acquiredUs) === k) } : {}),
      },
      members: a.members.map((m) => {
        const own = m.applied.filter((e) => e.atUs >= from && e.atUs < to);
        // Entries this epoch's process committed but died before applying: a later start
        // replays them from its WAL before it serves (or never serves). They are this
        // epoch's log, told by the proposing process in their request ids.
        const proposers = new Set(own.map((e) => proposerOf(e.requestId)));
        if (start.proposer !== undefined) proposers.add(start.proposer);
        const replayed = m.applied.filter(
          (e) => e.atUs >= to && !inWindow(e.atUs) && proposers.has(proposerOf(e.requestId)),
        );
        return { ...m, applied: replayed.length > 0 ? [...own, ...replayed] : own };
      }),
      end: last ? a.end : [],
      liveness: last ? a.liveness : null,
      reports: [],
      // what was alive when the epoch ended is judged at its end (the next epoch's store
      // came from elsewhere)
      endUs: last ? a.endUs : endUs,
    };
    return { artifacts, initial: etcdStateOf(start.state), start };
  });
}

/** Acknowledged writes of each epoch that the next one's store does not have. */
export function lossWindow(epochs: readonly Epoch[], refs: readonly Reference[]): LossWindow {
  let lostWrites = 0;
  let fromUs: number | null = null;
  let toUs: number | null = null;
  for (let k = 1; k < epochs.length; k++) {
    const prev = epochs[k - 1] as Epoch;
    const start = (epochs[k] as Epoch).initial;
    const acked = new Map<number, number>();
    for (const o of prev.artifacts.history.operations)
      if (o.returnUs !== null && o.response && o.response.type !== "error") acked.set(o.id, o.returnUs);
    let before = prev.initial.revision;
    for (const entry of (refs[k - 1] as Reference).entries) {
      const ackUs = entry.callId === undefined ? undefined : acked.get(entry.callId);
      if (entry.revision > before && entry.revision > start.revision && ackUs !== undefined) {
        lostWrites++;
        fromUs = fromUs === null ? ackUs : Math.min(fromUs, ackUs);
        toUs = toUs === null ? ackUs : Math.max(toUs, ackUs);
      }
      before = Math.max(before, entry.revision);
    }
  }
  return { lostWrites, fromUs, toUs };
}

/**
 * Which earlier epoch committed exactly the store epoch `k` begins with, at its revision.
 * A store may come from any earlier life of the cluster (a stale volume brings an older
 * fork back), so every earlier epoch that reached the revision is tried. None: the
 * differences from the latest one that reached it (none when it did not: nothing to say).
 */
export function committedBy(
  epochs: readonly Epoch[],
  refs: readonly Reference[],
  k: number,
): { epoch: number | null; problems: string[] } {
  const start = (epochs[k] as Epoch).initial;
  let first: string[] | null = null;
  for (let j = k - 1; j >= 0; j--) {
    if ((epochs[j] as Epoch).initial.revision > start.revision) continue;
    const committed = (refs[j] as Reference).stateAt(start.revision);
    if (!committed) {
      if (first === null) return { epoch: null, problems: [] };
      continue;
    }
    const problems = differences(committed, start);
    if (problems.length === 0) return { epoch: j, problems };
    first ??= problems;
  }
  return { epoch: null, problems: first ?? [] };
}

/** Keys whose value or mod revision differ, as `key was X, is Y`. */
export function differences(want: EtcdState, have: EtcdState): string[] {
  const problems: string[] = [];
  for (const key of new Set([...want.kvs.keys, ...have.kvs.keys])) {
    const w = keyValueAt(want, key);
    const h = keyValueAt(have, key);
    if (w?.value !== h?.value || w?.modRevision !== h?.modRevision)
      problems.push(`${key} was ${show(w)}, is ${show(h)}`);
  }
  return problems;
}

/**
 * durability across a restore from a snapshot: the restored store is what the cluster had
 * committed at the snapshot's revision.
 */
export function checkRestores(epochs: readonly Epoch[], refs: readonly Reference[]): Violation[] {
  const out: Violation[] = [];
  for (let k = 1; k < epochs.length; k++) {
    const e = epochs[k] as Epoch;
    const { problems } = committedBy(epochs, refs, k);
    if (problems.length > 0)
      out.push({
        checker: "durability",
        message: `${e.start.member} was restored from a snapshot at revision ${e.initial.revision} and served it from ${secs(e.start.atUs)}, but the cluster had committed something else at that revision: ${listed(problems)}`,
        atUs: e.start.atUs,
        members: [e.start.member],
      });
  }
  return out;
}

/** The first few problems, and how many more. */
export function listed(problems: readonly string[]): string {
  return `${problems.slice(0, 5).join("; ")}${problems.length > 5 ? ` and ${problems.length - 5} more` : ""}`;
}

function show(kv: { readonly value: string; readonly modRevision: number } | undefined): string {
  return kv ? `${JSON.stringify(kv.value)}@${kv.modRevision}` : "absent";
}
