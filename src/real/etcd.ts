// A real etcd cluster on 127.0.0.1 (Debian's etcd-server: etcd 3.4), driven through its
// gRPC gateway (HTTP/JSON, keys and values in base64, 64-bit integers as strings). Every
// process it starts is stopped on close, on exit and on Ctrl-C.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
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
  readonly dataDir: string;
  proc: ChildProcess | null;
}

export class RealCluster {
  readonly dir: string;
  readonly members: Member[] = [];
  readonly version: string;

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
        dataDir: join(this.dir, `m${i + 1}`),
        proc: null,
      });
  }

  /** Starts `size` members and waits until the cluster answers a linearizable read. */
  static async start(size: number, timeoutMs = 20_000): Promise<RealCluster> {
    const bin = etcdBinary();
    if (!bin) throw new RealEtcdUnavailable("no etcd binary (apt-get install etcd-server, or set ETCD_BIN)");
    const c = new RealCluster(bin, size);
    live.add(c);
    hookExit();
    for (const m of c.members) {
      (m as { clientPort: number }).clientPort = await freePort();
      (m as { peerPort: number }).peerPort = await freePort();
    }
    for (const m of c.members) c.spawn(m);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const r = await c.call("/v3/kv/range", { key: b64("health") });
        if (r.header) return c;
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
    const cluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(",");
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
        `http://127.0.0.1:${m.peerPort}`,
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "etcd-dst",
      ],
      { stdio: "ignore" },
    );
  }

  /** The first member's endpoint: scripts are sequential, one client. */
  get port(): number {
    return (this.members[0] as Member).clientPort;
  }

  /** One unary gateway call; resolves with the decoded JSON body. */
  async call(path: string, body: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return (await res.json()) as Record<string, unknown>;
  }

  killAll(): void {
    for (const m of this.members) m.proc?.kill("SIGKILL");
  }

  /** Stops every member; keeps the data when `keep` (a failed check wants it). */
  async close(keep = false): Promise<void> {
    for (const m of this.members) {
      const p = m.proc;
      if (!p || p.exitCode !== null) continue;
      const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
      p.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      if (p.exitCode === null) p.kill("SIGKILL");
    }
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

function request(r: KvRequest): { path: string; body: unknown } {
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

function response(r: KvRequest, j: Json): KvResponse | ErrorResponse {
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
