// Locks and elections (clientv3/concurrency), judged at the revision each holder was
// given, against the reference state there.
// - lock.ownership / election.leadership: when Lock (or Campaign) returned at revision R,
//   the caller's key existed at R with its create revision and was the oldest under the
//   prefix. #11456: Lock returned after a paused waiter's lease had expired.
// - Fenced writes (txns that compare the lock key's create revision) of two holders
//   never interleave in revision order.
// - election.leadership also: a watch on an election prefix (Observe) sees leaders in
//   revision order: the leader's create revision never goes back.
// Two holders can still overlap in real time (a pause past the lease TTL: Jepsen 2020);
// that is reported as an observation, not a violation: etcd locks need fencing.
import { type History, type LockRecord, prefixEnd } from "../../models/client/history.js";
import { secs, type Violation } from "./artifacts.js";
import type { Reference } from "./reference.js";

export interface Observation {
  readonly kind: string;
  readonly message: string;
}

export function checkLocks(
  history: History,
  ref: Reference,
  endUs: number,
): { violations: Violation[]; observations: Observation[] } {
  const violations: Violation[] = [];
  const observations: Observation[] = [];
  const records = history.locks ?? [];
  const checkerOf = (r: LockRecord) => (r.kind === "lock" ? "lock.ownership" : "election.leadership");
  const what = (r: LockRecord) => (r.kind === "lock" ? "lock" : "leadership");
  for (const r of records) {
    const state = ref.stateAt(r.acquiredRevision);
    const under = `${r.prefix}/`;
    let problem: string | null = null;
    if (!state) problem = `revision ${r.acquiredRevision} was never committed`;
    else {
      const mine = state.kvs.get(r.key);
      let oldest: { key: string; create: number } | null = null;
      for (const k of state.kvs.keys)
        if (k.startsWith(under)) {
          const c = (state.kvs.get(k) as { createRevision: number }).createRevision;
          if (!oldest || c < oldest.create) oldest = { key: k, create: c };
        }
      if (!mine) problem = `its key ${r.key} did not exist at revision ${r.acquiredRevision}`;
      else if (mine.createRevision !== r.createRevision)
        problem = `its key ${r.key} had create revision ${mine.createRevision} there, not ${r.createRevision}`;
      else if (oldest && oldest.key !== r.key)
        problem = `${oldest.key} (created at ${oldest.create}) was older than its key there`;
    }
    if (problem)
      violations.push({
        checker: checkerOf(r),
        message: `client ${r.client} was given the ${what(r)} ${r.prefix} at revision ${r.acquiredRevision} (${secs(r.acquiredUs)}), but ${problem}`,
        atUs: r.acquiredUs,
      });
  }
  // fenced writes, in revision order, come in one run per acquisition
  const holder = new Map<string, number>();
  records.forEach((r, i) => {
    holder.set(`${r.key}\0${r.createRevision}`, i);
  });
  const fenced: { rev: number; who: number; op: number }[] = [];
  for (const op of history.operations) {
    if (op.request.type !== "txn" || op.response?.type !== "txn" || !op.response.succeeded) continue;
    for (const c of op.request.compare) {
      if (c.target !== "CREATE" || c.result !== "EQUAL") continue;
      const who = holder.get(`${c.key}\0${c.value}`);
      if (who !== undefined) fenced.push({ rev: op.response.revision, who, op: op.id });
    }
  }
  fenced.sort((a, b) => a.rev - b.rev);
  // per lock: once a holder's run of fenced writes ended, no more of them
  const closed = new Set<number>();
  const lastByPrefix = new Map<string, (typeof fenced)[number]>();
  for (const cur of fenced) {
    const r = records[cur.who] as LockRecord;
    const prev = lastByPrefix.get(r.prefix);
    lastByPrefix.set(r.prefix, cur);
    if (!prev || prev.who === cur.who) continue;
    closed.add(prev.who);
    if (closed.has(cur.who)) {
      violations.push({
        checker: checkerOf(r),
        message: `fenced writes on ${r.prefix} interleave: client ${r.client}'s write at revision ${cur.rev} came after another holder's at ${prev.rev}, though its own fenced writes had already stopped once`,
        operations: [prev.op, cur.op],
      });
      break;
    }
  }
  // Observe: leaders in revision order
  const prefixes = new Set(records.filter((r) => r.kind === "election").map((r) => `${r.prefix}/`));
  for (const w of history.watches) {
    if (!prefixes.has(w.request.key) || w.request.rangeEnd !== prefixEnd(w.request.key)) continue;
    const created = w.responses.find((x) => x.created);
    const start = w.request.startRevision || (created ? created.revision + 1 : 0);
    const base = ref.stateAt(start - 1);
    if (!base) continue;
    const live = new Map<string, number>();
    for (const k of base.kvs.keys)
      if (k.startsWith(w.request.key))
        live.set(k, (base.kvs.get(k) as { createRevision: number }).createRevision);
    let leader = Number.NEGATIVE_INFINITY;
    for (const resp of w.responses) {
      for (const e of resp.events) {
        if (e.type === "PUT") live.set(e.kv.key, e.kv.createRevision);
        else live.delete(e.kv.key);
      }
      if (resp.events.length === 0 || live.size === 0) continue;
      const now = Math.min(...live.values());
      if (now < leader) {
        violations.push({
          checker: "election.leadership",
          message: `watch ${w.id} observing ${w.request.key} saw the leader go back from the key created at ${leader} to one created at ${now} (${secs(resp.atUs)})`,
          atUs: resp.atUs,
          watches: [w.id],
        });
        break;
      }
      leader = now;
    }
  }
  // real-time overlaps of holders: expected without fencing
  for (let i = 0; i < records.length; i++)
    for (let j = i + 1; j < records.length; j++) {
      const a = records[i] as LockRecord;
      const b = records[j] as LockRecord;
      if (a.prefix !== b.prefix || a.client === b.client) continue;
      const aEnd = a.releasedUs ?? endUs;
      const bEnd = b.releasedUs ?? endUs;
      if (a.acquiredUs < bEnd && b.acquiredUs < aEnd)
        observations.push({
          kind: `${a.kind}.overlap`,
          message: `clients ${a.client} and ${b.client} both believed they held ${a.prefix} between ${secs(Math.max(a.acquiredUs, b.acquiredUs))} and ${secs(Math.min(aEnd, bEnd))} (unfenced; etcd locks need fencing)`,
        });
    }
  return { violations, observations };
}
