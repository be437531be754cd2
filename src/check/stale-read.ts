// stale-read: reads that linearizability cannot judge, judged against the reference.
// A serializable range answers from one member's state, possibly stale; a range at an
// explicit revision answers from history. Either must show exactly the committed state
// at the revision it names (the header revision, or the one asked for), and that
// revision must exist by the time the answer came back (robustness validate: "S").
import type { History, KeyValue, RangeResponse } from "../../models/client/history.js";
import { secs, type Violation } from "./artifacts.js";
import { applyRequest, sameKvs } from "./etcd.js";
import type { Reference } from "./reference.js";

function show(kvs: readonly KeyValue[]): string {
  return kvs.map((kv) => `${kv.key}=${JSON.stringify(kv.value)}@${kv.modRevision}`).join(" ") || "nothing";
}

export function checkStaleReads(history: History, ref: Reference): Violation[] {
  const out: Violation[] = [];
  for (const op of history.operations) {
    const req = op.request;
    const resp = op.response;
    if (req.type !== "range" || op.returnUs === null || resp?.type !== "range") continue;
    const explicit = (req.revision ?? 0) > 0;
    if (!req.serializable && !explicit) continue;
    const at = explicit ? (req.revision as number) : resp.revision;
    // before an epoch's initial state (a restored or older volume): nothing to judge by
    if (at < ref.firstRevision) continue;
    const where = `client ${op.client}'s ${req.serializable ? "serializable " : ""}read of ${JSON.stringify(req.key)}${req.rangeEnd !== undefined ? `..${JSON.stringify(req.rangeEnd)}` : ""} at ${secs(op.callUs)}${op.member ? ` on ${op.member}` : ""}`;
    const state = ref.stateAt(at);
    const base = {
      checker: "stale-read",
      atUs: op.returnUs,
      operations: [op.id],
      ...(op.member ? { members: [op.member] } : {}),
    };
    if (!state || ref.reachedUs(at) > op.returnUs) {
      out.push({
        ...base,
        message: `${where} answered at revision ${at}, which the cluster had not reached when the answer came back`,
      });
      continue;
    }
    const { revision: _r, serializable: _s, ...latest } = req;
    const expected = applyRequest(state, latest).response as RangeResponse;
    if (!sameKvs(resp.kvs, expected.kvs) || resp.count !== expected.count || resp.more !== expected.more)
      out.push({
        ...base,
        message: `${where} answered ${show(resp.kvs)} (count ${resp.count}) at revision ${at}, but the committed state there holds ${show(expected.kvs)} (count ${expected.count})`,
      });
  }
  return out;
}
