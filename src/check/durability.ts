// durability: every write a client saw acknowledged is in the reference history, the
// requests the cluster kept (#14370: an answer before the WAL fsync, then a crash).
import { type History, isWriteRequest } from "../../models/client/history.js";
import { secs, type Violation } from "./artifacts.js";
import { describeRequest } from "./etcd.js";
import type { Reference } from "./reference.js";

export function checkDurability(history: History, ref: Reference): Violation[] {
  if (!ref.tracksCalls) return []; // a history without call ids cannot be matched
  const out: Violation[] = [];
  for (const op of history.operations) {
    if (op.client < 0 || op.returnUs === null || !op.response || op.response.type === "error") continue;
    if (!isWriteRequest(op.request) || ref.entryOf(op.id)) continue;
    out.push({
      checker: "durability",
      message: `client ${op.client}'s ${describeRequest(op.request)} was acknowledged at revision ${op.response.revision} at ${secs(op.returnUs)}${op.member ? ` by ${op.member}` : ""}, but the cluster did not keep it: no member's log holds it at the end`,
      atUs: op.returnUs,
      operations: [op.id],
      ...(op.member ? { members: [op.member] } : {}),
    });
  }
  return out;
}
