// The differential suite's scripts: sequential etcd API scripts drawn from a fixed seed,
// each on its own key prefix, run in batches (one fresh cluster per batch) on the model and
// on a real etcd through `etcd-dst exec`. The generator steps the model as it draws, so
// that revisions in the script (reads at past, future and compacted revisions, compaction
// points, watch starts) land where they test something.
import { prefixEnd } from "../../models/client/history.js";
import { Random } from "../../sim/random.js";
import { ModelSession, parseScript } from "../exec.js";

type Json = Record<string, unknown>;

export interface Batch {
  /** JSON Lines for `etcd-dst exec`, one request per line, scripts separated by comments. */
  readonly text: string;
  /** The first line (1-based) of each script in `text`. */
  readonly scriptLines: readonly number[];
  /** The model's answers, as `exec` prints them. */
  readonly model: readonly Json[];
  /** The line (1-based) in `text` of each request answered (watch responses come after). */
  readonly answerLines: readonly number[];
}

/** The suite of `npm run test:real`: 200 scripts, 20 per fresh cluster, from a fixed seed. */
export const SUITE = { seed: "etcd-dst differential suite 1", scripts: 200, scriptsPerBatch: 20 } as const;

export interface SuiteOptions {
  readonly seed: string;
  readonly scripts: number;
  readonly scriptsPerBatch: number;
  readonly members: number;
}

/** What a batch's generator knows of the cluster it is writing for. */
interface State {
  revision: number;
  compacted: number;
  nextLease: number;
  /**
   * etcd 3.4 answers a progress request at once, also for watches still catching up
   * (#15220) or starting in the future (#20221); the model does as 3.5 does. They agree
   * when every watch on the stream starts from "now": a batch either requests progress and
   * opens only such watches, or requests none (docs/fidelity.md).
   */
  readonly progressBatch: boolean;
}

/** The batches of the suite, deterministic in `seed`. */
export function* suiteBatches(o: SuiteOptions): Generator<Batch> {
  const rng = new Random(o.seed);
  for (let first = 0; first < o.scripts; first += o.scriptsPerBatch) {
    const batchRng = rng.fork(`batch-${first}`);
    const count = Math.min(o.scriptsPerBatch, o.scripts - first);
    yield generateBatch(batchRng, first, count, o.members);
  }
}

function generateBatch(rng: Random, first: number, count: number, members: number): Batch {
  const session = new ModelSession(members);
  const lines: string[] = [];
  const scriptLines: number[] = [];
  const model: Json[] = [];
  const answerLines: number[] = [];
  const st: State = {
    revision: 1,
    compacted: 0,
    nextLease: 1000 + first * 10,
    progressBatch: rng.chance(0.3),
  };
  for (let s = first; s < first + count; s++) {
    lines.push(`# script ${s}`);
    scriptLines.push(lines.length + 1);
    const script = new ScriptWriter(rng.fork(`script-${s}`), `s${s}/`, st);
    const steps = rng.int(6, 16);
    for (let i = 0; i < steps; i++) {
      const request = script.next();
      const line = JSON.stringify(request);
      const step = parseScript(line)[0];
      if (!step) throw new Error(`generated an empty request: ${line}`);
      lines.push(line);
      const answer = session.step(step);
      if (!answer) continue;
      model.push(answer);
      answerLines.push(lines.length);
      const rev = (answer.header as { revision?: number } | undefined)?.revision;
      if (rev !== undefined) st.revision = rev;
    }
  }
  return {
    text: `${lines.join("\n")}\n`,
    scriptLines,
    model: model.concat(session.finish()),
    answerLines,
  };
}

class ScriptWriter {
  private readonly keys: string[];
  private readonly values: string[] = [];
  private readonly leases: number[] = [];
  private readonly startRevision: number;
  private n = 0;

  constructor(
    private readonly rng: Random,
    private readonly prefix: string,
    private readonly st: State,
  ) {
    this.keys = ["a", "b", "c", "d"].map((k) => prefix + k);
    this.startRevision = st.revision;
  }

  next(): Json {
    const r = this.rng;
    // the first steps write, so that later ones have history to read and compare
    if (this.n++ < 2) return this.put();
    const roll = r.int(0, 100);
    if (roll < 22) return this.put();
    if (roll < 38) return { range: this.range() };
    if (roll < 46) return { delete_range: this.del() };
    if (roll < 66) return this.txn();
    if (roll < 71) return this.compact();
    if (roll < 78) return this.leaseGrant();
    if (roll < 82) return this.leaseRevoke();
    if (roll < 94) return this.watch();
    if (this.st.progressBatch) return { progress: {} };
    return this.put();
  }

  private key(): string {
    return this.rng.pick(this.keys);
  }

  /** A revision of this script's past (at or after its start), sometimes compacted or ahead. */
  private revision(): number {
    const r = this.rng;
    const roll = r.int(0, 10);
    if (roll === 0) return this.st.revision + r.int(1, 4); // future
    if (roll === 1 && this.st.compacted > 1) return r.int(1, this.st.compacted + 1); // compacted
    return r.int(this.startRevision, this.st.revision + 1);
  }

  /** A key or the script's whole prefix, sometimes a sub-range or everything from a key. */
  private span(): { key: string; range_end?: string } {
    const r = this.rng;
    const roll = r.int(0, 10);
    if (roll < 5) return { key: this.key() };
    if (roll < 8) return { key: this.prefix, range_end: prefixEnd(this.prefix) };
    if (roll < 9) return { key: `${this.prefix}b`, range_end: `${this.prefix}d` };
    return { key: `${this.prefix}c`, range_end: prefixEnd(this.prefix) };
  }

  private value(): string {
    const v = `v${this.rng.int(0, 1000)}`;
    this.values.push(v);
    return v;
  }

  private putBody(): Json {
    const r = this.rng;
    const body: Json = { key: this.key(), value: this.value() };
    if (r.chance(0.3)) body.prev_kv = true;
    // a granted lease mostly; now and then one that does not exist
    if (r.chance(this.leases.length ? 0.3 : 0.03))
      body.lease = this.leases.length && r.chance(0.9) ? r.pick(this.leases) : 424242;
    return body;
  }

  private put(): Json {
    return { put: this.putBody() };
  }

  private range(): Json {
    const r = this.rng;
    const body: Json = { ...this.span() };
    if (r.chance(0.3)) body.revision = this.revision();
    if (r.chance(body.range_end === undefined ? 0.1 : 0.5)) body.limit = r.int(1, 3);
    if (r.chance(0.2)) body.serializable = true;
    const only = r.int(0, 20);
    if (only < 3) body.keys_only = true;
    else if (only < 6) body.count_only = true;
    return body;
  }

  private del(): Json {
    const body: Json = { ...this.span() };
    if (this.rng.chance(0.5)) body.prev_kv = true;
    return body;
  }

  private compare(): Json {
    const r = this.rng;
    const target = r.pick(["VERSION", "CREATE", "MOD", "VALUE", "LEASE"] as const);
    const c: Json = {
      ...(r.chance(0.15) ? { key: this.prefix, range_end: prefixEnd(this.prefix) } : { key: this.key() }),
      target,
      result: r.pick(["EQUAL", "NOT_EQUAL", "GREATER", "LESS"]),
    };
    const rev = () => (r.chance(0.2) ? 0 : r.int(this.startRevision, this.st.revision + 2));
    if (target === "VERSION") c.version = r.int(0, 4);
    else if (target === "CREATE") c.create_revision = rev();
    else if (target === "MOD") c.mod_revision = rev();
    else if (target === "VALUE") c.value = this.values.length && r.chance(0.7) ? r.pick(this.values) : "";
    else c.lease = this.leases.length && r.chance(0.6) ? r.pick(this.leases) : 0;
    return c;
  }

  private txnOps(): Json[] {
    const r = this.rng;
    const ops: Json[] = [];
    const n = r.int(0, 3);
    for (let i = 0; i < n; i++) {
      const roll = r.int(0, 3);
      if (roll === 0) ops.push({ request_put: this.putBody() });
      else if (roll === 1) ops.push({ request_range: this.range() });
      else ops.push({ request_delete_range: this.del() });
    }
    return ops;
  }

  private txn(): Json {
    const r = this.rng;
    const compare: Json[] = [];
    const n = r.int(0, 3);
    for (let i = 0; i < n; i++) compare.push(this.compare());
    return { txn: { compare, success: this.txnOps(), failure: this.txnOps() } };
  }

  private compact(): Json {
    const r = this.rng;
    const roll = r.int(0, 10);
    let revision: number;
    if (roll === 0)
      revision = this.st.revision + r.int(1, 3); // future: refused
    else if (roll === 1 && this.st.compacted > 0)
      revision = this.st.compacted; // already compacted
    else {
      const lo = Math.max(this.st.compacted + 1, this.startRevision);
      revision = lo <= this.st.revision ? r.int(lo, this.st.revision + 1) : this.st.revision;
    }
    if (revision > this.st.compacted && revision <= this.st.revision) this.st.compacted = revision;
    return { compact: { revision, ...(r.chance(0.3) ? { physical: true } : {}) } };
  }

  private leaseGrant(): Json {
    const id = this.st.nextLease++;
    this.leases.push(id);
    return { lease_grant: { TTL: this.rng.pick([30, 60, 3600]), ID: id } };
  }

  private leaseRevoke(): Json {
    const r = this.rng;
    if (!this.leases.length || r.chance(0.2)) return { lease_revoke: { ID: 999_999 } };
    const i = r.int(0, this.leases.length);
    const id = this.leases[i] as number;
    this.leases.splice(i, 1);
    return { lease_revoke: { ID: id } };
  }

  private watch(): Json {
    const r = this.rng;
    const body: Json = { ...this.span() };
    let start = 0;
    const roll = r.int(0, 10);
    if (roll < 3 || this.st.progressBatch) start = 0;
    else if (roll < 5)
      start = this.st.revision + r.int(1, 4); // future
    else if (roll < 6 && this.st.compacted > 1)
      start = r.int(1, this.st.compacted + 1); // compacted
    else start = r.int(this.startRevision, this.st.revision + 1);
    if (start) body.start_revision = start;
    if (r.chance(0.4)) body.prev_kv = true;
    if (r.chance(0.2)) body.filters = [r.pick(["NOPUT", "NODELETE"])];
    if (r.chance(0.2)) body.progress_notify = true;
    return { watch: body };
  }
}

/** What a batch exercises: request features and answer kinds, counted. */
export function coverage(batch: Batch, into: Map<string, number> = new Map()): Map<string, number> {
  const add = (k: string) => into.set(k, (into.get(k) ?? 0) + 1);
  const opts = (kind: string, body: Json) => {
    add(kind);
    for (const k of Object.keys(body)) if (k !== "key" && k !== "value") add(`${kind}.${k}`);
  };
  for (const line of batch.text.split("\n")) {
    if (!line.startsWith("{")) continue;
    const [kind, body] = Object.entries(JSON.parse(line) as Json)[0] as [string, Json];
    opts(kind, body);
    if (kind !== "txn") continue;
    for (const c of body.compare as Json[]) {
      add(`compare.${c.target}.${c.result}`);
      if (c.range_end !== undefined) add("compare.range_end");
    }
    for (const op of [...(body.success as Json[]), ...(body.failure as Json[])]) {
      const [k, b] = Object.entries(op)[0] as [string, Json];
      opts(`txn.${k}`, b);
    }
  }
  for (const a of batch.model) {
    if (a.error) add(`error: ${(a.error as Json).message}`);
    else if (a.watch !== undefined) {
      if (a.events) add("watch response: events");
      if (a.canceled) add("watch response: compacted");
      if (!a.events && !a.canceled) add("watch response: progress");
      for (const e of (a.events as Json[] | undefined) ?? []) if (e.prev_kv) add("watch response: prev_kv");
    } else if ("succeeded" in a) add("txn: succeeded");
    else if (Array.isArray(a.responses) || (a.header && Object.keys(a).length === 1))
      add("txn or write: no ops");
    if (a.more) add("range: more");
  }
  // a revoke that moved the revision deleted the keys attached to its lease
  const lines = batch.text.split("\n");
  let revision = 1;
  batch.answerLines.forEach((line, i) => {
    const a = batch.model[i] as Json;
    const rev = (a.header as { revision?: number } | undefined)?.revision ?? revision;
    if (lines[line - 1]?.startsWith('{"lease_revoke"') && rev > revision) add("lease_revoke: deleted keys");
    revision = rev;
  });
  for (const a of batch.model)
    if (a.header && !a.error && a.watch === undefined && "responses" in a && !("succeeded" in a))
      add("txn: failed");
  return into;
}

/** The first place where two answers differ, as a path and the two values; null if equal. */
export function firstDifference(model: unknown, real: unknown, path = ""): string | null {
  if (JSON.stringify(model) === JSON.stringify(real)) return null;
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null;
  if (isObj(model) && isObj(real) && Array.isArray(model) === Array.isArray(real)) {
    const keys = [...new Set([...Object.keys(model), ...Object.keys(real)])];
    for (const k of keys) {
      const d = firstDifference(model[k], real[k], Array.isArray(model) ? `${path}[${k}]` : `${path}.${k}`);
      if (d) return d;
    }
  }
  return `${path || "(answer)"}: model ${JSON.stringify(model)}, etcd ${JSON.stringify(real)}`;
}

/** Where the model's answers to a batch differ from etcd's, one line per difference. */
export function differences(batch: Batch, real: readonly Json[]): string[] {
  const out: string[] = [];
  const scriptOf = (line: number) => batch.scriptLines.filter((l) => l <= line).length - 1;
  for (let i = 0; i < Math.max(batch.model.length, real.length); i++) {
    const m = batch.model[i];
    const r = real[i];
    const d = firstDifference(m, r);
    if (!d) continue;
    const line = batch.answerLines[i];
    const where =
      line !== undefined
        ? `line ${line} (script ${scriptOf(line)})`
        : `watch ${String((m ?? r)?.watch ?? "?")} response`;
    out.push(`answer ${i + 1}, ${where}: ${d}`);
  }
  return out;
}
