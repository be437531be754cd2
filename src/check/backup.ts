// The backup checks (issue: data-dir validation and the backup sidecar), and the epochs
// a one-member cluster's history splits into when its data may have gone back.
//
// - backup.stale-upload: no snapshot with a lower revision than the newest one in the
//   store is ever uploaded over it.
// - backup.start-on-bad-data: no member begins serving from a data dir holding bytes a
//   fault corrupted (the simulator knows which), or at a revision below the newest backup.
// - backup.restore-loss: every time a one-member cluster begins serving again, what it
//   serves up to the newest backup's revision is what the cluster had committed: a write
//   acknowledged before the last backup is never lost. Writes acknowledged after it may
//   be (faults outside etcd's assumptions): that loss window is reported, not failed.
//
// Epochs: when a lone member begins serving again, its store is whatever its data dir
// (or a restore) gave it, which may be older than what clients saw. The history is then
// checked one epoch at a time, each from the store the member began serving with; the
// restore-loss check ties the epochs together.
import type { BackupRecord, ServeRecord } from "../../models/etcd/cluster.js";
import type { RunArtifacts, Violation } from "./artifacts.js";
import { secs } from "./artifacts.js";
import { type EtcdState, etcdStateOf, keyValueAt } from "./etcd.js";
import type { Reference } from "./reference.js";

/** Writes acknowledged and then lost with the data (faults outside etcd's assumptions). */
export interface LossWindow {
  /** Acknowledged writes whose revision the member no longer had when it served again. */
  readonly lostWrites: number;
  /** Their acknowledgement times: from the first to the last (null: none lost). */
  readonly fromUs: number | null;
  readonly toUs: number | null;
}

export function checkStaleUploads(b: BackupRecord): Violation[] {
  return b.uploads
    .filter((u) => u.revision < u.newestBefore)
    .map((u) => ({
      checker: "backup.stale-upload",
      message: `${u.member}'s sidecar uploaded a ${u.kind} snapshot at revision ${u.revision} over a store already holding revision ${u.newestBefore} (at ${secs(u.atUs)}): a restore would now lose revisions ${u.revision + 1}..${u.newestBefore}`,
      atUs: u.atUs,
      members: [u.member],
    }));
}

export function checkServes(b: BackupRecord): Violation[] {
  const out: Violation[] = [];
  for (const s of b.serves) {
    if (s.corrupted.length > 0)
      out.push({
        checker: "backup.start-on-bad-data",
        message: `${s.member} began serving at ${secs(s.atUs)} from a data dir with corrupted bytes in ${s.corrupted.join(", ")}`,
        atUs: s.atUs,
        members: [s.member],
      });
    if (s.revision < s.newestBackup)
      out.push({
        checker: "backup.start-on-bad-data",
        message: `${s.member} began serving at ${secs(s.atUs)} at revision ${s.revision}, staler than the newest backup at revision ${s.newestBackup}`,
        atUs: s.atUs,
        members: [s.member],
      });
  }
  return out;
}

/** One stretch of a lone member's history, from a start of serving to the next. */
export interface Epoch {
  readonly artifacts: RunArtifacts;
  readonly initial: EtcdState;
  readonly serve: ServeRecord;
}

/** Splits a one-member backup run at each start of serving (none: the run is one epoch). */
export function epochsOf(a: RunArtifacts): Epoch[] | null {
  const serves = (a.backup?.serves ?? []).filter((s) => s.state !== undefined);
  if (serves.length < 2) return null;
  // Each epoch is one process: from the validation that let it start (requests reach it
  // from then on) to the next one's. A request dies with the process that received it.
  const starts = (a.backup?.validations ?? []).map((v) => v.atUs);
  const bounds = serves.map((s, k) => {
    if (k === 0) return 0;
    const prev = (serves[k - 1] as ServeRecord).atUs;
    let from = s.atUs;
    for (const us of starts) if (us > prev && us <= s.atUs) from = us;
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
  return serves.map((serve, k) => {
    // its committed log: what it applied once serving, until the next start (a start that
    // never serves, such as a stale volume replaying its WAL and then restored over, may
    // apply a forked history at the same indexes; it belongs to no epoch)
    const from = serve.atUs;
    const to = starts.find((us) => us > from) ?? Number.POSITIVE_INFINITY;
    const h = a.history;
    const last = k === serves.length - 1;
    const artifacts: RunArtifacts = {
      ...a,
      history: {
        operations: h.operations.filter((o) => inEpoch(k, o.callUs, o.returnUs)),
        watches: h.watches.filter((w) => epochAt(w.callUs) === k),
        ...(h.keepAlives ? { keepAlives: h.keepAlives.filter((x) => epochAt(x.callUs) === k) } : {}),
        ...(h.locks ? { locks: h.locks.filter((x) => epochAt(x.acquiredUs) === k) } : {}),
      },
      members: a.members.map((m) => ({
        ...m,
        applied: m.applied.filter((e) => e.atUs >= from && e.atUs < to),
      })),
      end: last ? a.end : [],
      liveness: last ? a.liveness : null,
      reports: [],
    };
    return { artifacts, initial: etcdStateOf(serve.state as NonNullable<ServeRecord["state"]>), serve };
  });
}

/**
 * backup.restore-loss across epochs, and the loss window: at each new start, the store up
 * to the newest backup's revision must be the one the cluster had committed.
 */
export function checkEpochs(
  epochs: readonly Epoch[],
  /** Each epoch's committed reference (built by its validation). */
  refs: readonly Reference[],
): { violations: Violation[]; loss: LossWindow } {
  const violations: Violation[] = [];
  let lostWrites = 0;
  let fromUs: number | null = null;
  let toUs: number | null = null;
  for (let k = 1; k < epochs.length; k++) {
    const e = epochs[k] as Epoch;
    const prev = epochs[k - 1] as Epoch;
    const start = e.initial;
    // acknowledged writes of the last epoch that the new one does not have
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
    // the new store must be what the cluster had committed at its revision (a prefix of
    // the history), and reach the newest backup
    const problems: string[] = [];
    if (start.revision < e.serve.newestBackup)
      problems.push(`revisions ${start.revision + 1}..${e.serve.newestBackup} are gone`);
    let j = k - 1;
    while (j >= 0 && (epochs[j] as Epoch).initial.revision > start.revision) j--;
    const committed = j >= 0 ? (refs[j] as Reference).stateAt(start.revision) : null;
    if (committed) {
      for (const key of new Set([...committed.keys, ...start.keys])) {
        const want = keyValueAt(committed, key);
        const have = keyValueAt(start, key);
        if (want?.value !== have?.value || want?.modRevision !== have?.modRevision)
          problems.push(`${key} was ${show(want)}, is ${show(have)}`);
      }
    }
    if (problems.length > 0)
      violations.push({
        checker: "backup.restore-loss",
        message: `${e.serve.member} began serving again at ${secs(e.serve.atUs)} at revision ${start.revision}, not what the cluster had committed up to the newest backup (revision ${e.serve.newestBackup}): ${problems.slice(0, 5).join("; ")}${problems.length > 5 ? ` and ${problems.length - 5} more` : ""}`,
        atUs: e.serve.atUs,
        members: [e.serve.member],
      });
  }
  return { violations, loss: { lostWrites, fromUs, toUs } };
}

function show(kv: { readonly value: string; readonly modRevision: number } | undefined): string {
  return kv ? `${JSON.stringify(kv.value)}@${kv.modRevision}` : "absent";
}
