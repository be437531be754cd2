// npm run bench:instructions: the CPU instructions the standard scenario costs per client
// operation, counted by valgrind (cachegrind, no cache simulation) on `node --predictable`
// (V8 on one thread, without time-based heuristics, fixed hash and random seeds). This
// machine's speed varies by a third from one hour to the next, so wall-clock benchmarks
// cannot tell a 5% change; this count can. It does not see cache misses, nor what V8's
// helper threads would do in parallel, so it complements `npm run bench`.
//
// Two runs side by side: the warm-up seeds alone (seed 1 by default), and the warm-up
// then the measured seeds. The difference is the measured seeds' cost. Each function
// valgrind counted is put in one of three parts, by its symbol in node's binary:
// - JavaScript and runtime: the compiled JavaScript, V8's builtins (inline-cache misses,
//   Map and Array methods, allocation) and the C++ runtime and libc under them;
// - garbage collection (scavenges, marking, sweeping);
// - compilation (parsing, bytecode, the optimizing compilers, deoptimization).
// The first part is what a change to our code moves, and it repeats within a few tenths
// of a percent. The total moves by percents from run to run: when V8 starts a major GC
// depends on more than the instructions before it. Compilation dwindles as seeds go by
// (V8 optimizes ~450 functions in the first seed, ~20 in the sixth): with `--warmup 6`
// the measured seeds show the steady state, at four times the wait.
//
// `--seeds N` measures N seeds (default 1), `--warmup W` runs W seeds first (default 1),
// `--json` prints one document. valgrind slows a seed about 50 times: a minute or two
// with the defaults.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runScenario } from "../runner.js";
import { standard } from "./standard.js";

const self = fileURLToPath(import.meta.url);

function usage(message: string): never {
  process.stderr.write(
    `bench:instructions: ${message}\nusage: npm run bench:instructions [-- --seeds N] [--warmup W] [--json]\n`,
  );
  process.exit(2);
}

const args = (() => {
  try {
    return parseArgs({
      options: {
        seeds: { type: "string" },
        warmup: { type: "string" },
        json: { type: "boolean" },
        child: { type: "string" },
      },
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

function positive(flag: string, value: string | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usage(`--${flag} takes a positive integer`);
  return n;
}
const measured = positive("seeds", args.seeds, 1);
const warmup = positive("warmup", args.warmup, 1);
if (spawnSync("valgrind", ["--version"]).status !== 0)
  usage("needs valgrind on the PATH (Debian: apt install valgrind)");

const PARTS = ["code", "gc", "compile"] as const;
type Part = (typeof PARTS)[number];

// By the C++ symbol (node's binary keeps them); JIT code has none ("???"), builtins are
// named Builtins_*: both are code.
const COMPILE =
  /compiler::|maglev::|baseline::|interpreter::|turboshaft::|Parser|Scanner|BytecodeGenerator|BytecodeArrayBuilder|Compiler::|Zone::|\bZone\b|ZoneList|AstValueFactory|AstNode|DeclarationScope|OptimizedCompilationJob|TurbofanCompilationJob|SourcePositionTable|CodeGenerator|Assembler|RegExpCompiler|TranslationArrayBuilder|Deoptimizer::|AccessInfoFactory|JSHeapBroker/;
const GC =
  /Scavenge|Heap::|heap::|MarkCompact|Marking|Sweeper|Evacuat|GCTracer|MemoryAllocator|Space::|RememberedSet|SlotSet|MemoryChunk|BodyDescriptor|Worklist|LocalAllocator|GlobalHandles|RootVisitor|ObjectVisitor|PointersUpdating|LiveObject|Visitor/;

function partOf(fn: string): Part {
  if (COMPILE.test(fn)) return "compile";
  if (GC.test(fn)) return "gc";
  return "code";
}

/** Instructions per part in a cachegrind output file (`fn=` lines, then `line count`). */
function parts(file: string): Record<Part, number> {
  const out: Record<Part, number> = { code: 0, gc: 0, compile: 0 };
  let part: Part = "code";
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith("fn=")) {
      part = partOf(line.slice(3));
      continue;
    }
    const c = line.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const n = Number(line.slice(line.indexOf(" ") + 1));
    if (Number.isFinite(n)) out[part] += n;
  }
  return out;
}

interface Count {
  parts: Record<Part, number>;
  instructions: number;
  ops: number;
  events: number;
}

function count(seeds: number, dir: string): Promise<Count> {
  const outFile = join(dir, `cachegrind.${seeds}`);
  const argv = [
    "--tool=cachegrind",
    "--cache-sim=no",
    `--cachegrind-out-file=${outFile}`,
    // V8 writes and rewrites its machine code: valgrind must notice
    "--smc-check=all-non-file",
    process.execPath,
    "--max-semi-space-size=64",
    "--predictable",
    // fixed seeds: string hashes and identity hashes would otherwise differ per process
    "--hash-seed=1",
    "--random-seed=1",
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
      resolve({
        parts: parts(outFile),
        instructions: Number((refs[1] as string).replaceAll(",", "")),
        ...did,
      });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "etcd-dst-instructions-"));
try {
  const [before, after] = await Promise.all([count(warmup, dir), count(warmup + measured, dir)]);
  const ops = after.ops - before.ops;
  const events = after.events - before.events;
  const instructions = after.instructions - before.instructions;
  const perOp = (p: Part) => Math.round((after.parts[p] - before.parts[p]) / ops);
  const row = {
    warmupSeeds: warmup,
    warmupInstructions: before.instructions,
    measuredSeeds: measured,
    instructions,
    ops,
    events,
    instructionsPerOp: Math.round(instructions / ops),
    instructionsPerEvent: Math.round(instructions / events),
    codePerOp: perOp("code"),
    gcPerOp: perOp("gc"),
    compilePerOp: perOp("compile"),
  };
  if (args.json) console.log(JSON.stringify(row));
  else {
    const g = (x: number) => `${(x / 1e9).toFixed(3)} G`;
    const n = (x: number) => x.toLocaleString("en-US").padStart(9);
    const seeds = (from: number, k: number) => (k === 1 ? `seed ${from}` : `seeds ${from}..${from + k - 1}`);
    console.log("standard scenario (npm run bench), node --predictable under valgrind");
    console.log(
      `warm-up   ${seeds(1, warmup).padEnd(12)}${g(before.instructions)} instructions (start included)`,
    );
    console.log(
      `measured  ${seeds(warmup + 1, measured).padEnd(12)}${g(instructions)} instructions, ${ops} operations, ${events} events`,
    );
    console.log(`per operation        ${n(row.instructionsPerOp)}`);
    console.log(`  JavaScript, runtime ${n(row.codePerOp)}   (compare changes on this line)`);
    console.log(`  garbage collection  ${n(row.gcPerOp)}`);
    console.log(`  compilation         ${n(row.compilePerOp)}`);
    console.log(`per kernel event     ${n(row.instructionsPerEvent)}`);
  }
} catch (e) {
  process.stderr.write(`bench:instructions: ${(e as Error).message}\n`);
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
