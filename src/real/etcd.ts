// A real etcd cluster on 127.0.0.1 (Debian's etcd-server: etcd 3.4), driven through its
// gRPC gateway (HTTP/JSON, keys and values in base64, 64-bit integers as strings). Every
// process it starts is stopped on close, on exit and on Ctrl-C.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  ErrorResponse,
  KeyValue,
  KvRequest,
  KvResponse,
  TxnOp,
  TxnOpResponse,
  WatchResponse,
} from "../../models/client/history.js";
import { responseJson, type ScriptStep, WATCH_CATCH_UP_MS, watchJson } from "../exec.js";
import { WatchStream } from "./grpc.js";
import { PeerProxies } from "./proxy.js";

/** etcd could not be found or started. */
export class RealEtcdUnavailable extends Error {}

/** The etcd binary: $ETCD_BIN, else `etcd` on the PATH, else Debian's. */
export function etcdBinary(): string | null {
  const candidates = [process.env.ETCD_BIN, "/usr/bin/etcd", "/usr/local/bin/etcd"].filter(
    (x): x is string => !!x,
  );
  for (const c of candidates) if (existsSync(c)) return c;
  const which = spawnSync("sh", ["-c", "command -v etcd"], { encoding: "utf8" });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null;
}

export function etcdVersion(bin: string): string {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  return /etcd Version: (\S+)/.exec(r.stdout ?? "")?.[1] ?? "unknown";
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const live = new Set<RealCluster>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const c of live) c.killAll();
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.once(sig, () => {
      for (const c of live) c.killAll();
      process.exit(130);
    });
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** The port it advertises to its peers: its peer proxy's, or its own peer port. */
  readonly advertisedPeerPort: number;
  readonly dataDir: string;
  proc: ChildProcess | null;
  paused: boolean;
}

/** A member process that ended without being told to (a panic, a failed start). */
export interface SelfExit {
  readonly member: number;
  readonly name: string;
  readonly code: number | null;
  readonly signal: string | null;
  /** The member log's last `panic:` line, if it has one. */
  readonly panic: string | null;
}

export interface RealClusterOptions {
  readonly timeoutMs?: number;
  /** Put a proxy in front of every peer port (partitions and delays between members). */
  readonly proxies?: boolean;
}

export class RealCluster {
  readonly dir: string;
  readonly members: Member[] = [];
  readonly version: string;
  /** With `proxies`: the peer network's faults. */
  proxies: PeerProxies | null = null;

  /** Members that exited on their own, in order; `takeSelfExits` hands them over once. */
  private selfExits: SelfExit[] = [];

  private constructor(
    readonly bin: string,
    size: number,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "etcd-dst-real-"));
    this.version = etcdVersion(bin);
    for (let i = 0; i < size; i++)
      this.members.push({
        name: `m${i + 1}`,
        clientPort: 0,
        peerPort: 0,
        advertisedPeerPort: 0,
        dataDir: join(this.dir, `m${i + 1}`),
        proc: null,
        paused: false,
      });
  }

  /** Starts `size` members and waits until the cluster answers a linearizable read. */
  static async start(size: number, o: RealClusterOptions = {}): Promise<RealCluster> {
    const timeoutMs = o.timeoutMs ?? 20_000;
    const bin = etcdBinary();
    if (!bin) throw new RealEtcdUnavailable("no etcd binary (apt-get install etcd-server, or set ETCD_BIN)");
    const c = new RealCluster(bin, size);
    live.add(c);
    hookExit();
    for (const m of c.members) {
      const w = m as { clientPort: number; peerPort: number; advertisedPeerPort: number };
      w.clientPort = await freePort();
      w.peerPort = await freePort();
      w.advertisedPeerPort = o.proxies ? await freePort() : w.peerPort;
    }
    if (o.proxies)
      c.proxies = await PeerProxies.start(
        c.members.map((m) => m.advertisedPeerPort),
        c.members.map((m) => m.peerPort),
      );
    for (const m of c.members) c.spawn(m);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const rs = await Promise.all(
          c.members.map((_, i) => c.call("/v3/kv/range", { key: b64("health") }, i)),
        );
        if (rs.every((r) => r.header)) {
          if (c.proxies) {
            const list = await c.call("/v3/cluster/member/list", {});
            const ids = new Map(
              ((list.members as Json[] | undefined) ?? []).map((x) => [String(x.name), BigInt(String(x.ID))]),
            );
            c.proxies.learn(c.members.map((m) => (ids.get(m.name) ?? 0n).toString(16)));
          }
          return c;
        }
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        await c.close(true);
        throw new RealEtcdUnavailable(
          `etcd did not become healthy within ${timeoutMs} ms (data in ${c.dir})`,
        );
      }
      await sleep(100);
    }
  }

  private spawn(m: Member): void {
    const cluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.advertisedPeerPort}`).join(",");
    // etcd logs to stderr: kept in the cluster's directory, with the data
    const log = openSync(join(this.dir, `${m.name}.log`), "a");
    m.proc = spawn(
      this.bin,
      [
        "--name",
        m.name,
        "--data-dir",
        m.dataDir,
        "--listen-client-urls",
        `http://127.0.0.1:${m.clientPort}`,
        "--advertise-client-urls",
        `http://127.0.0.1:${m.clientPort}`,
        "--listen-peer-urls",
        `http://127.0.0.1:${m.peerPort}`,
        "--initial-advertise-peer-urls",
        `http://127.0.0.1:${m.advertisedPeerPort}`,
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "etcd-dst",
      ],
      { stdio: ["ignore", "ignore", log] },
    );
    closeSync(log);
    m.paused = false;
    const proc = m.proc;
    proc.once("exit", (code, signal) => {
      if (m.proc !== proc) return; // killed or stopped by us: kill() and close() let go first
      m.proc = null;
      const i = this.members.indexOf(m);
      this.selfExits.push({ member: i, name: m.name, code, signal, panic: this.panicLine(m) });
    });
  }

  /** The last `panic:` line of a member's log (etcd writes it before exiting 2). */
  private panicLine(m: Member): string | null {
    try {
      const lines = readFileSync(join(this.dir, `${m.name}.log`), "utf8").split("\n");
      for (let k = lines.length - 1; k >= 0; k--)
        if ((lines[k] as string).startsWith("panic: ")) return (lines[k] as string).slice(7).trim();
    } catch {
      // no log
    }
    return null;
  }

  /** The members that exited on their own since the last call. */
  takeSelfExits(): SelfExit[] {
    const out = this.selfExits;
    this.selfExits = [];
    return out;
  }

  /** SIGKILL: the process dies at once, unsynced writes and all. */
  async kill(i: number): Promise<void> {
    const m = this.members[i] as Member;
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    m.proc = null;
    p.kill("SIGKILL");
    await exited;
  }

  /** Starts a killed member again on its data directory. */
  restart(i: number): void {
    const m = this.members[i] as Member;
    if (!m.proc) this.spawn(m);
  }

  /** SIGSTOP or SIGCONT: the process freezes with its connections open, or goes on. */
  pause(i: number, on: boolean): void {
    const m = this.members[i] as Member;
    if (!m.proc || m.paused === on) return;
    m.proc.kill(on ? "SIGSTOP" : "SIGCONT");
    m.paused = on;
  }

  isUp(i: number): boolean {
    const m = this.members[i] as Member;
    return m.proc !== null && !m.paused;
  }

  clientPortOf(i: number): number {
    return (this.members[i] as Member).clientPort;
  }

  /** The first member's endpoint: scripts are sequential, one client. */
  get port(): number {
    return (this.members[0] as Member).clientPort;
  }

  /** One unary gateway call on member `i`; resolves with the decoded JSON body. */
  async call(path: string, body: unknown, i = 0, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const res = await fetch(`http://127.0.0.1:${this.clientPortOf(i)}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new Error(
        `${path} on ${(this.members[i] as Member).name}: HTTP ${res.status} ${text.slice(0, 80).trim()}`,
      );
    }
  }

  killAll(): void {
    for (const m of this.members) m.proc?.kill("SIGKILL");
  }

  /** Stops every member; keeps the data when `keep` (a failed check wants it). */
  async close(keep = false): Promise<void> {
    for (const m of this.members) {
      const p = m.proc;
      m.proc = null;
      if (!p || p.exitCode !== null) continue;
      if (m.paused) p.kill("SIGCONT");
      const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
      p.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      if (p.exitCode === null) p.kill("SIGKILL");
    }
    await this.proxies?.close();
    live.delete(this);
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: unknown) => (typeof s === "string" ? Buffer.from(s, "base64").toString("utf8") : "");
const num = (x: unknown) => (x === undefined ? 0 : Number(x));

/** gRPC status numbers as names (the gateway gives numbers). */
const GRPC_CODES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

// ---- requests and answers through the gateway ----------------------------------------------

function rangeBody(r: KvRequest & { type: "range" }) {
  return {
    key: b64(r.key),
    ...(r.rangeEnd !== undefined ? { range_end: b64(r.rangeEnd) } : {}),
    ...(r.revision ? { revision: r.revision } : {}),
    ...(r.limit ? { limit: r.limit } : {}),
    ...(r.serializable ? { serializable: true } : {}),
    ...(r.keysOnly ? { keys_only: true } : {}),
    ...(r.countOnly ? { count_only: true } : {}),
  };
}

function putBody(r: KvRequest & { type: "put" }) {
  return {
    key: b64(r.key),
    value: b64(r.value),
    ...(r.lease ? { lease: r.lease } : {}),
    ...(r.prevKv ? { prev_kv: true } : {}),
  };
}

function deleteBody(r: KvRequest & { type: "delete" }) {
  return {
    key: b64(r.key),
    ...(r.rangeEnd !== undefined ? { range_end: b64(r.rangeEnd) } : {}),
    ...(r.prevKv ? { prev_kv: true } : {}),
  };
}

function opBody(op: TxnOp) {
  if (op.type === "range") return { request_range: rangeBody(op) };
  if (op.type === "put") return { request_put: putBody(op) };
  return { request_delete_range: deleteBody(op) };
}

const COMPARE_FIELD = {
  VERSION: "version",
  CREATE: "create_revision",
  MOD: "mod_revision",
  VALUE: "value",
  LEASE: "lease",
} as const;

/** A request as a gateway call. */
export function request(r: KvRequest): { path: string; body: unknown } {
  switch (r.type) {
    case "range":
      return { path: "/v3/kv/range", body: rangeBody(r) };
    case "put":
      return { path: "/v3/kv/put", body: putBody(r) };
    case "delete":
      return { path: "/v3/kv/deleterange", body: deleteBody(r) };
    case "txn":
      return {
        path: "/v3/kv/txn",
        body: {
          compare: r.compare.map((c) => ({
            key: b64(c.key),
            ...(c.rangeEnd !== undefined ? { range_end: b64(c.rangeEnd) } : {}),
            target: c.target,
            result: c.result,
            [COMPARE_FIELD[c.target]]: c.target === "VALUE" ? b64(String(c.value)) : c.value,
          })),
          success: r.success.map(opBody),
          failure: r.failure.map(opBody),
        },
      };
    case "compact":
      return {
        path: "/v3/kv/compaction",
        body: { revision: r.revision, ...(r.physical ? { physical: true } : {}) },
      };
    case "lease-grant":
      return { path: "/v3/lease/grant", body: { TTL: r.ttlS, ID: r.id } };
    case "lease-revoke":
      // etcd 3.4's gateway path (3.5 adds /v3/lease/revoke)
      return { path: "/v3/kv/lease/revoke", body: { ID: r.id } };
  }
}

type Json = Record<string, unknown>;

function kvOf(x: Json): KeyValue {
  return {
    key: unb64(x.key),
    value: unb64(x.value),
    createRevision: num(x.create_revision),
    modRevision: num(x.mod_revision),
    version: num(x.version),
    lease: num(x.lease),
  };
}

const revisionOf = (j: Json) => num((j.header as Json | undefined)?.revision);

function opResponse(op: TxnOp, j: Json, revision: number): TxnOpResponse {
  switch (op.type) {
    case "range":
      return {
        type: "range",
        revision,
        kvs: ((j.kvs as Json[] | undefined) ?? []).map(kvOf),
        count: num(j.count),
        more: j.more === true,
      };
    case "put":
      return { type: "put", revision, ...(j.prev_kv ? { prevKv: kvOf(j.prev_kv as Json) } : {}) };
    case "delete":
      return {
        type: "delete",
        revision,
        deleted: num(j.deleted),
        ...(j.prev_kvs ? { prevKvs: (j.prev_kvs as Json[]).map(kvOf) } : {}),
      };
  }
}

/** A gateway answer (or error) as the history's response. */
export function response(r: KvRequest, j: Json): KvResponse | ErrorResponse {
  if (j.error !== undefined || j.code !== undefined)
    return {
      type: "error",
      code: GRPC_CODES[num(j.code)] ?? String(j.code),
      message: String(j.message ?? j.error),
    };
  const revision = revisionOf(j);
  switch (r.type) {
    case "range":
    case "put":
    case "delete":
      return opResponse(r, j, revision);
    case "txn": {
      const succeeded = j.succeeded === true;
      const ops = succeeded ? r.success : r.failure;
      const rs = (j.responses as Json[] | undefined) ?? [];
      return {
        type: "txn",
        revision,
        succeeded,
        responses: ops.map((op, i) =>
          opResponse(op, (Object.values(rs[i] ?? {})[0] as Json) ?? {}, revision),
        ),
      };
    }
    case "compact":
      return { type: "compact", revision };
    case "lease-grant":
      return { type: "lease-grant", revision, id: num(j.ID), ttlS: num(j.TTL) };
    case "lease-revoke":
      return { type: "lease-revoke", revision };
  }
}

/** `exec --real`: the script on a fresh real cluster of `members`, answered as on the model. */
export async function execOnReal(
  steps: readonly ScriptStep[],
  members: number,
): Promise<Record<string, unknown>[]> {
  const cluster = await RealCluster.start(members);
  const out: Record<string, unknown>[] = [];
  const watches: WatchResponse[][] = [];
  let stream: WatchStream | null = null;
  const received = () => watches.reduce((n, w) => n + w.length, 0);
  const until = async (done: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline && !stream?.error) await sleep(2);
  };
  try {
    for (const step of steps) {
      if (step.kind === "watch") {
        stream ??= new WatchStream(cluster.port);
        const responses: WatchResponse[] = [];
        watches.push(responses);
        stream.watch(step.request, (r) => responses.push(r));
        await until(() => responses.length > 0, 5_000);
        if (step.request.startRevision) await sleep(WATCH_CATCH_UP_MS);
        continue;
      }
      if (step.kind === "progress") {
        if (!stream) continue;
        const before = received();
        stream.requestProgress();
        await until(() => received() > before, 500);
        continue;
      }
      const { path, body } = request(step.request);
      out.push(responseJson(response(step.request, await cluster.call(path, body))));
    }
    if (watches.length) await sleep(1_000);
    if (stream?.error) throw new RealEtcdUnavailable(`watch stream failed: ${stream.error}`);
    watches.forEach((responses, k) => {
      for (const w of responses) if (!w.created) out.push(watchJson(k, w));
    });
  } finally {
    stream?.close();
    await cluster.close();
  }
  return out;
}
