// Client workloads, after etcd's robustness traffic (tests/robustness/traffic) and the
// functional tester's runners. Each client runs one loop: pick an operation from its own
// random stream, send it, wait for the answer, think, go again, until its stop time or
// its operation budget. Values written are unique per client, so reads say which write
// they saw.
import type { Bugs } from "../models/bugs.js";
import type { ClientWatch, EtcdClient } from "../models/client/client.js";
import { Mutex, Session } from "../models/client/concurrency.js";
import type {
  ErrorResponse,
  KvRequest,
  KvResponse,
  RangeResponse,
  TxnOp,
  TxnResponse,
} from "../models/client/history.js";
import { prefixEnd } from "../models/client/history.js";
import type { Random } from "../sim/index.js";
import type { ClientPlan } from "./scenario.js";

export interface WorkloadEnv {
  readonly client: EtcdClient;
  readonly rng: Random;
  readonly plan: ClientPlan;
  readonly bugs: Bugs;
  /** Virtual time now (the simulator's). */
  nowUs(): number;
  /** Counts one operation and says whether it may start (stop time, budget). */
  start(): boolean;
}

type Answer = KvResponse | ErrorResponse;

/** Runs `step` again and again, a think time apart, while the client may start more. */
function loop(env: WorkloadEnv, step: (done: () => void) => void): void {
  const next = () => {
    if (!env.start()) return;
    step(() => {
      const waitUs = 1 + Math.round(env.rng.exponential(env.plan.thinkUs));
      env.client.ctx.setTimer(waitUs, "workload.think", next);
    });
  };
  next();
}

/** What a client learned from answers: the newest revision, each key's mod revision. */
class Seen {
  revision = 1;
  readonly mod = new Map<string, number>();

  learn(r: Answer): void {
    if (r.type === "error") return;
    this.revision = Math.max(this.revision, r.revision);
    if (r.type === "range") for (const kv of r.kvs) this.mod.set(kv.key, kv.modRevision);
    if (r.type === "txn") for (const x of r.responses) this.learn(x as Answer);
  }
}

// ---- etcd traffic ----------------------------------------------------------------------------

const ETCD_PREFIX = "key/";

type EtcdOp =
  | "get"
  | "stale-get"
  | "list"
  | "put"
  | "delete"
  | "txn"
  | "txn-read-past"
  | "cas"
  | "put-lease"
  | "revoke"
  | "compact";

const ETCD_MIX: readonly (readonly [EtcdOp, number])[] = [
  ["get", 14],
  ["stale-get", 5],
  ["list", 10],
  ["put", 30],
  ["delete", 8],
  ["txn", 7],
  ["txn-read-past", 2],
  ["cas", 8],
  ["put-lease", 6],
  ["revoke", 3],
  ["compact", 1],
];

/** Creates and deletes (robustness's KubernetesCreateDelete): many tombstones, few versions. */
const CREATE_DELETE_MIX: readonly (readonly [EtcdOp, number])[] = [
  ["get", 10],
  ["list", 5],
  ["put", 40],
  ["delete", 40],
  ["compact", 1],
];

/**
 * Robustness's KubernetesCreateDelete: objects with unique names, each created once
 * (a txn on mod revision 0) and deleted once, never updated, 5 to 15 alive per client, so
 * a key's create and its tombstone lie far apart in revisions (#19179 needs that).
 */
function uniqueCreateDelete(env: WorkloadEnv): void {
  const { client, rng, plan } = env;
  const seen = new Seen();
  const alive: string[] = [];
  let n = 0;
  loop(env, (done) => {
    const send = (req: KvRequest) =>
      client.kv(req, (r) => {
        seen.learn(r);
        done();
      });
    const roll = rng.float(0, 1);
    if (roll < 0.1) {
      send(
        alive.length > 0 && rng.chance(0.5)
          ? { type: "range", key: rng.pick(alive) }
          : { type: "range", key: ETCD_PREFIX, rangeEnd: prefixEnd(ETCD_PREFIX), limit: 10 },
      );
    } else if (roll < 0.115) {
      const revision = Math.max(1, seen.revision - rng.int(0, 30));
      send(plan.noCompaction ? { type: "range", key: ETCD_PREFIX } : { type: "compact", revision });
    } else if (alive.length < 5 || (alive.length <= 15 && rng.chance(0.6))) {
      const key = `${ETCD_PREFIX}${plan.name}-${n++}`;
      // an unknown outcome may have created it: it stays on the list, deleted later anyway
      alive.push(key);
      send({
        type: "txn",
        compare: [{ key, target: "MOD", result: "EQUAL", value: 0 }],
        success: [{ type: "put", key, value: `${plan.name}-v${n}` }],
        failure: [{ type: "range", key }],
      });
    } else {
      send({ type: "delete", key: alive.splice(rng.int(0, alive.length), 1)[0] as string });
    }
  });
}

/** etcd's robustness "etcd" traffic on a small key space. */
function etcdTraffic(env: WorkloadEnv): void {
  if (env.plan.mix === "unique-create-delete") {
    uniqueCreateDelete(env);
    return;
  }
  const { client, rng, plan } = env;
  const seen = new Seen();
  const leases: number[] = [];
  let n = 0;
  const value = () => `${plan.name}-${n++}`;
  // the key space, named once: one string per key (its hash computed once) instead of a
  // new string per request
  const names = Array.from({ length: Math.max(3, plan.keys) }, (_, i) => `${ETCD_PREFIX}${i}`);
  const key = () => names[rng.int(0, Math.max(1, plan.keys))] as string;
  loop(env, (done) => {
    const send = (req: KvRequest, then?: (r: Answer) => void) =>
      client.kv(req, (r) => {
        seen.learn(r);
        then?.(r);
        done();
      });
    const op = rng.weighted(plan.mix === "create-delete" ? CREATE_DELETE_MIX : ETCD_MIX);
    switch (op) {
      // (requests spelt out in each shape: a conditional spread takes V8's slow path)
      case "get":
        send({ type: "range", key: key() });
        return;
      case "stale-get":
        send({ type: "range", key: key(), serializable: true });
        return;
      case "list": {
        const rangeEnd = prefixEnd(ETCD_PREFIX);
        send(
          rng.chance(0.3)
            ? { type: "range", key: ETCD_PREFIX, rangeEnd, limit: rng.int(1, 4) }
            : { type: "range", key: ETCD_PREFIX, rangeEnd },
        );
        return;
      }
      case "put":
        send({ type: "put", key: key(), value: value() });
        return;
      case "delete":
        send({ type: "delete", key: key() });
        return;
      case "txn": {
        const [a, b, c] = rng.shuffle(names.slice()) as [string, string, string];
        send({
          type: "txn",
          compare: [
            {
              key: a,
              target: "VERSION",
              result: rng.chance(0.5) ? "GREATER" : "EQUAL",
              value: rng.int(0, 3),
            },
          ],
          success: [
            { type: "put", key: a, value: value() },
            { type: "put", key: b, value: value() },
          ],
          failure: [
            { type: "range", key: a },
            { type: "delete", key: c },
          ],
        });
        return;
      }
      case "txn-read-past": {
        // a write and a read at an older revision in one txn (#18667 races this with compaction)
        const past = Math.max(1, seen.revision - rng.int(0, 10));
        send({
          type: "txn",
          compare: [],
          success: [
            { type: "put", key: key(), value: value() },
            { type: "range", key: key(), revision: past },
          ],
          failure: [],
        });
        return;
      }
      case "cas": {
        const k = key();
        const ops: TxnOp[] = [{ type: "put", key: k, value: value() }];
        send({
          type: "txn",
          compare: [{ key: k, target: "MOD", result: "EQUAL", value: seen.mod.get(k) ?? 0 }],
          success: ops,
          failure: [{ type: "range", key: k }],
        });
        return;
      }
      case "put-lease": {
        const use = (id: number) => send({ type: "put", key: key(), value: value(), lease: id });
        if (leases.length > 0 && rng.chance(0.7)) {
          use(rng.pick(leases));
          return;
        }
        const id = client.leaseGrant(rng.int(5, 30), (r) => {
          seen.learn(r);
          if (r.type === "lease-grant") {
            leases.push(id);
            use(id);
          } else done();
        });
        return;
      }
      case "revoke": {
        if (leases.length === 0) {
          send({ type: "range", key: key() });
          return;
        }
        const id = leases.splice(rng.int(0, leases.length), 1)[0] as number;
        send({ type: "lease-revoke", id });
        return;
      }
      case "compact": {
        const revision = Math.max(1, seen.revision - rng.int(0, 30));
        send(plan.noCompaction ? { type: "range", key: key() } : { type: "compact", revision });
        return;
      }
    }
  });
}

// ---- Kubernetes traffic ------------------------------------------------------------------------

const K8S_PREFIX = "/registry/pods/default/";
const COMPACT_KEY = "compact_rev_key";

/**
 * Kubernetes' use of etcd (client/v3/kubernetes): optimistic-concurrency creates, updates
 * and deletes on mod revision with a get on failure, paginated lists pinned to the first
 * page's revision, list-then-watch with prev_kv and progress, compaction through the
 * compact_rev_key txn, and leases for TTL objects (events).
 */
function kubernetesTraffic(env: WorkloadEnv): void {
  const { client, rng, plan } = env;
  const seen = new Seen();
  const objects = Math.max(1, plan.keys);
  let n = 0;
  let watch: ClientWatch | null = null;
  let compactVersion = 0;
  let compactRev = 0;
  const name = () => `${K8S_PREFIX}pod-${rng.int(0, objects)}`;
  const startWatch = (fromRev: number) => {
    watch?.cancel();
    watch = client.watch(
      {
        key: K8S_PREFIX,
        rangeEnd: prefixEnd(K8S_PREFIX),
        startRevision: fromRev,
        prevKv: true,
        progressNotify: true,
      },
      {
        onEvents: (events) => {
          for (const e of events) {
            if (e.type === "PUT") seen.mod.set(e.kv.key, e.kv.modRevision);
            else seen.mod.delete(e.kv.key);
          }
        },
        // compacted: the reflector lists again and watches from there
        onCanceled: () => {
          watch = null;
        },
      },
    );
  };
  /** A paginated list: every page at the first page's revision. */
  const list = (done: () => void) => {
    const limit = rng.int(1, 5);
    let at = 0;
    const page = (from: string) => {
      client.kv(
        {
          type: "range",
          key: from,
          rangeEnd: prefixEnd(K8S_PREFIX),
          limit,
          ...(at > 0 ? { revision: at } : {}),
        },
        (r) => {
          seen.learn(r);
          if (r.type !== "range") return done();
          if (at === 0) at = r.revision;
          const last = r.kvs.length > 0 ? r.kvs[r.kvs.length - 1] : undefined;
          if (r.more && last) page(`${last.key}\0`);
          else {
            if (!watch) startWatch(at + 1);
            done();
          }
        },
      );
    };
    page(K8S_PREFIX);
  };
  loop(env, (done) => {
    const send = (req: KvRequest, then?: (r: Answer) => void) =>
      client.kv(req, (r) => {
        seen.learn(r);
        then?.(r);
        done();
      });
    const op = rng.weighted([
      ["create", 20],
      ["update", 30],
      ["delete", 10],
      ["get", 10],
      ["list", 10],
      ["count", 3],
      ["event", 5],
      ["progress", 5],
      ["compact", 2],
    ] as const);
    const key = name();
    const mod = seen.mod.get(key) ?? 0;
    const failure: TxnOp[] = [{ type: "range", key }];
    switch (op) {
      case "create": // only if absent
      case "update": // only if unchanged since we saw it
        send({
          type: "txn",
          compare: [{ key, target: "MOD", result: "EQUAL", value: op === "create" ? 0 : mod }],
          success: [{ type: "put", key, value: `${plan.name}-${n++}` }],
          failure,
        });
        return;
      case "delete":
        send({
          type: "txn",
          compare: [{ key, target: "MOD", result: "EQUAL", value: mod }],
          success: [{ type: "delete", key }],
          failure,
        });
        return;
      case "get":
        send({ type: "range", key, limit: 1 });
        return;
      case "list":
        list(done);
        return;
      case "count":
        send({ type: "range", key: K8S_PREFIX, rangeEnd: prefixEnd(K8S_PREFIX), countOnly: true });
        return;
      case "event": {
        // an event object with a TTL: a lease granted, never kept alive
        const id = client.leaseGrant(rng.int(5, 20), (r) => {
          seen.learn(r);
          if (r.type !== "lease-grant") return done();
          send({ type: "put", key: `/registry/events/${plan.name}-${n++}`, value: "event", lease: id });
        });
        return;
      }
      case "progress":
        client.requestProgress();
        if (!watch) list(done);
        else done();
        return;
      case "compact":
        // compact the revision recorded last time, and record the current one: one
        // compactor across API servers wins the CAS on compact_rev_key's version
        send(
          {
            type: "txn",
            compare: [{ key: COMPACT_KEY, target: "VERSION", result: "EQUAL", value: compactVersion }],
            success: [{ type: "put", key: COMPACT_KEY, value: String(seen.revision) }],
            failure: [{ type: "range", key: COMPACT_KEY }],
          },
          (r) => {
            if (r.type !== "txn") return;
            const t = r as TxnResponse;
            const prev = compactRev;
            if (t.succeeded) {
              compactVersion++;
              compactRev = seen.revision;
            } else {
              const kv = (t.responses[0] as RangeResponse).kvs[0];
              compactVersion = kv?.version ?? 0;
              compactRev = Number(kv?.value ?? 0);
            }
            if (t.succeeded && prev > 1) client.kv({ type: "compact", revision: prev }, (x) => seen.learn(x));
          },
        );
        return;
    }
  });
}

// ---- watch clients ---------------------------------------------------------------------------

/**
 * Watches on the etcd traffic's keys from revisions around the current one (in the past
 * and in the future), with prev_kv, progress notifications and filters; progress
 * requested now and then; a compacted watch started again from the compaction revision.
 * The default keeps `keys` watches open; "short-lived" is robustness's watch traffic:
 * each turn learns the current revision and opens a watch from it plus an offset in
 * [-100, 100], closed after 500 ms.
 */
function watchers(env: WorkloadEnv): void {
  const { client, rng, plan } = env;
  const short = plan.mix === "short-lived";
  const seen = new Seen();
  const open = new Set<ClientWatch>();
  const create = (aroundRev: number, exactly = false) => {
    const single = !short && rng.chance(0.3);
    const start = exactly
      ? aroundRev
      : Math.max(1, aroundRev + (short ? rng.int(-100, 101) : rng.int(-20, 6)));
    const w = client.watch(
      {
        key: single ? `${ETCD_PREFIX}${rng.int(0, Math.max(1, plan.keys))}` : ETCD_PREFIX,
        ...(single ? {} : { rangeEnd: prefixEnd(ETCD_PREFIX) }),
        startRevision: start,
        ...(rng.chance(0.5) ? { prevKv: true } : {}),
        ...(rng.chance(0.5) ? { progressNotify: true } : {}),
        ...(rng.chance(0.1) ? { filters: [rng.pick(["NOPUT", "NODELETE"] as const)] } : {}),
        ...(rng.chance(0.2) ? { requireLeader: true } : {}),
      },
      {
        // compacted: watch again from the compaction revision, the oldest still there
        onCanceled: (compactRevision) => {
          open.delete(w);
          if (compactRevision !== undefined && rng.chance(0.7)) create(compactRevision, true);
        },
      },
    );
    open.add(w);
    if (short)
      client.ctx.setTimer(500_000, "watch.close", () => {
        open.delete(w);
        w.cancel();
      });
  };
  loop(env, (done) => {
    if (short || open.size < Math.max(1, plan.keys) || rng.chance(0.05)) {
      client.kv({ type: "range", key: `${ETCD_PREFIX}0` }, (r) => {
        seen.learn(r);
        if (r.type !== "error") create(seen.revision);
        done();
      });
      if (!short || !rng.chance(0.1)) return;
    }
    client.requestProgress();
    if (!short) done();
  });
}

// ---- lease clients ---------------------------------------------------------------------------

/** Grant, attach keys, keep alive for a while, then let it expire or revoke it. */
function leaseClient(env: WorkloadEnv): void {
  const { client, rng, plan } = env;
  let n = 0;
  loop(env, (done) => {
    const ttlS = rng.int(2, 9);
    const id = client.leaseGrant(ttlS, (r) => {
      if (r.type !== "lease-grant") return done();
      const keys = rng.int(1, 3);
      let left = keys;
      for (let i = 0; i < keys; i++)
        client.put(`lease/${plan.name}/${n++}`, `${plan.name}-${n}`, { lease: id }, () => {
          if (--left > 0) return;
          const keeper = client.keepAlive(id, ttlS);
          const holdUs = rng.int(0, 3 * ttlS * 1_000_000);
          client.ctx.setTimer(holdUs, "lease.hold", () => {
            keeper.stop();
            if (rng.chance(0.4)) client.leaseRevoke(id, () => done());
            else done(); // left to expire
          });
        });
    });
  });
}

// ---- locks and elections --------------------------------------------------------------------

/**
 * Lock, a fenced write (a txn on the lock key's create revision), hold, unlock; a new
 * session when the old one's lease is lost.
 */
function lockClient(env: WorkloadEnv, kind: "lock" | "election"): void {
  const { client, rng, plan } = env;
  const prefix = kind === "lock" ? "/lock" : "/election";
  let session: Session | null = null;
  let n = 0;
  if (kind === "election" && plan.name.endsWith("1"))
    client.watch({ key: `${prefix}/`, rangeEnd: prefixEnd(`${prefix}/`) }); // Observe
  const withSession = (then: (s: Session) => void, done: () => void) => {
    if (session && !session.lost) return then(session);
    const s = new Session(client, rng.int(2, 6));
    s.open((ok) => {
      if (!ok) return done();
      session = s;
      then(s);
    });
  };
  loop(env, (done) => {
    withSession((s) => {
      const m = new Mutex(s, prefix, kind, env.bugs.has("lock-without-lease-recheck"));
      m.lock((ok) => {
        if (!ok) return done();
        const fenced = (then: () => void) =>
          client.kv(
            {
              type: "txn",
              compare: [{ key: m.key, target: "CREATE", result: "EQUAL", value: m.myRev }],
              success: [{ type: "put", key: `${prefix}-data`, value: `${plan.name}-${n++}` }],
              failure: [],
            },
            () => then(),
          );
        const release = () => m.unlock(() => done());
        client.ctx.setTimer(rng.int(0, 500_000), "lock.hold", () => {
          if (kind === "election" && rng.chance(0.5))
            m.proclaim(`${plan.name}-${n++}`, () => fenced(release));
          else fenced(release);
        });
      }, `${plan.name}-${n++}`);
    }, done);
  });
}

/** Starts a client's workload at its start time. */
export function startWorkload(env: WorkloadEnv): void {
  switch (env.plan.kind) {
    case "etcd":
      etcdTraffic(env);
      break;
    case "kubernetes":
      kubernetesTraffic(env);
      break;
    case "watch":
      watchers(env);
      break;
    case "lease":
      leaseClient(env);
      break;
    case "lock":
      lockClient(env, "lock");
      break;
    case "election":
      lockClient(env, "election");
      break;
  }
}
