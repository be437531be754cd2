// npm run bench:instructions: the CPU instructions the standard scenario costs per client
// operation, counted by valgrind (cachegrind, no cache simulation) on `node --predictable`
// (V8 on one thread, without time-based heuristics). This machine's speed varies by a
// third from one hour to the next, so wall-clock benchmarks cannot tell a 5% change; this
// count repeats within 0.1%. It does not see cache misses, nor what V8's helper threads
// would do in parallel, so it complements `npm run bench`, it does not replace it.
//
// Two runs side by side: seed 1 alone, and seeds 1 and 2. The first gives the cold cost
// (Node's start, loading, compiling); the difference gives seed 2's warm cost, the
// steady state. `--seeds N` adds more warm seeds to the second run; `--json` prints one
// document. valgrind slows the run about 50 times: a minute or two in all.
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runScenario } from "../runner.js";
import { standard } from "./standard.js";

const self = fileURLToPath(import.meta.url);

function usage(message: string): never {
  process.stderr.write(
    `bench:instructions: ${message}\nusage: npm run bench:instructions [-- --seeds N] [--json]\n`,
  );
  process.exit(2);
}

const args = (() => {
  try {
    return parseArgs({
      options: { seeds: { type: "string" }, json: { type: "boolean" }, child: { type: "string" } },
    }).values;
  } catch (e) {
    return usage((e as Error).message);
  }
})();

if (args.child !== undefined) {
  // inside valgrind: run seeds 1..N, say what they did
  const n = Number(args.child);
  let ops = 0;
  let events = 0;
  for (let s = 1; s <= n; s++) {
    const r = runScenario(standard(s));
    ops += r.stats.ops;
    events += r.stats.events;
  }
  process.stdout.write(`${JSON.stringify({ ops, events })}\n`);
  process.exit(0);
}

const warmSeeds = args.seeds === undefined ? 1 : Number(args.seeds);
if (!Number.isInteger(warmSeeds) || warmSeeds < 1) usage("--seeds takes a positive integer");
if (spawnSync("valgrind", ["--version"]).status !== 0)
  usage("needs valgrind on the PATH (Debian: apt install valgrind)");

interface Count {
  instructions: number;
  ops: number;
  events: number;
}

function count(seeds: number): Promise<Count> {
  const argv = [
    "--tool=cachegrind",
    "--cache-sim=no",
    "--cachegrind-out-file=/dev/null",
    // V8 writes and rewrites its machine code: valgrind must notice
    "--smc-check=all-non-file",
    process.execPath,
    "--max-semi-space-size=64",
    "--predictable",
    self,
    "--child",
    String(seeds),
  ];
  return new Promise((resolve, reject) => {
    const p = spawn("valgrind", argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      err += d;
    });
    p.on("close", (code) => {
      const refs = /I\s+refs:\s+([\d,]+)/.exec(err);
      if (code !== 0 || !refs) {
        reject(new Error(`valgrind exited with ${code}: ${err.trim().split("\n").slice(-3).join(" / ")}`));
        return;
      }
      const did = JSON.parse(out.trim().split("\n").at(-1) as string) as { ops: number; events: number };
      resolve({ instructions: Number((refs[1] as string).replaceAll(",", "")), ...did });
    });
  });
}

try {
  const [cold, both] = await Promise.all([count(1), count(1 + warmSeeds)]);
  const warm = {
    instructions: both.instructions - cold.instructions,
    ops: both.ops - cold.ops,
    events: both.events - cold.events,
  };
  const row = {
    coldInstructions: cold.instructions,
    coldOps: cold.ops,
    warmSeeds,
    warmInstructions: warm.instructions,
    warmOps: warm.ops,
    warmEvents: warm.events,
    instructionsPerOp: Math.round(warm.instructions / warm.ops),
    instructionsPerEvent: Math.round(warm.instructions / warm.events),
  };
  if (args.json) console.log(JSON.stringify(row));
  else {
    const g = (x: number) => `${(x / 1e9).toFixed(3)} G`;
    console.log("standard scenario (npm run bench), node --predictable under valgrind");
    console.log(
      `cold: seed 1        ${g(row.coldInstructions)} instructions, ${row.coldOps} operations (start and compile included)`,
    );
    const warmLabel = (warmSeeds === 1 ? "seed 2" : `seeds 2..${1 + warmSeeds}`).padEnd(14);
    console.log(`warm: ${warmLabel}${g(row.warmInstructions)} instructions, ${row.warmOps} operations`);
    console.log(`per operation       ${row.instructionsPerOp} instructions (warm)`);
    console.log(`per kernel event    ${row.instructionsPerEvent} instructions (warm)`);
  }
} catch (e) {
  process.stderr.write(`bench:instructions: ${(e as Error).message}\n`);
  process.exit(1);
}
