// npm run bench:raft: proposals committed per wall-second for a 3-member raft cluster
// (the raft testbed: raft, WAL, snapshots, virtual disk and network), without faults
// and under random faults.
import { RAFT_FAULT_MIX, runRaftScenario } from "../raft-scenario.js";

interface Row {
  case: string;
  seeds: number;
  committed: number;
  wallMs: number;
  committedPerSec: number;
  eventsPerSec: number;
  virtualToWall: number;
}

function measure(name: string, withFaults: boolean, seeds: number): Row {
  let committed = 0;
  let events = 0;
  let virtualUs = 0;
  const t0 = process.hrtime.bigint();
  for (let s = 1; s <= seeds; s++) {
    const run = runRaftScenario(s, { members: 3, mix: withFaults ? RAFT_FAULT_MIX : {}, proposalGapUs: 250 });
    const m = run.cluster.member(0);
    committed += m?.appliedCount ?? 0;
    events += run.sim.stats.events;
    virtualUs += run.sim.nowUs;
  }
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return {
    case: name,
    seeds,
    committed,
    wallMs: Math.round(wallMs),
    committedPerSec: Math.round(committed / (wallMs / 1000)),
    eventsPerSec: Math.round(events / (wallMs / 1000)),
    virtualToWall: Number((virtualUs / 1000 / wallMs).toFixed(1)),
  };
}

const json = process.argv.includes("--json");
measure("warm-up", false, 2);
const rows = [measure("3 members, no faults", false, 10), measure("3 members, random faults", true, 10)];
if (json) {
  console.log(JSON.stringify(rows));
} else {
  console.log(
    "raft: ~4000 proposals per virtual second at random members, 10 seeds of ~12-30 s virtual each",
  );
  console.log("case                        committed  wall ms  committed/s  events/s   virtual:wall");
  for (const r of rows) {
    console.log(
      `${r.case.padEnd(28)}${String(r.committed).padEnd(11)}${String(r.wallMs).padEnd(9)}${String(r.committedPerSec).padEnd(13)}${String(r.eventsPerSec).padEnd(11)}${r.virtualToWall}`,
    );
  }
}
