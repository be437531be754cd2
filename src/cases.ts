// The etcd functional tester's failure cases (tests/functional, etcd-model.md §5) as
// named fault patterns for `--case NAME`. Each strikes once the cluster is up; the heal
// and the liveness probe that follow are its recovery check.
import type { Fault } from "./faults.js";

export interface FaultCase {
  readonly name: string;
  readonly summary: string;
  /** The pattern for these members, starting at `atUs`, over before `healUs`. */
  readonly faults: (members: readonly string[], atUs: number, healUs: number) => Fault[];
  /** The smallest cluster the pattern means anything on (default 1). */
  readonly minMembers?: number;
  /** Profiles it does not run in, and why. */
  readonly notIn?: { readonly profiles: readonly string[]; readonly why: string };
}

const S = 1_000_000;

/** The roles a pattern strikes: one follower, the leader, a quorum, or all. */
type Who = "ONE_FOLLOWER" | "LEADER" | "QUORUM" | "ALL";

function targets(who: Who, members: readonly string[]): string[] {
  switch (who) {
    case "ONE_FOLLOWER":
      return ["@follower"];
    case "LEADER":
      return ["@leader"];
    case "QUORUM":
      return members.slice(0, Math.floor(members.length / 2) + 1);
    case "ALL":
      return [...members];
  }
}

const WHO: readonly Who[] = ["ONE_FOLLOWER", "LEADER", "QUORUM", "ALL"];

function sigterm(who: Who, untilSnapshot: boolean): FaultCase {
  return {
    name: `SIGTERM_${who}${untilSnapshot ? "_UNTIL_TRIGGER_SNAPSHOT" : ""}`,
    summary: `stop ${who.toLowerCase().replace("_", " ")} (process only)${untilSnapshot ? ", keep it down until the leader snapshots past it" : " for 2s"}, then restart`,
    faults: (members, atUs, healUs) =>
      targets(who, members).map((node) => ({
        kind: "crash",
        node,
        mode: "keep",
        atUs,
        durationUs: untilSnapshot ? healUs - atUs : 2 * S,
        ...(untilSnapshot ? { untilSnapshot: true } : {}),
      })),
  };
}

function remove(who: "ONE_FOLLOWER" | "LEADER"): FaultCase {
  return {
    name: `SIGQUIT_AND_REMOVE_${who}`,
    summary: `kill ${who === "LEADER" ? "the leader" : "a follower"}, remove it, wipe its data and add it back as a new member (3 members or more)`,
    // a lone member has no one left to remove it through, nor a follower
    minMembers: 3,
    faults: (_members, atUs) => [
      { kind: "member-replace", node: who === "LEADER" ? "@leader" : "@follower", atUs, durationUs: 0 },
    ],
  };
}

function blackhole(who: Who): FaultCase {
  return {
    name: `BLACKHOLE_PEER_PORT_TX_RX_${who}`,
    summary: `drop every peer message to and from ${who.toLowerCase().replace("_", " ")} for 5s`,
    faults: (members, atUs) => {
      const cut = targets(who, members);
      const groups = who === "ALL" ? members.map((m) => [m]) : [cut, ["@rest"]];
      return [{ kind: "partition", groups, oneWay: false, atUs, durationUs: 5 * S }];
    },
  };
}

function delay(who: Who): FaultCase {
  return {
    name: `DELAY_PEER_PORT_TX_RX_${who}`,
    summary: `delay every peer message to and from ${who.toLowerCase().replace("_", " ")} by 0.5s for 5s`,
    faults: (members, atUs) => {
      const slow = who === "ALL" ? [...members] : targets(who, members);
      const out: Fault[] = [];
      for (const a of slow)
        for (const b of members)
          if (a !== b)
            for (const [from, to] of [
              [a, b],
              [b, a],
            ] as const)
              out.push({
                kind: "link",
                from,
                to,
                lossRate: 0,
                duplicateRate: 0,
                extraDelayUs: 500_000,
                atUs,
                durationUs: 5 * S,
              });
      return out;
    },
  };
}

export const CASES: readonly FaultCase[] = [
  ...WHO.flatMap((w) => [sigterm(w, false), sigterm(w, true)]),
  remove("ONE_FOLLOWER"),
  remove("LEADER"),
  {
    name: "SIGQUIT_AND_REMOVE_QUORUM_AND_RESTORE_LEADER_SNAPSHOT_FROM_SCRATCH",
    summary:
      "save the leader's snapshot; a second later kill every member and remove its data; restore the snapshot as a new one-member cluster and add the others back one by one (writes after the snapshot are lost by design)",
    faults: (_members, atUs) => [{ kind: "restore-from-scratch", node: "@leader", atUs, durationUs: 0 }],
    notIn: {
      profiles: ["backup"],
      why: "there the backup sidecars restore members themselves, from their own store (docs/backup.md)",
    },
  },
  ...WHO.map(blackhole),
  ...WHO.map(delay),
  { name: "NO_FAIL_WITH_STRESS", summary: "no fault: stress alone", faults: () => [] },
];
