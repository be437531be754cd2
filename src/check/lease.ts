// Leases, judged by the leader's guarantees as clients see them.
// - lease.keepalive: a lease kept alive is not revoked by expiry sooner than its TTL
//   after a successful keep-alive was sent (allowing for clock drift: the lessor times
//   the TTL on its own clock). #15247: a stalled old leader revoked leases kept alive
//   through the new one.
// - lease.expiry: a lease nobody keeps alive is gone by the end of the run, once its
//   TTL, a leader change (which restarts TTLs, #9888) and the expiry loop's retry had
//   time to pass after the last keep-alive or the heal, whichever came later.
import type { History, KeepAliveRecord } from "../../models/client/history.js";
import { type RunParams, secs, type Violation } from "./artifacts.js";
import type { Reference } from "./reference.js";

/** The expiry loop's period and retry (server/lease: 500 ms checks, 3 s before offering again). */
const EXPIRY_SLACK_US = 5_000_000;

export function checkLeases(
  history: History,
  ref: Reference,
  params: RunParams,
  endUs: number,
  healedUs: number | null,
): Violation[] {
  const out: Violation[] = [];
  const keepAlives = new Map<number, KeepAliveRecord[]>();
  for (const k of history.keepAlives ?? []) {
    if (k.returnUs === null || k.ttlS <= 0) continue;
    let list = keepAlives.get(k.lease);
    if (!list) keepAlives.set(k.lease, (list = []));
    list.push(k);
  }
  const fast = 1 + params.maxClockDriftPpm / 1e6;
  const granted = new Map<number, { ttlS: number; atUs: number }>();
  const revoked = new Set<number>();
  for (const e of ref.entries) {
    const r = e.memberResponse;
    if (e.request.type === "lease-grant" && r.type === "lease-grant")
      granted.set(e.request.id, { ttlS: r.ttlS, atUs: e.appliedUs });
    if (e.request.type !== "lease-revoke" || e.response.type === "error") continue;
    const id = e.request.id;
    revoked.add(id);
    if (!e.expiry) continue;
    const ttlS = granted.get(id)?.ttlS ?? 0;
    // the latest renewal sent before the revoke took effect
    const renewals = (keepAlives.get(id) ?? []).filter((k) => k.callUs <= e.appliedUs);
    const last = renewals.reduce<KeepAliveRecord | null>(
      (a, k) => (a === null || k.callUs > a.callUs ? k : a),
      null,
    );
    if (!last) continue;
    const earliestUs = last.callUs + (last.ttlS * 1e6) / fast;
    if (e.appliedUs < earliestUs)
      out.push({
        checker: "lease.keepalive",
        message: `lease ${id} was renewed by client ${last.client} at ${secs(last.callUs)}${last.member ? ` through ${last.member}` : ""} for ${last.ttlS}s, yet a leader revoked it as expired at ${secs(e.appliedUs)}, ${secs(e.appliedUs - last.callUs)} later (TTL ${ttlS}s)`,
        atUs: e.appliedUs,
        ...(last.member ? { members: [last.member] } : {}),
      });
  }
  const final = ref.stateAt(ref.lastRevision);
  for (const [id, g] of granted) {
    if (revoked.has(id) || !final?.leases.has(id)) continue;
    const renewed = (keepAlives.get(id) ?? []).reduce((a, k) => Math.max(a, k.returnUs as number), g.atUs);
    const from = Math.max(renewed, healedUs ?? 0);
    const ttlUs = g.ttlS * 1e6 * fast;
    const dueUs = from + 2 * (ttlUs + params.electionTimeoutUs) + EXPIRY_SLACK_US;
    if (dueUs <= endUs)
      out.push({
        checker: "lease.expiry",
        message: `lease ${id} (TTL ${g.ttlS}s) was last kept alive at ${secs(renewed)}, yet it still existed at the end (${secs(endUs)}); it should have expired by ${secs(dueUs)}`,
        atUs: dueUs,
      });
  }
  return out;
}
