// Helpers for the etcd model's tests: a cluster in a fresh simulator, and sequential
// client scripts run to completion in virtual time.
import { Bugs as BugSet, type Bugs } from "../../models/bugs.js";
import type { EtcdClient } from "../../models/client/client.js";
import type {
  ErrorResponse,
  KvRequest,
  KvResponse,
  PutRequest,
  RangeRequest,
} from "../../models/client/history.js";
import { EtcdCluster, type ServerOptions } from "../../models/etcd/cluster.js";
import type { EtcdServer } from "../../models/etcd/server.js";
import { Simulator } from "../../sim/index.js";

export interface TestCluster {
  readonly sim: Simulator;
  readonly c: EtcdCluster;
  readonly client: EtcdClient;
}

/** A cluster with one client, run until it has a leader. */
export function cluster(
  members: number,
  o: { seed?: string; server?: ServerOptions; bugs?: readonly string[] | Bugs } = {},
): TestCluster {
  const sim = new Simulator({ seed: o.seed ?? "etcd-test" });
  const bugs =
    o.bugs instanceof BugSet ? o.bugs : new BugSet((o.bugs as readonly string[] | undefined) ?? []);
  const c = new EtcdCluster(sim, { members, bugs, ...(o.server ? { server: o.server } : {}) });
  const client = c.addClient();
  // every member serves clients, knows the leader and applied what it committed
  const settled = () => {
    const l = c.leader();
    if (!l) return false;
    const ss = servers(c);
    return (
      ss.length === members &&
      ss.every((s) => s.serving && s.lead === l.cfg.memberId && s.applied === l.raft.committedIndex)
    );
  };
  waitFor(sim, settled, 10_000_000, "a leader");
  return { sim, c, client };
}

/** Runs the simulator until `cond` holds, failing the test after `limitUs`. */
export function waitFor(sim: Simulator, cond: () => boolean, limitUs: number, what: string): void {
  if (!sim.runUntilTrue(cond, sim.nowUs + limitUs)) throw new Error(`timed out waiting for ${what}`);
}

export type Answer = KvResponse | ErrorResponse;

/** One request through `client`, run to its answer. */
export function call(
  t: TestCluster,
  request: KvRequest,
  client: EtcdClient = t.client,
  limitUs = 30_000_000,
): Answer {
  let answer: Answer | null = null;
  client.kv(request, (r) => {
    answer = r;
  });
  waitFor(t.sim, () => answer !== null, limitUs, `an answer to ${request.type}`);
  return answer as unknown as Answer;
}

/** Requests one after another; their answers in order. */
export function script(
  t: TestCluster,
  requests: readonly KvRequest[],
  client: EtcdClient = t.client,
): Answer[] {
  return requests.map((r) => call(t, r, client));
}

export function put(key: string, value: string, o: { lease?: number; prevKv?: boolean } = {}): PutRequest {
  return { type: "put", key, value, ...o };
}

export function get(key: string, o: Omit<RangeRequest, "type" | "key"> = {}): RangeRequest {
  return { type: "range", key, ...o };
}

/** The answer's revision, or a thrown error naming what came back instead. */
export function rev(a: Answer): number {
  if (a.type === "error") throw new Error(`expected success, got ${a.message}`);
  return a.revision;
}

/** Every running server. */
export function servers(c: EtcdCluster): EtcdServer[] {
  const out: EtcdServer[] = [];
  for (let i = 0; i < c.size; i++) {
    const s = c.server(i);
    if (s) out.push(s);
  }
  return out;
}

/** Waits until every member is up, applied the same index, and hashes the same. */
export function converge(t: TestCluster, limitUs = 30_000_000): void {
  waitFor(
    t.sim,
    () => {
      const ss = servers(t.c);
      if (ss.length !== t.c.size) return false;
      const hashes = new Set(ss.map((s) => JSON.stringify(s.mvcc.hashKV(0))));
      const applied = new Set(ss.map((s) => s.applied));
      return hashes.size === 1 && applied.size === 1;
    },
    limitUs,
    "the members to converge",
  );
}

/** The slot of the current leader (-1 if none). */
export function leaderSlot(c: EtcdCluster): number {
  for (let i = 0; i < c.size; i++) if (c.server(i)?.raft.isLeader) return i;
  return -1;
}
