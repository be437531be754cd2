// A fuzz campaign: seeds run on a pool of worker threads, each seed in its own run with a
// wall-clock limit. A worker that hangs past the limit is terminated and replaced; one
// that crashes is replaced too. Every failure is run a second time to prove it replays
// (same trace hash) before it is reported.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { generateScenario } from "./profiles.js";
import { RunTimeout, runScenario } from "./runner.js";
import type { Scenario } from "./scenario.js";

export interface SeedJob {
  readonly seed: number;
  readonly profile: string;
  readonly caseName?: string;
  readonly bugs: readonly string[];
  readonly budgetSteps?: number;
  readonly timeoutMs: number;
}

export interface SeedOutcome {
  readonly seed: number;
  readonly verdict: "ok" | "violation" | "unknown" | "timeout" | "crashed";
  readonly checkers: readonly string[];
  readonly messages: readonly string[];
  readonly traceHash: string | null;
  readonly events: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly ops: number;
  /** The scenario, for failures. */
  readonly scenario?: Scenario;
  readonly error?: string;
}

/** Runs one seed (in a worker, or in-process for tests): the verdict, replayed if it fails. */
export function runSeed(job: SeedJob): SeedOutcome {
  const started = performance.now();
  const sc: Scenario = { ...generateScenario(job.seed, job.profile, job.caseName), bugs: [...job.bugs] };
  const deadline = () => performance.now() - started > job.timeoutMs;
  const opts = { deadline, ...(job.budgetSteps === undefined ? {} : { budgetSteps: job.budgetSteps }) };
  try {
    const r = runScenario(sc, opts);
    const v = r.validation;
    const checkers = [...new Set(v.violations.map((x) => x.checker))].sort();
    const messages = v.violations.map((x) => `${x.checker}: ${x.message.split("\n")[0]}`);
    const base = {
      seed: job.seed,
      traceHash: r.traceHash,
      events: r.stats.events,
      virtualMs: r.stats.virtualMs,
      wallMs: Math.round(performance.now() - started),
      ops: r.stats.ops,
    };
    if (v.verdict === "ok") return { ...base, verdict: "ok", checkers: [], messages: [] };
    // a failure must replay: same scenario, same trace
    const again = runScenario(sc, { ...opts, deadline: () => false });
    if (again.traceHash !== r.traceHash) {
      return {
        ...base,
        verdict: "violation",
        checkers: ["determinism", ...checkers],
        messages: [
          `determinism: two runs of the scenario gave traces ${r.traceHash} and ${again.traceHash}`,
          ...messages,
        ],
        scenario: sc,
      };
    }
    return { ...base, verdict: v.verdict, checkers, messages, scenario: sc };
  } catch (e) {
    const wallMs = Math.round(performance.now() - started);
    const none = {
      seed: job.seed,
      checkers: [],
      messages: [],
      traceHash: null,
      events: 0,
      virtualMs: 0,
      ops: 0,
      wallMs,
    };
    if (e instanceof RunTimeout) return { ...none, verdict: "timeout", error: e.message };
    return { ...none, verdict: "crashed", error: (e as Error).stack ?? String(e), scenario: sc };
  }
}

/** A worker thread: the compiled worker, or (under tsx, in tests) the TypeScript one. */
function newWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./fuzz-worker.js", here));
  const api = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./fuzz-worker.ts", here).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true });
}

export interface CampaignOptions {
  readonly jobs: number;
  /** Stop scheduling new seeds once a failure is known. */
  readonly stopOnFirst: boolean;
  /** Called with each outcome as it comes (after the failure, if any, is handled). */
  readonly onOutcome: (o: SeedOutcome) => void;
}

export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

/** Runs the jobs on a pool of workers; resolves with every outcome, in seed order. */
export function runCampaign(jobs: readonly SeedJob[], o: CampaignOptions): Promise<SeedOutcome[]> {
  const outcomes: SeedOutcome[] = [];
  let next = 0;
  let stopped = false;
  let running = 0;
  return new Promise((resolve) => {
    const finish = (out: SeedOutcome) => {
      outcomes.push(out);
      if (out.verdict === "violation" || out.verdict === "crashed") stopped ||= o.stopOnFirst;
      o.onOutcome(out);
    };
    const spawn = () => {
      const worker = newWorker();
      let job: SeedJob | null = null;
      let timer: NodeJS.Timeout | null = null;
      const take = () => {
        if (stopped || next >= jobs.length) {
          void worker.terminate();
          if (--running === 0) resolve(outcomes.sort((a, b) => a.seed - b.seed));
          return;
        }
        job = jobs[next++] as SeedJob;
        // the worker's own deadline stops the run; this one catches a worker stuck for good
        timer = setTimeout(
          () => {
            const stuck = job as SeedJob;
            job = null;
            void worker.terminate();
            finish({
              seed: stuck.seed,
              verdict: "timeout",
              checkers: [],
              messages: [],
              traceHash: null,
              events: 0,
              virtualMs: 0,
              wallMs: stuck.timeoutMs * 2,
              ops: 0,
              error: "the worker did not answer",
            });
            spawn(); // a replacement takes this slot
          },
          job.timeoutMs * 2 + 5_000,
        );
        worker.postMessage(job);
      };
      worker.on("message", (out: SeedOutcome) => {
        if (timer) clearTimeout(timer);
        job = null;
        finish(out);
        take();
      });
      worker.on("error", (e) => {
        if (timer) clearTimeout(timer);
        if (job)
          finish({
            seed: job.seed,
            verdict: "crashed",
            checkers: [],
            messages: [],
            traceHash: null,
            events: 0,
            virtualMs: 0,
            wallMs: 0,
            ops: 0,
            error: e.message,
          });
        job = null;
        spawn(); // a replacement takes this one's place
      });
      take();
    };
    const width = Math.min(o.jobs, jobs.length);
    if (width === 0) {
      resolve([]);
      return;
    }
    for (let i = 0; i < width; i++) {
      running++;
      spawn();
    }
  });
}
