// Shrinking a failing scenario to a small one that fails the same way.
//
// The property is fixed: the first failing checker of the input (violations come ordered
// by id). A candidate counts only if that same checker still fails. Passes repeat until
// none changes anything:
// - delta debugging over the fault list (halves, then quarters... then single faults);
// - each fault shorter, and earlier;
// - links without random loss, duplication or extra delay; milder clock drift;
// - fewer clients; fewer operations per client; slower clients;
// - fewer members (5 -> 3 -> 1);
// - a shorter run (earlier heal, earlier end of traffic).
// Every random stream is forked by name from the seed, so removing one thing leaves the
// others' choices as they were. Candidates of a pass run in parallel (on the worker
// pool); the first in order that fails wins, so the result does not depend on timing.
// The last pass over single faults makes the result 1-minimal in faults.
import type { Fault } from "./faults.js";
import { Pool } from "./fuzz.js";
import type { ClientPlan, Scenario } from "./scenario.js";

export interface Trial {
  readonly fails: boolean;
  readonly ops: number;
  readonly virtualMs: number;
  readonly events: number;
}

/** Runs candidates (in parallel where it can) and says which still fail the property. */
export type Evaluate = (candidates: readonly Scenario[]) => Promise<Trial[]>;

export interface ShrinkOptions {
  /** Stops after this many runs (the best so far is kept). */
  readonly maxRuns: number;
  /** Candidates evaluated together (the pool's width). */
  readonly batch: number;
  /** Called after each improvement, with the smallest scenario so far. */
  readonly onProgress?: (best: Scenario, runs: number, pass: string) => void;
  /** Checked between batches: true stops now (Ctrl-C), keeping the best so far. */
  readonly interrupted?: () => boolean;
}

export interface ShrinkResult {
  readonly scenario: Scenario;
  readonly runs: number;
  readonly last: Trial;
  /** Whether the shrink ran to its end (not stopped by the run cap or an interrupt). */
  readonly complete: boolean;
}

/**
 * Sizes that make a scenario "smaller", compared in this order: faults, members,
 * clients, operations, run length, then the faults' own sizes (durations, start times,
 * link noise, clock drift, stalls). Every candidate must be smaller: shrinking ends.
 */
export function measure(s: Scenario): number[] {
  const ops = s.clients.reduce((a, c) => a + (c.maxOps ?? 1_000_000), 0);
  let durations = 0;
  let starts = 0;
  let noise = 0;
  for (const f of s.faults) {
    durations += f.durationUs;
    starts += f.atUs;
    if (f.kind === "link")
      noise += (f.lossRate > 0 ? 1 : 0) + (f.duplicateRate > 0 ? 1 : 0) + (f.extraDelayUs > 0 ? 1 : 0);
    if (f.kind === "clock-drift") noise += Math.abs(f.ppm) / 1e6;
    if (f.kind === "failpoint") noise += f.stallUs / 1e9;
  }
  return [
    s.faults.length,
    s.cluster.members,
    s.clients.length,
    ops,
    s.timeline.trafficEndUs,
    durations,
    starts,
    noise,
  ];
}

function smaller(a: Scenario, b: Scenario): boolean {
  const x = measure(a);
  const y = measure(b);
  for (let i = 0; i < x.length; i++) {
    if ((x[i] as number) < (y[i] as number)) return true;
    if ((x[i] as number) > (y[i] as number)) return false;
  }
  return false;
}

/** Faults and clients that only name members of an n-member cluster. */
function withMembers(s: Scenario, n: number): Scenario | null {
  const ok = (name: string) => name.startsWith("@") || name.startsWith("c") || Number(name.slice(1)) <= n;
  const faults = s.faults
    .map((f): Fault | null => {
      if (f.kind === "partition") {
        const groups = f.groups.map((g) => g.filter(ok)).filter((g) => g.length > 0);
        return groups.length >= 2 ? { ...f, groups } : null;
      }
      if (f.kind === "link" || f.kind === "clog") return ok(f.from) && ok(f.to) ? f : null;
      return ok(f.node) ? f : null;
    })
    .filter((f): f is Fault => f !== null);
  const clients = s.clients.map((c) => ({ ...c, endpoints: c.endpoints.filter(ok) }));
  return { ...s, cluster: { ...s.cluster, members: n }, faults, clients };
}

export async function shrink(input: Scenario, evaluate: Evaluate, o: ShrinkOptions): Promise<ShrinkResult> {
  let best = input;
  let runs = 0;
  let last: Trial = { fails: true, ops: 0, virtualMs: 0, events: 0 };
  let stopped = false;

  /** Tries candidates in batches; adopts the first that still fails (and is smaller). */
  const attempt = async (candidates: Scenario[], pass: string): Promise<boolean> => {
    const useful = candidates.filter((c) => smaller(c, best));
    for (let i = 0; i < useful.length; i += o.batch) {
      if (runs >= o.maxRuns || o.interrupted?.()) {
        stopped = true;
        return false;
      }
      const batch = useful.slice(i, i + o.batch);
      const trials = await evaluate(batch);
      runs += batch.length;
      const k = trials.findIndex((t) => t.fails);
      if (k >= 0) {
        best = batch[k] as Scenario;
        last = trials[k] as Trial;
        o.onProgress?.(best, runs, pass);
        return true;
      }
    }
    return false;
  };

  const withFaults = (faults: readonly Fault[]): Scenario => ({ ...best, faults });
  const withClients = (clients: readonly ClientPlan[]): Scenario => ({ ...best, clients });

  /** Delta debugging over the fault list: remove chunks, halving the chunk size. */
  const ddminFaults = async (): Promise<boolean> => {
    let changed = false;
    let chunk = Math.max(1, Math.ceil(best.faults.length / 2));
    while (chunk >= 1 && best.faults.length > 0 && !stopped) {
      const fs = best.faults;
      const cands: Scenario[] = [];
      for (let i = 0; i < fs.length; i += chunk)
        cands.push(withFaults([...fs.slice(0, i), ...fs.slice(i + chunk)]));
      if (await attempt(cands, "faults")) {
        changed = true;
        chunk = Math.min(chunk, Math.max(1, Math.ceil(best.faults.length / 2)));
        continue;
      }
      if (chunk === 1) break;
      chunk = Math.ceil(chunk / 2);
    }
    return changed;
  };

  /** Each fault shorter (halved), earlier (by half its start), and calmer. */
  const simplifyFaults = async (): Promise<boolean> => {
    let changed = false;
    for (let i = 0; i < best.faults.length && !stopped; i++) {
      const f = best.faults[i] as Fault;
      const variants: Fault[] = [];
      if (f.durationUs > 100_000) variants.push({ ...f, durationUs: Math.floor(f.durationUs / 2) });
      if (f.atUs > 1_000_000) variants.push({ ...f, atUs: Math.max(1_000_000, Math.floor(f.atUs / 2)) });
      if (f.kind === "link") {
        if (f.lossRate > 0) variants.push({ ...f, lossRate: 0 });
        if (f.duplicateRate > 0) variants.push({ ...f, duplicateRate: 0 });
        if (f.extraDelayUs > 0) variants.push({ ...f, extraDelayUs: 0 });
      }
      if (f.kind === "clock-drift" && Math.abs(f.ppm) > 1000)
        variants.push({ ...f, ppm: Math.trunc(f.ppm / 2) });
      if (f.kind === "failpoint" && f.action === "stall" && f.stallUs > 10_000)
        variants.push({ ...f, stallUs: Math.floor(f.stallUs / 2) });
      const cands = variants.map((v) => withFaults(best.faults.map((x, j) => (j === i ? v : x))));
      if (await attempt(cands, "fault details")) {
        changed = true;
        i--; // the same fault again, from its new shape
      }
    }
    return changed;
  };

  const dropClients = async (): Promise<boolean> => {
    let changed = false;
    for (let i = best.clients.length - 1; i >= 0 && !stopped; i--) {
      if (await attempt([withClients(best.clients.filter((_, j) => j !== i))], "clients")) changed = true;
    }
    return changed;
  };

  /** Fewer operations per client: its budget halved while the failure stays. */
  const fewerOps = async (): Promise<boolean> => {
    let changed = false;
    for (let i = 0; i < best.clients.length && !stopped; i++) {
      const c = best.clients[i] as ClientPlan;
      const used = c.maxOps ?? last.ops;
      if (used <= 1) continue;
      const cands = [Math.floor(used / 4), Math.floor(used / 2), Math.floor((used * 3) / 4)]
        .filter((n) => n >= 1 && n < used)
        .map((n) => withClients(best.clients.map((x, j) => (j === i ? { ...x, maxOps: n } : x))));
      if (await attempt(cands, "operations")) {
        changed = true;
        i--;
      }
    }
    return changed;
  };

  const fewerMembers = async (): Promise<boolean> => {
    const cands: Scenario[] = [];
    for (const n of [1, 3])
      if (n < best.cluster.members) {
        const s = withMembers(best, n);
        if (s) cands.push(s);
      }
    return attempt(cands, "members");
  };

  const shorterRun = async (): Promise<boolean> => {
    const t = best.timeline;
    const lastFaultEnd = best.faults.reduce((m, f) => Math.max(m, f.atUs + f.durationUs), 1_000_000);
    const heal = Math.max(lastFaultEnd, Math.floor(t.healUs * 0.6));
    const cands: Scenario[] = [];
    if (heal < t.healUs)
      cands.push({
        ...best,
        timeline: {
          ...t,
          healUs: heal,
          trafficEndUs: Math.max(heal, Math.min(t.trafficEndUs, heal + 3_000_000)),
        },
      });
    if (t.trafficEndUs > t.healUs) cands.push({ ...best, timeline: { ...t, trafficEndUs: t.healUs } });
    return attempt(cands, "duration");
  };

  const passes = [ddminFaults, fewerMembers, dropClients, simplifyFaults, shorterRun, fewerOps];
  for (let changed = true; changed && !stopped; ) {
    changed = false;
    for (const pass of passes) {
      if (stopped) break;
      if (await pass()) changed = true;
    }
  }
  return { scenario: best, runs, last, complete: !stopped };
}

export interface PoolShrinkOptions {
  readonly jobs: number;
  readonly maxRuns: number;
  /** Wall-clock limit of one candidate run. */
  readonly runTimeoutMs?: number;
  readonly onProgress?: ShrinkOptions["onProgress"];
  readonly interrupted?: () => boolean;
}

/** Shrinks `input` while `checker` still fails, running candidates on a worker pool. */
export async function shrinkOnPool(
  input: Scenario,
  checker: string,
  o: PoolShrinkOptions,
): Promise<ShrinkResult> {
  const pool = new Pool(o.jobs);
  const timeoutMs = o.runTimeoutMs ?? 120_000;
  try {
    return await shrink(
      input,
      async (cands) => {
        const outs = await pool.all(
          cands.map((scenario) => ({ kind: "scenario" as const, scenario, timeoutMs })),
        );
        return outs.map(
          (r): Trial => ({
            fails: r.checkers.includes(checker),
            ops: r.ops,
            virtualMs: r.virtualMs,
            events: r.events,
          }),
        );
      },
      {
        maxRuns: o.maxRuns,
        batch: o.jobs,
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        ...(o.interrupted ? { interrupted: o.interrupted } : {}),
      },
    );
  } finally {
    await pool.close();
  }
}
