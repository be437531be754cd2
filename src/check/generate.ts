// Synthetic etcd histories for the checker's tests and benchmark: concurrent clients,
// each operation taking effect at a random point inside its call/return window, answers
// computed by the specification. Some writes end with an unknown outcome (applied or
// not). Anomalies can be planted to make histories that are not linearizable.
import type {
  ErrorResponse,
  History,
  KeyValue,
  KvRequest,
  KvResponse,
  Operation,
} from "../../models/client/history.js";
import { Random } from "../../sim/index.js";
import { applyRequest, type EtcdState, INITIAL_ETCD_STATE } from "./etcd.js";

export type Anomaly = "stale-read" | "lost-write" | "revision-back" | "half-txn" | "wrong-compare";

export interface GenerateOptions {
  readonly seed: string;
  readonly ops: number;
  readonly clients?: number;
  readonly keys?: number;
  /** Fraction of writes whose outcome is unknown. */
  readonly unknownRate?: number;
  readonly anomaly?: Anomaly;
  /** Include compactions, leases and txns (default true). */
  readonly rich?: boolean;
}

interface Pending {
  readonly client: number;
  readonly callUs: number;
  readonly returnUs: number;
  readonly effectUs: number;
  readonly request: KvRequest;
  readonly unknown: boolean;
}

export function generateHistory(o: GenerateOptions): History {
  const rng = new Random(o.seed);
  const clients = o.clients ?? 8;
  const keys = o.keys ?? 10;
  const unknownRate = o.unknownRate ?? 0.01;
  const rich = o.rich ?? true;
  const pending: Pending[] = [];
  const clock = new Array<number>(clients).fill(0);
  let value = 0;
  let leaseId = 0;
  const leases: number[] = [];
  for (let n = 0; n < o.ops; n++) {
    const client = n % clients;
    const callUs = (clock[client] as number) + rng.int(0, 50);
    const returnUs = callUs + 1 + rng.int(0, 400);
    clock[client] = returnUs;
    const key = `k${rng.int(0, keys)}`;
    let request: KvRequest;
    const dice = rng.int(0, 100);
    if (dice < 35) request = { type: "range", key };
    else if (dice < 40) request = { type: "range", key: "k", rangeEnd: "l", limit: rng.chance(0.5) ? 3 : 0 };
    else if (dice < 70) request = { type: "put", key, value: `v${++value}` };
    else if (dice < 75) request = { type: "delete", key };
    else if (dice < 85 && rich) {
      request = {
        type: "txn",
        compare: [{ key, target: "MOD", result: "LESS", value: rng.int(0, n + 2) }],
        success: [{ type: "put", key, value: `v${++value}` }],
        failure: [{ type: "range", key }],
      };
    } else if (dice < 88 && rich)
      request = { type: "compact", revision: rng.int(1, Math.max(2, Math.floor(n / 3))) };
    else if (dice < 91 && rich) {
      leaseId++;
      leases.push(leaseId);
      request = { type: "lease-grant", id: leaseId, ttlS: 60 };
    } else if (dice < 95 && rich && leases.length > 0)
      request = { type: "put", key, value: `v${++value}`, lease: rng.pick(leases) };
    else if (dice < 97 && rich && leases.length > 0) request = { type: "lease-revoke", id: rng.pick(leases) };
    else request = { type: "range", key, revision: rng.int(1, Math.max(2, n)) };
    const isWrite = request.type !== "range";
    pending.push({
      client,
      callUs,
      returnUs,
      effectUs: rng.int(callUs, returnUs + 1),
      request,
      unknown: isWrite && rng.chance(unknownRate),
    });
  }
  // apply in effect order
  const order = pending
    .map((_, i) => i)
    .sort((a, b) => (pending[a] as Pending).effectUs - (pending[b] as Pending).effectUs || a - b);
  const responses = new Array<KvResponse | ErrorResponse | null>(pending.length).fill(null);
  let state: EtcdState = INITIAL_ETCD_STATE;
  const states: EtcdState[] = [];
  for (const i of order) {
    const p = pending[i] as Pending;
    // an unknown write happened with probability 1/2
    if (p.unknown && rng.chance(0.5)) continue;
    const { state: next, response } = applyRequest(state, p.request);
    states.push(state);
    state = next;
    responses[i] = response;
  }
  let ops: Operation[] = pending.map((p, i) => ({
    id: i,
    client: p.client,
    callUs: p.callUs,
    returnUs: p.unknown ? null : p.returnUs,
    request: p.request,
    response: p.unknown ? null : (responses[i] as KvResponse | ErrorResponse),
  }));
  if (o.anomaly) ops = plant(ops, o.anomaly, rng, states);
  return { operations: ops, watches: [] };
}

/** Plants one anomaly in a valid history. */
function plant(ops: Operation[], anomaly: Anomaly, rng: Random, states: readonly EtcdState[]): Operation[] {
  const pickIndex = (pred: (op: Operation) => boolean): number => {
    const candidates = ops.map((op, i) => (pred(op) ? i : -1)).filter((i) => i >= 0);
    // prefer the second half, so that something happened before
    return candidates.length === 0
      ? -1
      : ((candidates[Math.floor(candidates.length / 2 + rng.int(0, Math.ceil(candidates.length / 2)))] ??
          candidates[0]) as number);
  };
  const replace = (i: number, op: Operation): Operation[] => ops.map((x, j) => (j === i ? op : x));
  switch (anomaly) {
    case "stale-read": {
      // a read that returns an older value of a key that was overwritten
      const i = pickIndex(
        (op) =>
          op.request.type === "range" &&
          op.response?.type === "range" &&
          op.response.kvs.length === 1 &&
          op.response.kvs[0]?.modRevision !== op.response.kvs[0]?.createRevision,
      );
      if (i < 0) return ops;
      const resp = ops[i]?.response as KvResponse & { type: "range" };
      const kv = resp.kvs[0] as KeyValue;
      const old = states.find(
        (s) =>
          s.kvs.get(kv.key) &&
          (s.kvs.get(kv.key)?.modRevision ?? 0) < kv.modRevision &&
          s.kvs.get(kv.key)?.value !== kv.value,
      );
      const oldKv = old?.kvs.get(kv.key);
      if (!oldKv) return ops;
      return replace(i, {
        ...(ops[i] as Operation),
        response: { ...resp, kvs: [oldKv] },
      });
    }
    case "lost-write": {
      // an acknowledged put that later reads never see: drop its effect by renaming its value
      const i = pickIndex((op) => op.request.type === "put" && op.response?.type === "put");
      if (i < 0) return ops;
      const op = ops[i] as Operation;
      const req = op.request as KvRequest & { type: "put" };
      return ops.map((x, j) => {
        if (j <= i || x.response?.type !== "range") return x;
        const r = x.response;
        return {
          ...x,
          response: {
            ...r,
            kvs: r.kvs.map((kv) => (kv.value === req.value ? { ...kv, value: `${kv.value}-lost` } : kv)),
          },
        };
      });
    }
    case "revision-back": {
      // a read whose header revision is lower than one already returned before it was called
      const i = pickIndex(
        (op) => op.request.type === "range" && op.response?.type === "range" && op.response.revision > 3,
      );
      if (i < 0) return ops;
      const op = ops[i] as Operation;
      const r = op.response as KvResponse;
      return replace(i, { ...op, response: { ...r, revision: r.revision - 2 } as KvResponse });
    }
    case "half-txn":
    case "wrong-compare": {
      // a txn that reports the other branch than its compare gives
      const i = pickIndex((op) => op.request.type === "txn" && op.response?.type === "txn");
      if (i < 0) return ops;
      const op = ops[i] as Operation;
      const r = op.response as KvResponse & { type: "txn" };
      return replace(i, { ...op, response: { ...r, succeeded: !r.succeeded } });
    }
  }
}
