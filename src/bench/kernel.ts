// npm run bench:kernel: bare message passing between 3 and 5 nodes, to measure what the
// kernel alone costs: events per wall-second and virtual-to-wall time ratio.
import { type NodeContext, type NodeProgram, Simulator } from "../../sim/index.js";

interface Result {
  nodes: number;
  events: number;
  wallMs: number;
  eventsPerSec: number;
  virtualToWall: number;
}

class Relay implements NodeProgram {
  constructor(
    private readonly ctx: NodeContext,
    private readonly peers: number,
  ) {}
  onMessage(_from: number, msg: unknown): void {
    const hops = msg as number;
    let to = this.ctx.random.int(0, this.peers - 1);
    if (to >= this.ctx.id) to++;
    this.ctx.send(to, hops + 1, "relay", hops);
  }
}

function runOnce(nodes: number, inFlightPerNode: number, virtualUs: number): Result {
  const sim = new Simulator({ seed: `bench-${nodes}` });
  for (let i = 0; i < nodes; i++) sim.addNode(`n${i + 1}`, (ctx) => new Relay(ctx, nodes));
  for (let i = 0; i < nodes; i++) {
    sim.start(i);
    for (let k = 0; k < inFlightPerNode; k++) sim.network.send(i, (i + 1) % nodes, 0, "relay", 0, 0);
  }
  const t0 = process.hrtime.bigint();
  sim.runUntil(virtualUs);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const events = sim.stats.events;
  return {
    nodes,
    events,
    wallMs: Math.round(wallMs),
    eventsPerSec: Math.round(events / (wallMs / 1000)),
    virtualToWall: Number((virtualUs / 1000 / wallMs).toFixed(2)),
  };
}

const json = process.argv.includes("--json");
const results: Result[] = [];
for (const nodes of [3, 5]) {
  runOnce(nodes, 50, 200_000); // warm up the JIT
  results.push(runOnce(nodes, 50, 10_000_000));
}
if (json) {
  console.log(JSON.stringify(results));
} else {
  console.log("kernel: bare message passing, 50 messages in flight per node, 10 s of virtual time");
  console.log("nodes  events      wall ms  events/s     virtual:wall");
  for (const r of results) {
    console.log(
      `${String(r.nodes).padEnd(7)}${String(r.events).padEnd(12)}${String(r.wallMs).padEnd(9)}${String(r.eventsPerSec).padEnd(13)}${r.virtualToWall}`,
    );
  }
  const worst = Math.min(...results.map((r) => r.eventsPerSec));
  console.log(`goal >= 3,000,000 events/s: ${worst >= 3_000_000 ? "met" : "NOT met"} (worst ${worst})`);
}
