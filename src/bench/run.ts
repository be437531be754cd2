// npm run bench: the standard scenario, end to end. Three members, etcd traffic at about
// 1000 requests per virtual second with watches, one fault window (a follower crashes
// and restarts), then the heal and every checker. Prints kernel events per wall-second,
// client operations per wall-second, the virtual-to-wall ratio, the wall time split
// between simulating and checking, CPU time on all threads (operations per CPU-second:
// the strict "per core"), peak memory, and events per client operation.
// `--repeat N` (default 3) keeps the fastest of N measurements; `--json` prints one document.
import { runScenario } from "../runner.js";
import { ETCD_CLIENTS, S, standard, TRAFFIC_US } from "./standard.js";

interface Row {
  seeds: number;
  verdicts: string;
  ops: number;
  events: number;
  virtualMs: number;
  wallMs: number;
  /** CPU time of every thread of the process (V8's GC helpers and compilers too). */
  cpuMs: number;
  checkMs: number;
  opsPerSec: number;
  /** Operations per CPU-second: the strict reading of "per core". */
  opsPerCpuSec: number;
  eventsPerSec: number;
  eventsPerOp: number;
  virtualToWall: number;
  checkShare: number;
  peakRssMb: number;
}

function measure(seeds: number): Row {
  let ops = 0;
  let events = 0;
  let virtualMs = 0;
  let checkMs = 0;
  const verdicts: string[] = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let peak = 0;
  for (let s = 1; s <= seeds; s++) {
    const r = runScenario(standard(s));
    ops += r.stats.ops;
    events += r.stats.events;
    virtualMs += r.stats.virtualMs;
    checkMs += r.stats.checkMs;
    verdicts.push(r.validation.verdict);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const counts = new Map<string, number>();
  for (const v of verdicts) counts.set(v, (counts.get(v) ?? 0) + 1);
  return {
    seeds,
    verdicts: [...counts].map(([v, n]) => `${n} ${v}`).join(", "),
    ops,
    events,
    virtualMs,
    wallMs: Math.round(wallMs),
    cpuMs: Math.round(cpuMs),
    checkMs: Math.round(checkMs),
    opsPerSec: Math.round(ops / (wallMs / 1000)),
    opsPerCpuSec: Math.round(ops / (cpuMs / 1000)),
    eventsPerSec: Math.round(events / (wallMs / 1000)),
    eventsPerOp: Number((events / Math.max(1, ops)).toFixed(1)),
    virtualToWall: Number((virtualMs / wallMs).toFixed(2)),
    checkShare: Number((checkMs / wallMs).toFixed(2)),
    peakRssMb: Math.round(peak / 1024 / 1024),
  };
}

const json = process.argv.includes("--json");
// this machine is shared: the best of a few measurements is the one least disturbed
const at = process.argv.indexOf("--repeat");
const repeat = at > 0 ? Number(process.argv[at + 1]) : 3;
if (!Number.isInteger(repeat) || repeat < 1) {
  process.stderr.write("bench: --repeat takes a positive integer\n");
  process.exit(2);
}
measure(1); // warm-up
let row = measure(5);
for (let i = 1; i < repeat; i++) {
  const again = measure(5);
  if (again.wallMs < row.wallMs) row = again;
}
if (json) console.log(JSON.stringify(row));
else {
  console.log(
    `standard scenario: 3 members, ${ETCD_CLIENTS} etcd clients + 2 watch clients, a follower crash, heal, all checkers`,
  );
  console.log(
    `traffic              ${Math.round(row.ops / row.seeds / (TRAFFIC_US / S))} client requests per virtual second, for ${TRAFFIC_US / S} s per seed`,
  );
  console.log(`seeds                ${row.seeds} (${row.verdicts}), best of ${repeat} measurements`);
  console.log(
    `client operations    ${row.ops} in ${row.wallMs} ms: ${row.opsPerSec} per wall-second (goal: 25000 per core)`,
  );
  console.log(
    `cpu time             ${row.cpuMs} ms on all threads (${(row.cpuMs / row.wallMs).toFixed(2)} cores busy): ${row.opsPerCpuSec} operations per CPU-second`,
  );
  console.log(
    `kernel events        ${row.events}: ${row.eventsPerSec} per wall-second, ${row.eventsPerOp} per operation`,
  );
  console.log(`virtual : wall       ${row.virtualToWall} (${row.virtualMs} virtual ms)`);
  console.log(
    `checking             ${row.checkMs} ms, ${Math.round(row.checkShare * 100)}% of the wall time`,
  );
  console.log(`peak memory          ${row.peakRssMb} MB resident`);
}
