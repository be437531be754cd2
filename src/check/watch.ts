// The watch contract (etcd's api_guarantees.md; robustness validate/watch.go W1–W9), each
// watch checked against the reference history. One watch record spans the client's
// resumes on other members; a `created` response starts each of them.
//
// - watch.filter (W1): every event matches the watched range and the filters.
// - watch.ordered (W2): event revisions never go back.
// - watch.unique (W3): no (revision, key) twice.
// - watch.atomic (W4): a revision is never split across two responses.
// - watch.bookmarkable (W5): after a progress notification at R, no event at or below R;
//   notifications never go back, nor below the last event.
// - watch.reliable (W6): the events received are exactly the committed matching events
//   from the first expected revision (the start revision, or the creation's header + 1)
//   to the last observed one (event or progress notification).
// - watch.resumable (W7): after each creation from revision R, the first event is the
//   first committed matching event at or after R.
// - watch.is-create (W8): a put is a create iff the key did not exist just before.
// - watch.prev-kv (W9): a prev_kv, when present, is the key just before the event.
// - watch.compaction: a cancellation for compaction names a revision that was compacted,
//   above the revision the watch's creation (first or resumed) asked for.
// - watch.require-leader: only watches that asked for it are cancelled for lack of a leader.
import type { History, WatchEvent, WatchRecord, WatchResponse } from "../../models/client/history.js";
import { secs, type Violation } from "./artifacts.js";
import { inRange, keyValueAt, sameKv } from "./etcd.js";
import type { Reference } from "./reference.js";

const NO_LEADER = "etcdserver: no leader";

function describe(e: WatchEvent): string {
  return e.type === "PUT"
    ? `PUT ${e.kv.key}=${JSON.stringify(e.kv.value)}@${e.kv.modRevision}`
    : `DELETE ${e.kv.key}@${e.kv.modRevision}`;
}

function sameEvent(a: WatchEvent, b: WatchEvent): boolean {
  return a.type === b.type && sameKv(a.kv, b.kv);
}

function byRevisionAndKey(a: WatchEvent, b: WatchEvent): number {
  return a.kv.modRevision - b.kv.modRevision || (a.kv.key < b.kv.key ? -1 : a.kv.key > b.kv.key ? 1 : 0);
}

/**
 * Sorts `list` in place by (revision, key). A list already in revision order (what a
 * correct watch receives, and what the reference gives) only has each revision's run
 * sorted by key: a full comparison sort was most of this checker's time.
 */
function inRevisionAndKeyOrder(list: WatchEvent[]): WatchEvent[] {
  for (let i = 1; i < list.length; i++)
    if ((list[i] as WatchEvent).kv.modRevision < (list[i - 1] as WatchEvent).kv.modRevision)
      return list.sort(byRevisionAndKey);
  let start = 0;
  for (let i = 1; i <= list.length; i++) {
    if (
      i < list.length &&
      (list[i] as WatchEvent).kv.modRevision === (list[start] as WatchEvent).kv.modRevision
    )
      continue;
    // a run is one revision's events, a handful: sorted by insertion, in place
    for (let j = start + 1; j < i; j++) {
      const e = list[j] as WatchEvent;
      let k = j - 1;
      for (; k >= start && (list[k] as WatchEvent).kv.key > e.kv.key; k--)
        list[k + 1] = list[k] as WatchEvent;
      list[k + 1] = e;
    }
    start = i;
  }
  return list;
}

export function checkWatches(history: History, ref: Reference): Violation[] {
  const out: Violation[] = [];
  for (const w of history.watches) checkWatch(w, ref, out);
  return out;
}

function checkWatch(w: WatchRecord, ref: Reference, out: Violation[]): void {
  const req = w.request;
  const inKeys = (e: WatchEvent) => inRange(e.kv.key, req.key, req.rangeEnd);
  const noPut = req.filters?.includes("NOPUT") ?? false;
  const noDelete = req.filters?.includes("NODELETE") ?? false;
  const passes = (e: WatchEvent) => (e.type === "PUT" ? !noPut : !noDelete);
  const matches = (e: WatchEvent) => inKeys(e) && passes(e);
  const flagged = new Set<string>();
  const report = (checker: string, r: WatchResponse, message: string) => {
    if (flagged.has(checker)) return; // the first breach per watch says enough
    flagged.add(checker);
    out.push({
      checker,
      message: `watch ${w.id} of client ${w.client} on ${JSON.stringify(req.key)}${req.rangeEnd !== undefined ? `..${JSON.stringify(req.rangeEnd)}` : ""}: ${message}`,
      atUs: r.atUs,
      ...(r.member ? { members: [r.member] } : {}),
      watches: [w.id],
    });
  };

  const received: WatchEvent[] = [];
  let firstExpected = req.startRevision && req.startRevision > 0 ? req.startRevision : -1;
  let lastObserved = 0;
  let lastEventRev = 0;
  let lastProgress = 0;
  let prevLastRev = -1; // last event revision of the previous response with events
  // W3 without a string per event: the keys seen at the newest revision so far (the
  // first `keysAtNewestCount`: emptying the array by `length = 0` would drop its backing
  // store, once per revision), and a scan of everything received for an event below it
  // (already out of order: rare)
  let newestRev = -1;
  const keysAtNewest: string[] = [];
  let keysAtNewestCount = 0;
  let duplicates = false;
  let pendingResume: { start: number; response: WatchResponse } | null = null;
  // the revision the current creation (first or resumed) asked the member for
  let askedStart = firstExpected;
  let compacted = false;
  for (const r of w.responses) {
    if (r.created) {
      const start = r.startRevision && r.startRevision > 0 ? r.startRevision : r.revision + 1;
      if (firstExpected < 0) firstExpected = start;
      pendingResume = r.startRevision && r.startRevision > 0 ? { start: r.startRevision, response: r } : null;
      askedStart = start;
      continue;
    }
    if (r.canceled) {
      if (r.error === NO_LEADER && !req.requireLeader)
        report(
          "watch.require-leader",
          r,
          `cancelled for lack of a leader at ${secs(r.atUs)} on ${r.member}, though it did not require one`,
        );
      if (r.compactRevision !== undefined) {
        compacted = true;
        // judged by what the creation asked for: etcd keeps a synced watcher's minRev at
        // its last event, so after a snapshot restore one that saw only progress since can
        // be cancelled by a compaction above its last event (as etcd does)
        const asked = pendingResume?.start ?? askedStart;
        const known = ref.compactions.some((c) => c.revision === r.compactRevision);
        if (!known || asked >= r.compactRevision)
          report(
            "watch.compaction",
            r,
            `cancelled at ${secs(r.atUs)} by ${r.member} as compacted at revision ${r.compactRevision}, but ${known ? `it asked for revision ${asked}, which that compaction keeps` : "no committed compaction has that revision"}`,
          );
      }
      continue;
    }
    if (r.progressNotify && r.events.length === 0) {
      if (r.revision < lastProgress)
        report(
          "watch.bookmarkable",
          r,
          `a progress notification at revision ${r.revision} (${secs(r.atUs)}, ${r.member}) went back from ${lastProgress}`,
        );
      else if (r.revision < lastEventRev)
        report(
          "watch.bookmarkable",
          r,
          `a progress notification at revision ${r.revision} (${secs(r.atUs)}, ${r.member}) came after an event at revision ${lastEventRev}`,
        );
      lastProgress = Math.max(lastProgress, r.revision);
      lastObserved = Math.max(lastObserved, r.revision);
      if (firstExpected < 0) firstExpected = r.revision + 1;
      continue;
    }
    if (r.events.length === 0) continue;
    const first = r.events[0] as WatchEvent;
    if (prevLastRev === first.kv.modRevision)
      report(
        "watch.atomic",
        r,
        `revision ${prevLastRev} was split across two responses (the second at ${secs(r.atUs)}, ${r.member})`,
      );
    if (pendingResume) {
      const expected = ref.firstEventAtOrAfter(pendingResume.start, matches);
      if (expected && !sameEvent(expected, first))
        report(
          "watch.resumable",
          r,
          `created from revision ${pendingResume.start} on ${pendingResume.response.member} at ${secs(pendingResume.response.atUs)}, its first event was ${describe(first)}, but the first committed matching event from there is ${describe(expected)}`,
        );
      pendingResume = null;
    }
    for (const e of r.events) {
      const rev = e.kv.modRevision;
      if (!inKeys(e) || !passes(e))
        report(
          "watch.filter",
          r,
          `got ${describe(e)} at ${secs(r.atUs)} from ${r.member}, outside its ${inKeys(e) ? "filters" : "key range"}`,
        );
      if (rev < lastEventRev)
        report(
          "watch.ordered",
          r,
          `got ${describe(e)} at ${secs(r.atUs)} from ${r.member} after an event at revision ${lastEventRev}`,
        );
      let twice: boolean;
      if (rev > newestRev) {
        newestRev = rev;
        keysAtNewestCount = 0;
        twice = false;
      } else if (rev === newestRev) twice = includesKey(keysAtNewest, keysAtNewestCount, e.kv.key);
      else twice = receivedBefore(received, rev, e.kv.key);
      if (rev === newestRev) keysAtNewest[keysAtNewestCount++] = e.kv.key;
      if (twice) {
        duplicates = true;
        report("watch.unique", r, `got ${describe(e)} twice (again at ${secs(r.atUs)} from ${r.member})`);
      }
      if (rev <= lastProgress)
        report(
          "watch.bookmarkable",
          r,
          `got ${describe(e)} at ${secs(r.atUs)} from ${r.member} after a progress notification at revision ${lastProgress}`,
        );
      checkAgainstState(e, r, ref, req.prevKv ?? false, report);
      received.push(e);
      lastEventRev = Math.max(lastEventRev, rev);
    }
    prevLastRev = (r.events[r.events.length - 1] as WatchEvent).kv.modRevision;
    lastObserved = Math.max(lastObserved, prevLastRev);
  }
  // W6: exactly the committed events between the first expected and the last observed
  if (firstExpected < 0 || lastObserved < firstExpected) return;
  if (compacted && received.length === 0) return;
  const expected = inRevisionAndKeyOrder(ref.eventsBetween(firstExpected, lastObserved, matches));
  // (bounds copied: a closure over the loop's variables would box every update of them)
  const lo = firstExpected;
  const hi = lastObserved;
  const got = received.filter((e) => e.kv.modRevision >= lo && e.kv.modRevision <= hi);
  const seen = new Set<string>();
  const unique = inRevisionAndKeyOrder(
    duplicates
      ? got.filter((e) => {
          const id = `${e.kv.modRevision}\0${e.kv.key}`;
          if (seen.has(id)) return false;
          seen.add(id);
          return true;
        })
      : got,
  );
  const n = Math.max(expected.length, unique.length);
  for (let i = 0; i < n; i++) {
    const a = expected[i];
    const b = unique[i];
    if (a && b && sameEvent(a, b)) continue;
    const last = w.responses[w.responses.length - 1] as WatchResponse;
    const missing = a && (!b || byRevisionAndKey(a, b) < 0);
    report(
      "watch.reliable",
      last,
      missing
        ? `missed ${describe(a as WatchEvent)}: between revisions ${firstExpected} and ${lastObserved} it got ${unique.length} of the ${expected.length} committed matching events`
        : `got ${describe(b as WatchEvent)}, which no committed request between revisions ${firstExpected} and ${lastObserved} produced${a ? ` (expected ${describe(a)} there)` : ""}`,
    );
    return;
  }
}

// Plain loops, not closures: a closure over the loop's event would give every iteration
// a context object of its own.
function includesKey(keys: readonly string[], count: number, key: string): boolean {
  for (let i = 0; i < count; i++) if (keys[i] === key) return true;
  return false;
}

function receivedBefore(received: readonly WatchEvent[], rev: number, key: string): boolean {
  for (const x of received) if (x.kv.modRevision === rev && x.kv.key === key) return true;
  return false;
}

/** W8 and W9 against the reference state just before the event. */
function checkAgainstState(
  e: WatchEvent,
  r: WatchResponse,
  ref: Reference,
  wantsPrev: boolean,
  report: (checker: string, r: WatchResponse, message: string) => void,
): void {
  const before = ref.stateAt(e.kv.modRevision - 1);
  if (!before) return;
  // The key just before: the committed event of this revision on this key says it (its
  // prev_kv is the key in that state), without a search of the state's keys.
  const known = ref.eventAt(e.kv.modRevision, e.kv.key);
  const prev = known ? known.prevKv : keyValueAt(before, e.kv.key);
  const existed = prev !== undefined;
  if (e.type === "PUT") {
    const isCreate = e.kv.createRevision === e.kv.modRevision;
    if (isCreate === existed)
      report(
        "watch.is-create",
        r,
        `${describe(e)} is ${isCreate ? "" : "not "}a create, but the key ${existed ? "existed" : "did not exist"} at revision ${e.kv.modRevision - 1}`,
      );
  }
  if (!wantsPrev || !e.prevKv) return;
  if (!sameKv(e.prevKv, prev))
    report(
      "watch.prev-kv",
      r,
      `${describe(e)} came with prev_kv ${JSON.stringify(e.prevKv.value)}@${e.prevKv.modRevision}, but at revision ${e.kv.modRevision - 1} the key was ${prev ? `${JSON.stringify(prev.value)}@${prev.modRevision}` : "absent"}`,
    );
}
