// etcd's Watch service over gRPC (HTTP/2 without TLS, as etcd serves it on its client
// port), with just enough protobuf to speak it. The HTTP gateway of etcd 3.4 reads a watch
// stream's requests only when the body ends, so progress requests need this stream.
// Field numbers are those of etcd's api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto.
import http2 from "node:http2";
import type { KeyValue, WatchEvent, WatchRequest, WatchResponse } from "../../models/client/history.js";

// ---- protobuf: varints, tags, length-delimited fields ---------------------------------------

class Writer {
  private bytes: number[] = [];

  varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
  }

  /** A varint field; zero is the default and is left out. */
  int(field: number, v: number | boolean | undefined): void {
    const n = typeof v === "boolean" ? (v ? 1 : 0) : (v ?? 0);
    if (n === 0) return;
    this.varint(BigInt(field << 3));
    this.varint(BigInt(n));
  }

  bytesField(field: number, v: Uint8Array | undefined): void {
    if (v === undefined) return;
    this.varint(BigInt((field << 3) | 2));
    this.varint(BigInt(v.length));
    for (const b of v) this.bytes.push(b);
  }

  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** The fields of one message: varints as bigint, length-delimited ones as bytes. */
type Fields = Map<number, (bigint | Uint8Array)[]>;

function readFields(buf: Uint8Array): Fields {
  const out: Fields = new Map();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error("truncated protobuf varint");
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const field = tag >> 3;
    let value: bigint | Uint8Array;
    switch (tag & 7) {
      case 0:
        value = varint();
        break;
      case 2: {
        const len = Number(varint());
        value = buf.subarray(i, i + len);
        i += len;
        break;
      }
      case 1:
        i += 8;
        continue;
      case 5:
        i += 4;
        continue;
      default:
        throw new Error(`unsupported protobuf wire type ${tag & 7}`);
    }
    const list = out.get(field);
    if (list) list.push(value);
    else out.set(field, [value]);
  }
  return out;
}

const intOf = (f: Fields, n: number): number => Number(BigInt.asIntN(64, (f.get(n)?.[0] as bigint) ?? 0n));
const bytesOf = (f: Fields, n: number): Uint8Array | undefined => f.get(n)?.[0] as Uint8Array | undefined;
const utf8 = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString("utf8") : "");
const enc = (s: string) => Buffer.from(s, "utf8");

// ---- etcd's messages ----------------------------------------------------------------------

/** WatchRequest{create_request = 1: WatchCreateRequest}. */
function createRequest(w: WatchRequest): Uint8Array {
  const c = new Writer();
  c.bytesField(1, enc(w.key));
  if (w.rangeEnd !== undefined) c.bytesField(2, enc(w.rangeEnd));
  c.int(3, w.startRevision);
  c.int(4, w.progressNotify);
  // filters = 5 (packed repeated enum: NOPUT 0, NODELETE 1)
  if (w.filters?.length) c.bytesField(5, Uint8Array.from(w.filters.map((f) => (f === "NOPUT" ? 0 : 1))));
  c.int(6, w.prevKv);
  const r = new Writer();
  r.bytesField(1, c.done());
  return r.done();
}

/** WatchRequest{progress_request = 3: WatchProgressRequest{}}. */
function progressRequest(): Uint8Array {
  const r = new Writer();
  r.bytesField(3, new Uint8Array(0));
  return r.done();
}

function keyValue(b: Uint8Array): KeyValue {
  const f = readFields(b);
  return {
    key: utf8(bytesOf(f, 1)),
    createRevision: intOf(f, 2),
    modRevision: intOf(f, 3),
    version: intOf(f, 4),
    value: utf8(bytesOf(f, 5)),
    lease: intOf(f, 6),
  };
}

/** A WatchResponse with its watch id (-1: a progress notification for the whole stream). */
function watchResponse(b: Uint8Array): { watchId: number; response: WatchResponse } {
  const f = readFields(b);
  const header = bytesOf(f, 1);
  const events: WatchEvent[] = ((f.get(11) ?? []) as Uint8Array[]).map((e) => {
    const ef = readFields(e);
    const prev = bytesOf(ef, 3);
    return {
      type: intOf(ef, 1) === 1 ? "DELETE" : "PUT",
      kv: keyValue(bytesOf(ef, 2) ?? new Uint8Array(0)),
      ...(prev ? { prevKv: keyValue(prev) } : {}),
    };
  });
  const compactRevision = intOf(f, 5);
  return {
    watchId: intOf(f, 2),
    response: {
      atUs: 0,
      revision: header ? intOf(readFields(header), 3) : 0,
      events,
      ...(intOf(f, 3) ? { created: true } : {}),
      ...(intOf(f, 4) ? { canceled: true } : {}),
      ...(compactRevision ? { compactRevision } : {}),
    },
  };
}

// ---- the stream ---------------------------------------------------------------------------

/** gRPC's length-prefixed message framing: flag byte (uncompressed), length, message. */
function frame(msg: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt32BE(msg.length, 1);
  b.set(msg, 5);
  return b;
}

/**
 * One Watch stream, as clientv3 uses it: watches are created one at a time (etcd answers
 * creates in order), and a response for watch id -1 (a progress notification in etcd 3.4)
 * goes to every watch on the stream.
 */
export class WatchStream {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private buf = Buffer.alloc(0);
  /** Listeners of created watches, by etcd's watch id. */
  private readonly byId = new Map<number, (r: WatchResponse) => void>();
  /** Listeners waiting for their create response, in order. */
  private readonly creating: ((r: WatchResponse, id: number) => void)[] = [];
  /** Set when the stream fails; a reason for whoever waits on it. */
  error: string | null = null;

  /** `onEnd`: the stream failed or the member closed it (once). */
  constructor(
    port: number,
    private readonly onEnd?: (reason: string) => void,
  ) {
    this.session = http2.connect(`http://127.0.0.1:${port}`);
    this.session.on("error", (e) => this.end(e.message));
    this.session.on("close", () => this.end("connection closed"));
    this.stream = this.session.request({
      ":method": "POST",
      ":path": "/etcdserverpb.Watch/Watch",
      "content-type": "application/grpc",
      te: "trailers",
    });
    this.stream.on("error", (e) => this.end(e.message));
    this.stream.on("close", () => this.end("stream closed"));
    this.stream.on("data", (chunk: Buffer) => this.onData(chunk));
  }

  private closing = false;

  private end(reason: string): void {
    if (this.error !== null || this.closing) return;
    this.error = reason;
    this.onEnd?.(reason);
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) return;
      const { watchId, response } = watchResponse(this.buf.subarray(5, 5 + len));
      this.buf = this.buf.subarray(5 + len);
      if (response.created) {
        const on = this.creating.shift();
        on?.(response, watchId);
      } else if (watchId === -1) {
        for (const on of this.byId.values()) on(response);
      } else {
        this.byId.get(watchId)?.(response);
      }
    }
  }

  /** Opens a watch; `on` gets every response, its create response first. */
  watch(request: WatchRequest, on: (r: WatchResponse) => void): void {
    this.creating.push((created, id) => {
      this.byId.set(id, on);
      on(created);
    });
    this.stream.write(frame(createRequest(request)));
  }

  /** Asks for a progress notification (etcd's RequestProgress). */
  requestProgress(): void {
    this.stream.write(frame(progressRequest()));
  }

  close(): void {
    this.closing = true;
    this.stream.close();
    this.session.destroy();
  }
}

/** A member's HashKV at `revision` (etcd's Maintenance.HashKV; not in 3.4's gateway). */
export async function hashKv(
  port: number,
  revision: number,
  timeoutMs = 5_000,
): Promise<{ hash: number; compactRevision: number; revision: number }> {
  const w = new Writer();
  w.int(1, revision);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const body = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`HashKV timed out after ${timeoutMs} ms`)), timeoutMs);
      session.on("error", reject);
      const req = session.request({
        ":method": "POST",
        ":path": "/etcdserverpb.Maintenance/HashKV",
        "content-type": "application/grpc",
        te: "trailers",
      });
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("error", reject);
      req.on("end", () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks));
      });
      req.end(frame(w.done()));
    });
    if (body.length < 5) throw new Error("HashKV: no answer (the member may have refused it)");
    // HashKVResponse{header = 1, hash = 2, compact_revision = 3}
    const f = readFields(body.subarray(5, 5 + body.readUInt32BE(1)));
    const header = bytesOf(f, 1);
    return {
      hash: intOf(f, 2) >>> 0,
      compactRevision: intOf(f, 3),
      revision: header ? intOf(readFields(header), 3) : 0,
    };
  } finally {
    session.destroy();
  }
}
