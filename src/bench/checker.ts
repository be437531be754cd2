// npm run bench:checker: the linearizability checker, in-process and warm. Each case
// runs several times and the median is reported (as Go's benchmarks do), for the Jepsen
// etcd logs, the Porcupine KV logs, and generated etcd histories (1% unknown outcomes).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkEtcdHistory } from "../check/etcd-history.js";
import { generateHistory } from "../check/generate.js";
import { kvModel } from "../check/kv.js";
import { checkLinearizability, type Verdict } from "../check/linearizability.js";
import { registerModel } from "../check/register.js";
import { parseJepsenLog } from "../history/jepsen.js";
import { parsePorcupineKv } from "../history/porcupine-kv.js";

const DATA = new URL("../../../test/data/porcupine", import.meta.url).pathname;

interface Row {
  case: string;
  ops: number;
  verdict: string;
  medianMs: number;
  /** Porcupine (Go) on this machine, where measured. */
  porcupineMs?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function time(runs: number, fn: () => Verdict): { ms: number; verdict: Verdict } {
  let verdict: Verdict = "unknown";
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    verdict = fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ms: Number(median(samples).toFixed(2)), verdict };
}

const rows: Row[] = [];
const runs = 7;

// Jepsen etcd logs: each file, and all of them together.
const jepsen = readdirSync(join(DATA, "jepsen-etcd"))
  .filter((f) => f.endsWith(".log"))
  .sort()
  .map((f) => ({ name: f, ops: parseJepsenLog(readFileSync(join(DATA, "jepsen-etcd", f), "utf8")) }));
for (let w = 0; w < 3; w++) for (const f of jepsen) checkLinearizability(registerModel, f.ops); // warm up
let tally = "";
const all = time(runs, () => {
  const verdicts = jepsen.map((f) => checkLinearizability(registerModel, f.ops).verdict);
  const ok = verdicts.filter((v) => v === "linearizable").length;
  const bad = verdicts.filter((v) => v === "not-linearizable").length;
  tally = `${ok} ok, ${bad} not${verdicts.length - ok - bad > 0 ? `, ${verdicts.length - ok - bad} unknown` : ""}`;
  return ok + bad === verdicts.length ? "linearizable" : "unknown";
});
rows.push({
  case: `jepsen etcd_000..${String(jepsen.length - 1).padStart(3, "0")} (all)`,
  ops: jepsen.reduce((s, f) => s + f.ops.length, 0),
  verdict: tally,
  medianMs: all.ms,
  porcupineMs: 286,
});
const hardest = jepsen.find((f) => f.name === "etcd_002.log");
if (hardest) {
  const r = time(runs, () => checkLinearizability(registerModel, hardest.ops).verdict);
  rows.push({
    case: "jepsen etcd_002",
    ops: hardest.ops.length,
    verdict: r.verdict,
    medianMs: r.ms,
    porcupineMs: 167,
  });
}

// Porcupine KV logs.
const PORCUPINE_KV: Record<string, number> = { "c50-ok": 172, "c50-bad": 33 };
for (const name of ["c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad"]) {
  const ops = parsePorcupineKv(readFileSync(join(DATA, "kv", `${name}.txt`), "utf8"));
  checkLinearizability(kvModel(), ops);
  const r = time(runs, () => checkLinearizability(kvModel(), ops).verdict);
  rows.push({
    case: `kv ${name}`,
    ops: ops.length,
    verdict: r.verdict,
    medianMs: r.ms,
    ...(PORCUPINE_KV[name] ? { porcupineMs: PORCUPINE_KV[name] } : {}),
  });
}

// Generated etcd histories.
for (const n of [1_000, 10_000, 100_000]) {
  const h = generateHistory({ seed: `bench-${n}`, ops: n, unknownRate: 0.01 });
  checkEtcdHistory(h);
  const r = time(n >= 100_000 ? 3 : runs, () => checkEtcdHistory(h).verdict);
  rows.push({
    case: `etcd generated ${n / 1000}k ops, 1% unknown`,
    ops: n,
    verdict: r.verdict,
    medianMs: r.ms,
  });
}

if (process.argv.includes("--json")) {
  console.log(JSON.stringify(rows));
} else {
  console.log(`checker: median of ${runs} warm runs, in-process`);
  console.log("case                                    ops      verdict            median ms   porcupine ms");
  for (const r of rows) {
    console.log(
      `${r.case.padEnd(40)}${String(r.ops).padEnd(9)}${r.verdict.padEnd(19)}${String(r.medianMs).padEnd(12)}${r.porcupineMs ?? ""}`,
    );
  }
}
