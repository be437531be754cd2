// agreement: the members hold the same data.
// - At the end, every member that is up has the same HashKV, revision and compact
//   revision (robustness E2).
// - Along the way, every member that applied a log entry reached the same revision
//   with it as the others did: a member that skipped an entry (#13766) or applied one
//   twice (#14685), or applied a txn differently (#18667), parts from the others at
//   that entry, even if a later snapshot papers over it.
import type { MemberRecord } from "../../models/etcd/cluster.js";
import { type MemberEnd, secs, type Violation } from "./artifacts.js";
import { describeRequest } from "./etcd.js";

export function checkAgreement(members: readonly MemberRecord[], end: readonly MemberEnd[]): Violation[] {
  const out: Violation[] = [];
  const up = end.filter((m) => m.hashKv !== null);
  const key = (m: MemberEnd) => {
    const h = m.hashKv as NonNullable<MemberEnd["hashKv"]>;
    return `revision ${h.revision}, compacted at ${h.compactRevision}, hash ${h.hash >>> 0}`;
  };
  if (new Set(up.map(key)).size > 1)
    out.push({
      checker: "agreement",
      message: `at the end the members disagree: ${up.map((m) => `${m.name} at ${key(m)}`).join("; ")}`,
      members: up.map((m) => m.name),
    });
  // per log entry: the revision each member life reached with it
  type Applied = { life: MemberRecord; revision: number; requestId: string; atUs: number };
  const byIndex: Applied[][] = []; // by raft index (dense)
  for (const life of members)
    for (const a of life.applied) {
      let list = byIndex[a.index];
      if (!list) byIndex[a.index] = list = [];
      list.push({ life, revision: a.revision, requestId: a.requestId, atUs: a.atUs });
    }
  const parted = new Set<MemberRecord>();
  for (let index = 0; index < byIndex.length; index++) {
    const list = byIndex[index];
    if (list === undefined || unanimous(list)) continue;
    const sameRequest = list.filter((x) => x.requestId === (list[0] as (typeof list)[number]).requestId);
    if (sameRequest.length < 2) continue;
    // the revision most lives reached (a tie goes to the lower: the one not inflated)
    const votes = new Map<number, number>();
    for (const x of sameRequest) votes.set(x.revision, (votes.get(x.revision) ?? 0) + 1);
    const [common] = [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0] as [number, number];
    for (const x of sameRequest) {
      if (x.revision === common || parted.has(x.life)) continue;
      parted.add(x.life);
      const request = x.life.applied.find((a) => a.index === index)?.request;
      out.push({
        checker: "agreement",
        message: `${x.life.name} (member ${x.life.memberId}) applied log entry ${index}${request ? ` (${describeRequest(request)})` : ""} at ${secs(x.atUs)} and reached revision ${x.revision}, where the other members reached ${common}: its data has parted from theirs`,
        atUs: x.atUs,
        members: [x.life.name],
      });
    }
  }
  return out;
}

/** Every life applied the same request and reached the same revision (the usual case). */
function unanimous(list: readonly { revision: number; requestId: string }[]): boolean {
  const first = list[0] as (typeof list)[number];
  for (let i = 1; i < list.length; i++) {
    const x = list[i] as (typeof list)[number];
    if (x.revision !== first.revision || x.requestId !== first.requestId) return false;
  }
  return true;
}
