// `etcd-dst exec`: sequential scripts of etcd API requests in the shape of etcd's v3 JSON
// API (../shared/CLI.md), run against the model or a real etcd, answered in etcd's JSON
// shape with plain strings and numbers. The differential suite compares the two outputs.
import type {
  Compare,
  CompareTarget,
  ErrorResponse,
  KeyValue,
  KvRequest,
  KvResponse,
  TxnOp,
  TxnOpResponse,
  WatchEvent,
  WatchFilter,
  WatchRequest,
  WatchResponse,
} from "../models/client/history.js";
import { EtcdCluster } from "../models/etcd/cluster.js";
import { Simulator } from "../sim/index.js";

/** One line of a script. */
export type ScriptStep =
  | { readonly kind: "kv"; readonly request: KvRequest }
  | { readonly kind: "watch"; readonly request: WatchRequest }
  | { readonly kind: "progress" };

export class ScriptError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

type Obj = Record<string, unknown>;

const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);

function str(o: Obj, field: string, required = false): string | undefined {
  const v = o[field];
  if (v === undefined && !required) return undefined;
  if (typeof v !== "string") throw new Error(`${field} must be a string`);
  return v;
}

function int(o: Obj, field: string, required = false): number | undefined {
  const v = o[field];
  if (v === undefined && !required) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw new Error(`${field} must be a non-negative integer`);
  return v;
}

function bool(o: Obj, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw new Error(`${field} must be true or false`);
  return v;
}

function only(o: Obj, fields: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!fields.includes(k)) throw new Error(`${what}: unknown field '${k}'`);
}

/** `T` with its possibly-undefined fields made optional instead. */
type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/** Drops the fields left undefined (requests keep etcd's "absent" meaning). */
function defined<T extends object>(o: T): Defined<T> {
  const x = o as Obj;
  for (const k of Object.keys(x)) if (x[k] === undefined) delete x[k];
  return o as Defined<T>;
}

function parseRange(o: Obj): KvRequest & { type: "range" } {
  only(o, ["key", "range_end", "revision", "limit", "serializable", "keys_only", "count_only"], "range");
  return defined({
    type: "range" as const,
    key: str(o, "key", true) as string,
    rangeEnd: str(o, "range_end"),
    revision: int(o, "revision"),
    limit: int(o, "limit"),
    serializable: bool(o, "serializable"),
    keysOnly: bool(o, "keys_only"),
    countOnly: bool(o, "count_only"),
  });
}

function parsePut(o: Obj): KvRequest & { type: "put" } {
  only(o, ["key", "value", "lease", "prev_kv"], "put");
  return defined({
    type: "put" as const,
    key: str(o, "key", true) as string,
    value: str(o, "value") ?? "",
    lease: int(o, "lease"),
    prevKv: bool(o, "prev_kv"),
  });
}

function parseDelete(o: Obj): KvRequest & { type: "delete" } {
  only(o, ["key", "range_end", "prev_kv"], "delete_range");
  return defined({
    type: "delete" as const,
    key: str(o, "key", true) as string,
    rangeEnd: str(o, "range_end"),
    prevKv: bool(o, "prev_kv"),
  });
}

/** Each compare target's value field in etcd's JSON. */
const TARGET_FIELD: Record<CompareTarget, string> = {
  VERSION: "version",
  CREATE: "create_revision",
  MOD: "mod_revision",
  VALUE: "value",
  LEASE: "lease",
};

function parseCompare(x: unknown): Compare {
  if (!isObj(x)) throw new Error("a compare must be an object");
  const target = str(x, "target", true) as CompareTarget;
  if (!(target in TARGET_FIELD)) throw new Error(`unknown compare target '${target}'`);
  const result = str(x, "result") ?? "EQUAL";
  if (!["EQUAL", "NOT_EQUAL", "GREATER", "LESS"].includes(result))
    throw new Error(`unknown compare result '${result}'`);
  const field = TARGET_FIELD[target];
  only(x, ["key", "range_end", "target", "result", field], "compare");
  const value = target === "VALUE" ? (str(x, field) ?? "") : (int(x, field) ?? 0);
  return defined({
    key: str(x, "key", true) as string,
    rangeEnd: str(x, "range_end"),
    target,
    result: result as Compare["result"],
    value,
  });
}

function parseTxnOp(x: unknown): TxnOp {
  if (!isObj(x) || Object.keys(x).length !== 1) throw new Error("a txn op must have one request_* field");
  const [k, v] = Object.entries(x)[0] as [string, unknown];
  if (!isObj(v)) throw new Error(`${k} must be an object`);
  if (k === "request_put") return parsePut(v);
  if (k === "request_range") return parseRange(v);
  if (k === "request_delete_range") return parseDelete(v);
  throw new Error(`unknown txn op '${k}'`);
}

function list(o: Obj, field: string): unknown[] {
  const v = o[field];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Error(`${field} must be an array`);
  return v;
}

function parseStep(kind: string, o: Obj, nextLeaseId: () => number): ScriptStep {
  switch (kind) {
    case "put":
      return { kind: "kv", request: parsePut(o) };
    case "range":
      return { kind: "kv", request: parseRange(o) };
    case "delete_range":
      return { kind: "kv", request: parseDelete(o) };
    case "txn":
      only(o, ["compare", "success", "failure"], "txn");
      return {
        kind: "kv",
        request: {
          type: "txn",
          compare: list(o, "compare").map(parseCompare),
          success: list(o, "success").map(parseTxnOp),
          failure: list(o, "failure").map(parseTxnOp),
        },
      };
    case "compact":
      only(o, ["revision", "physical"], "compact");
      return {
        kind: "kv",
        request: defined({
          type: "compact" as const,
          revision: int(o, "revision", true) as number,
          physical: bool(o, "physical"),
        }),
      };
    case "lease_grant":
      only(o, ["TTL", "ID"], "lease_grant");
      return {
        kind: "kv",
        request: {
          type: "lease-grant",
          ttlS: int(o, "TTL", true) as number,
          id: int(o, "ID") || nextLeaseId(),
        },
      };
    case "lease_revoke":
      only(o, ["ID"], "lease_revoke");
      return { kind: "kv", request: { type: "lease-revoke", id: int(o, "ID", true) as number } };
    case "watch": {
      only(o, ["key", "range_end", "start_revision", "prev_kv", "progress_notify", "filters"], "watch");
      const filters = list(o, "filters").map((f) => {
        if (f !== "NOPUT" && f !== "NODELETE") throw new Error(`unknown watch filter '${String(f)}'`);
        return f as WatchFilter;
      });
      return {
        kind: "watch",
        request: defined({
          key: str(o, "key", true) as string,
          rangeEnd: str(o, "range_end"),
          startRevision: int(o, "start_revision"),
          prevKv: bool(o, "prev_kv"),
          progressNotify: bool(o, "progress_notify"),
          filters: filters.length ? filters : undefined,
        }),
      };
    }
    case "progress":
      only(o, [], "progress");
      return { kind: "progress" };
    default:
      throw new Error(`unknown request '${kind}'`);
  }
}

/** Parses a script; throws ScriptError with the line number of the first bad line. */
export function parseScript(text: string): ScriptStep[] {
  const steps: ScriptStep[] = [];
  let leaseId = 0;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === "" || line.startsWith("#")) continue;
    try {
      let x: unknown;
      try {
        x = JSON.parse(line);
      } catch {
        throw new Error("not JSON");
      }
      if (!isObj(x) || Object.keys(x).length !== 1)
        throw new Error("a request is an object with exactly one field: its kind");
      const [kind, body] = Object.entries(x)[0] as [string, unknown];
      if (!isObj(body)) throw new Error(`${kind} must be an object`);
      steps.push(parseStep(kind, body, () => 1_000_000 + ++leaseId));
    } catch (e) {
      throw new ScriptError(i + 1, (e as Error).message);
    }
  }
  return steps;
}

// ---- answers in etcd's JSON shape ---------------------------------------------------------

export function kvJson(kv: KeyValue): Obj {
  return defined({
    key: kv.key,
    create_revision: kv.createRevision || undefined,
    mod_revision: kv.modRevision || undefined,
    version: kv.version || undefined,
    value: kv.value || undefined,
    lease: kv.lease || undefined,
  });
}

function opJson(r: TxnOpResponse, revision: number): Obj {
  const header = { revision };
  switch (r.type) {
    case "range":
      return {
        response_range: defined({
          header,
          kvs: r.kvs.length ? r.kvs.map(kvJson) : undefined,
          more: r.more || undefined,
          count: r.count || undefined,
        }),
      };
    case "put":
      return { response_put: defined({ header, prev_kv: r.prevKv ? kvJson(r.prevKv) : undefined }) };
    case "delete":
      return {
        response_delete_range: defined({
          header,
          deleted: r.deleted || undefined,
          prev_kvs: r.prevKvs?.length ? r.prevKvs.map(kvJson) : undefined,
        }),
      };
  }
}

/** A response as etcd's JSON API gives it (header: the revision only). */
export function responseJson(r: KvResponse | ErrorResponse): Obj {
  if (r.type === "error") return { error: { code: r.code, message: r.message } };
  const header = { revision: r.revision };
  switch (r.type) {
    case "range":
    case "put":
    case "delete": {
      const inner = opJson(r, r.revision);
      return Object.values(inner)[0] as Obj;
    }
    case "txn":
      return defined({
        header,
        succeeded: r.succeeded || undefined,
        responses: r.responses.length ? r.responses.map((x) => opJson(x, r.revision)) : undefined,
      });
    case "compact":
    case "lease-revoke":
      return { header };
    case "lease-grant":
      return { header, ID: r.id, TTL: r.ttlS };
  }
}

function eventJson(e: WatchEvent): Obj {
  return defined({
    type: e.type === "DELETE" ? "DELETE" : undefined,
    kv: kvJson(e.kv),
    prev_kv: e.prevKv ? kvJson(e.prevKv) : undefined,
  });
}

/** A watch response after its creation: events, a progress notification, or a cancel. */
export function watchJson(watch: number, w: WatchResponse): Obj {
  return defined({
    watch,
    header: { revision: w.revision },
    events: w.events.length ? w.events.map(eventJson) : undefined,
    canceled: w.canceled || undefined,
    compact_revision: w.compactRevision || undefined,
  });
}

// ---- the model ---------------------------------------------------------------------------

/**
 * How long a watch from a given revision may catch up before the next request, on the
 * model and on a real etcd alike: etcd's sync loop runs every 100 ms, so without this
 * wait, whether a later compaction cancels it or how its catch-up is batched would depend
 * on the speed of the disk rather than on the script.
 */
export const WATCH_CATCH_UP_MS = 300;

/** How long the model may take to answer one request, in virtual time. */
const ANSWER_LIMIT_US = 30_000_000;

/**
 * A healthy model cluster of `members` answering one request at a time, with one client on
 * the first member (as on a real cluster), once every member serves. Watch responses
 * (after their creation) come at the end, once the cluster is idle. The seed only decides
 * timing: a healthy cluster answers the same whatever it is.
 */
export class ModelSession {
  private readonly sim = new Simulator({ seed: "exec" });
  private readonly cluster: EtcdCluster;
  private readonly client;
  /** Each opened watch's index in the recorder. */
  private readonly watches: number[] = [];

  constructor(members: number) {
    this.cluster = new EtcdCluster(this.sim, { members });
    const cluster = this.cluster;
    this.client = cluster.addClient({ endpoints: [cluster.nodes[0] as number] });
    this.sim.runUntilTrue(
      () => cluster.nodes.every((_, slot) => cluster.server(slot)?.serving === true),
      ANSWER_LIMIT_US,
    );
  }

  /** Runs one step; a KV request's answer, or null for watch and progress requests. */
  step(step: ScriptStep): Obj | null {
    const { sim, client } = this;
    if (step.kind === "watch") {
      const watches = this.cluster.recorder.history().watches;
      const index = watches.length;
      client.watch(step.request);
      this.watches.push(index);
      // a watch is open once created: the next request's events reach it
      sim.runUntilTrue(
        () => (this.cluster.recorder.history().watches[index]?.responses.length ?? 0) > 0,
        sim.nowUs + ANSWER_LIMIT_US,
      );
      if (step.request.startRevision) sim.runFor(WATCH_CATCH_UP_MS * 1000);
      return null;
    }
    if (step.kind === "progress") {
      client.requestProgress();
      sim.runFor(100_000);
      return null;
    }
    let answer: KvResponse | ErrorResponse | null = null;
    client.kv(step.request, (r) => {
      answer = r;
    });
    sim.runUntilTrue(() => answer !== null, sim.nowUs + ANSWER_LIMIT_US);
    return responseJson(
      answer ?? { type: "error", code: "DeadlineExceeded", message: "context deadline exceeded" },
    );
  }

  /** Every watch response after its creation, watch by watch, once the cluster is idle. */
  finish(): Obj[] {
    this.sim.runFor(2_000_000);
    const records = this.cluster.recorder.history().watches;
    const out: Obj[] = [];
    this.watches.forEach((index, k) => {
      for (const w of records[index]?.responses ?? []) if (!w.created) out.push(watchJson(k, w));
    });
    return out;
  }
}

/** Runs a script on a healthy model cluster of `members`: answers, then watch responses. */
export function execOnModel(steps: readonly ScriptStep[], members: number): Obj[] {
  const session = new ModelSession(members);
  const out: Obj[] = [];
  for (const step of steps) {
    const answer = session.step(step);
    if (answer) out.push(answer);
  }
  return out.concat(session.finish());
}
