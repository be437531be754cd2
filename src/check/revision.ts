// revision-rollback: the revision is a clock that never goes back. No linearizable
// request may answer with a header revision lower than one the cluster had returned to
// any client before that request began ("165, then 164": #14370, #17780). Serializable
// reads are exempt (stale-read judges them), but what they returned still counts as
// returned.
import { type History, isWriteRequest, type Operation } from "../../models/client/history.js";
import { secs, type Violation } from "./artifacts.js";

function headerRevision(op: Operation): number | null {
  const r = op.response;
  if (op.returnUs === null || !r || r.type === "error") return null;
  return r.revision;
}

export function checkRevisionRollback(history: History): Violation[] {
  const answered = history.operations.filter((o) => o.client >= 0 && headerRevision(o) !== null);
  const byReturn = [...answered].sort((a, b) => (a.returnUs as number) - (b.returnUs as number));
  const checked = answered
    .filter((o) => isWriteRequest(o.request) || !(o.request.type === "range" && o.request.serializable))
    .sort((a, b) => a.callUs - b.callUs);
  const out: Violation[] = [];
  let k = 0;
  let best: Operation | null = null;
  for (const op of checked) {
    while (k < byReturn.length && ((byReturn[k] as Operation).returnUs as number) < op.callUs) {
      const o = byReturn[k++] as Operation;
      if (!best || (headerRevision(o) as number) > (headerRevision(best) as number)) best = o;
    }
    const rev = headerRevision(op) as number;
    if (best && rev < (headerRevision(best) as number)) {
      out.push({
        checker: "revision-rollback",
        message: `client ${op.client}'s ${op.request.type} called at ${secs(op.callUs)}${op.member ? ` on ${op.member}` : ""} answered at revision ${rev}, but client ${best.client} had already been answered revision ${headerRevision(best)} at ${secs(best.returnUs as number)}${best.member ? ` by ${best.member}` : ""}: the revision went back`,
        atUs: op.returnUs as number,
        operations: [best.id, op.id],
        members: [best.member, op.member].filter((m): m is string => m !== undefined),
      });
      if (out.length >= 3) break;
    }
  }
  return out;
}
