// The backup checks (issue: data-dir validation and the backup sidecar), and the epochs
// a one-member cluster's history splits into when its data may have gone back.
//
// - backup.stale-upload: no snapshot with a lower revision than the newest one in the
//   store is ever uploaded over it.
// - backup.start-on-bad-data: no member begins serving from a data dir holding bytes a
//   fault corrupted (the simulator knows which), nor a lone member at a revision below
//   the newest backup.
// - backup.restore-loss: every time a one-member cluster begins serving again, what it
//   serves up to the newest backup's revision is what the cluster had committed: a write
//   acknowledged before the last backup is never lost. Writes acknowledged after it may
//   be (faults outside etcd's assumptions): that loss window is reported, not failed.
//
// When a lone member begins serving again, its store is whatever its data dir (or a
// restore) gave it, which may be older than what clients saw: the history is checked one
// epoch at a time (epochs.ts), and the restore-loss check ties the epochs together.
import type { BackupRecord } from "../../models/etcd/cluster.js";
import type { Violation } from "./artifacts.js";
import { secs } from "./artifacts.js";
import { committedBy, differences, type Epoch, type LossWindow, listed, lossWindow } from "./epochs.js";
import type { Reference } from "./reference.js";

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
    // A lone member only: the sidecar checks the revision there alone (datavalidator.go).
    // In a cluster a member serves once its publish entry applies, possibly still behind
    // entries the leader has applied and backed up since; raft brings it up to date.
    if (s.state !== undefined && s.revision < s.newestBackup)
      out.push({
        checker: "backup.start-on-bad-data",
        message: `${s.member} began serving at ${secs(s.atUs)} at revision ${s.revision}, staler than the newest backup at revision ${s.newestBackup}`,
        atUs: s.atUs,
        members: [s.member],
      });
  }
  return out;
}

/** The epoch during which the newest backup epoch `k` began with was uploaded. */
function backupEpoch(epochs: readonly Epoch[], k: number): number | null {
  const e = epochs[k] as Epoch;
  const uploads = e.artifacts.backup?.uploads ?? [];
  let atUs: number | null = null;
  for (const u of uploads) if (u.revision === e.start.newestBackup && u.atUs <= e.start.atUs) atUs = u.atUs;
  if (atUs === null) return null;
  let j = 0;
  while (j + 1 < k && (epochs[j + 1] as Epoch).start.atUs <= atUs) j++;
  return j;
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
  for (let k = 1; k < epochs.length; k++) {
    const e = epochs[k] as Epoch;
    const start = e.initial;
    // the new store must be what the cluster had committed at its revision (a prefix of
    // the history), and reach the newest backup
    const problems: string[] = [];
    const backupRev = e.start.newestBackup;
    if (start.revision < backupRev) problems.push(`revisions ${start.revision + 1}..${backupRev} are gone`);
    const { epoch: from, problems: notCommitted } = committedBy(epochs, refs, k);
    problems.push(...notCommitted);
    // a store from an older life (a stale volume) holds that life's writes: up to the
    // newest backup they must be the ones the backup was taken from
    const taken = from === null || backupRev === 0 ? null : backupEpoch(epochs, k);
    if (from !== null && taken !== null && taken !== from) {
      const want = (refs[taken] as Reference).stateAt(backupRev);
      const have = (refs[from] as Reference).stateAt(backupRev);
      if (want && have)
        problems.push(...differences(want, have).map((d) => `at the backup's revision ${backupRev}, ${d}`));
    }
    if (problems.length > 0)
      violations.push({
        checker: "backup.restore-loss",
        message: `${e.start.member} began serving again at ${secs(e.start.atUs)} at revision ${start.revision}, not what the cluster had committed up to the newest backup (revision ${e.start.newestBackup}): ${listed(problems)}`,
        atUs: e.start.atUs,
        members: [e.start.member],
      });
  }
  return { violations, loss: lossWindow(epochs, refs) };
}
