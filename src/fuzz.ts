// Running many scenarios: a pool of worker threads, each run with a wall-clock limit. A
// worker that hangs past the limit is terminated and replaced; one that crashes is
// replaced too. `fuzz` runs seeds on it (every failure is run a second time to prove it
// replays, same trace hash, before it is reported); `shrink` runs candidate scenarios.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { generateScenario } from "./profiles.js";
import { reportHtml } from "./report-page.js";
import { RunTimeout, runScenario } from "./runner.js";
import type { Scenario } from "./scenario.js";

export interface SeedJob {
  readonly kind: "seed";
  readonly seed: number;
  readonly profile: string;
  readonly caseName?: string;
  readonly bugs: readonly string[];
  readonly budgetSteps?: number;
  readonly timeoutMs: number;
  /** Build the HTML report of a failure (fuzz writes it next to the scenario). */
  readonly report?: boolean;
}

export interface ScenarioJob {
  readonly kind: "scenario";
  readonly scenario: Scenario;
  readonly budgetSteps?: number;
  readonly timeoutMs: number;
}

export type Job = SeedJob | ScenarioJob;

export interface Outcome {
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
  /** The failure's report page, when the job asked for it. */
  readonly reportHtml?: string;
  readonly error?: string;
}

/** Runs one job (in a worker, or in-process): a seed is replayed when it fails. */
export function runJob(job: Job): Outcome {
  const started = performance.now();
  const sc: Scenario =
    job.kind === "seed"
      ? { ...generateScenario(job.seed, job.profile, job.caseName), bugs: [...job.bugs] }
      : job.scenario;
  const deadline = () => performance.now() - started > job.timeoutMs;
  const opts = { deadline, ...(job.budgetSteps === undefined ? {} : { budgetSteps: job.budgetSteps }) };
  try {
    const r = runScenario(sc, opts);
    const v = r.validation;
    const checkers = [...new Set(v.violations.map((x) => x.checker))].sort();
    const messages = v.violations.map((x) => `${x.checker}: ${x.message.split("\n")[0]}`);
    const base = {
      seed: sc.seed,
      traceHash: r.traceHash,
      events: r.stats.events,
      virtualMs: r.stats.virtualMs,
      wallMs: Math.round(performance.now() - started),
      ops: r.stats.ops,
    };
    if (v.verdict === "ok") return { ...base, verdict: "ok", checkers: [], messages: [] };
    if (job.kind === "scenario") return { ...base, verdict: v.verdict, checkers, messages };
    // a failing seed must replay: same scenario, same trace
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
    return {
      ...base,
      verdict: v.verdict,
      checkers,
      messages,
      scenario: sc,
      ...(job.report && v.verdict === "violation" ? { reportHtml: reportHtml(r, null) } : {}),
    };
  } catch (e) {
    const wallMs = Math.round(performance.now() - started);
    const none = {
      seed: sc.seed,
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

/**
 * A run allocates many short-lived objects (messages, events, history records): a young
 * generation larger than V8's default (semi-spaces of 64 MB, as `--max-semi-space-size=64`
 * for the CLI) halves the scavenges; measured about 15% less CPU per seed.
 */
const YOUNG_GENERATION_MB = 192;

/** A worker thread: the compiled worker, or (under tsx, in tests) the TypeScript one. */
function newWorker(): Worker {
  const here = import.meta.url;
  const resourceLimits = { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB };
  if (!here.endsWith(".ts")) return new Worker(new URL("./fuzz-worker.js", here), { resourceLimits });
  const api = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./fuzz-worker.ts", here).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, resourceLimits });
}

export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

function failed(job: Job, verdict: "timeout" | "crashed", error: string): Outcome {
  const seed = job.kind === "seed" ? job.seed : job.scenario.seed;
  return {
    seed,
    verdict,
    checkers: [],
    messages: [],
    traceHash: null,
    events: 0,
    virtualMs: 0,
    wallMs: 0,
    ops: 0,
    error,
  };
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

/** A fixed number of workers; jobs queue up and each runs on the first free one. */
export class Pool {
  private readonly slots: Slot[] = [];
  private readonly queue: { job: Job; resolve: (o: Outcome) => void }[] = [];

  constructor(readonly size: number) {}

  run(job: Job): Promise<Outcome> {
    return new Promise((resolve) => {
      this.queue.push({ job, resolve });
      this.pump();
    });
  }

  /** Runs jobs, each on the first free worker; outcomes in the jobs' order. */
  all(jobs: readonly Job[]): Promise<Outcome[]> {
    return Promise.all(jobs.map((j) => this.run(j)));
  }

  async close(): Promise<void> {
    this.queue.length = 0;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.busy);
      if (!slot && this.slots.length < this.size) {
        slot = { worker: newWorker(), busy: false };
        this.slots.push(slot);
      }
      if (!slot) return;
      const { job, resolve } = this.queue.shift() as { job: Job; resolve: (o: Outcome) => void };
      this.start(slot, job, resolve);
    }
  }

  private start(slot: Slot, job: Job, resolve: (o: Outcome) => void): void {
    slot.busy = true;
    const worker = slot.worker;
    let settled = false;
    const done = (o: Outcome, replace: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.off("message", onMessage);
      worker.off("error", onError);
      if (replace) {
        void worker.terminate();
        slot.worker = newWorker();
      }
      slot.busy = false;
      resolve(o);
      this.pump();
    };
    // the worker's own deadline stops the run; this one catches a worker stuck for good
    const timer = setTimeout(
      () => done(failed(job, "timeout", "the worker did not answer"), true),
      job.timeoutMs * 2 + 5_000,
    );
    const onMessage = (o: Outcome) => done(o, false);
    const onError = (e: Error) => done(failed(job, "crashed", e.message), true);
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.postMessage(job);
  }
}

export interface CampaignOptions {
  readonly jobs: number;
  /** Stop scheduling new seeds once a failure is known. */
  readonly stopOnFirst: boolean;
  /** Which failures stop the campaign (default: every violation or crash). */
  readonly stopsOn?: (o: Outcome) => boolean;
  /** Called with each outcome as it comes. */
  readonly onOutcome: (o: Outcome) => void;
}

/** A fuzz campaign: every seed job on the pool; outcomes in seed order. */
export async function runCampaign(jobs: readonly SeedJob[], o: CampaignOptions): Promise<Outcome[]> {
  const pool = new Pool(o.jobs);
  const outcomes: Outcome[] = [];
  let next = 0;
  let stopped = false;
  const lane = async () => {
    while (!stopped && next < jobs.length) {
      const out = await pool.run(jobs[next++] as SeedJob);
      outcomes.push(out);
      const failure = out.verdict === "violation" || out.verdict === "crashed";
      if (failure && (o.stopsOn?.(out) ?? true)) stopped ||= o.stopOnFirst;
      o.onOutcome(out);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, jobs.length) }, lane));
  await pool.close();
  return outcomes.sort((a, b) => a.seed - b.seed);
}
