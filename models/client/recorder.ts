// Records the history as it happens: clients report calls and answers, the cluster's
// observer reports the revokes that leaders' lessors propose on expiry (the server
// pseudo-client). Times come from `nowUs`, the simulator's true clock, never a node's
// drifting one, so that real-time order in the history is true order.
import { isIndefinite } from "../etcd/errors.js";
import {
  type ErrorResponse,
  type History,
  isWriteRequest,
  type KeepAliveRecord,
  type KvRequest,
  type KvResponse,
  type LockRecord,
  type Operation,
  SERVER_CLIENT,
  type WatchEvent,
  type WatchRecord,
  type WatchRequest,
  type WatchResponse,
} from "./history.js";

interface MutableOp {
  id: number;
  client: number;
  member?: string;
  callUs: number;
  returnUs: number | null;
  request: KvRequest;
  response: KvResponse | ErrorResponse | null;
  done: boolean;
}

interface MutableWatch {
  id: number;
  client: number;
  member?: string;
  callUs: number;
  request: WatchRequest;
  responses: WatchResponse[];
}

export class HistoryRecorder {
  private readonly ops: MutableOp[] = [];
  private readonly watches: MutableWatch[] = [];
  private readonly keepAlives: KeepAliveRecord[] = [];
  private readonly locks: LockRecord[] = [];
  /** Expiry revokes by proposal id, until some member applies them. */
  private readonly expiries = new Map<string, MutableOp>();

  constructor(readonly nowUs: () => number) {}

  /** A client called; returns the operation's handle. */
  call(client: number, request: KvRequest): number {
    const id = this.ops.length;
    this.ops.push({ id, client, callUs: this.nowUs(), returnUs: null, request, response: null, done: false });
    return id;
  }

  /**
   * The call ended. A successful answer, or an error that proves the request took no
   * effect, closes it now; an indefinite error (a timeout, a lost connection, no leader)
   * on a write leaves its outcome unknown, as the checker must treat it.
   */
  finish(op: number, response: KvResponse | ErrorResponse, member?: string): void {
    const o = this.ops[op];
    if (!o || o.done) return;
    o.done = true;
    o.response = response;
    if (member !== undefined) o.member = member;
    if (response.type === "error" && isIndefinite(response) && isWriteRequest(o.request)) return;
    o.returnUs = this.nowUs();
  }

  /** A leader's lessor proposed revoking an expired lease. */
  expiryProposed(member: string, requestId: string, leaseId: number): void {
    const id = this.ops.length;
    const o: MutableOp = {
      id,
      client: SERVER_CLIENT,
      member,
      callUs: this.nowUs(),
      returnUs: null,
      request: { type: "lease-revoke", id: leaseId },
      response: null,
      done: false,
    };
    this.ops.push(o);
    this.expiries.set(requestId, o);
  }

  /** Some member applied an expiry revoke: the first apply is its return. */
  expiryApplied(requestId: string, response: KvResponse | ErrorResponse): void {
    const o = this.expiries.get(requestId);
    if (!o) return;
    this.expiries.delete(requestId);
    o.done = true;
    o.response = response;
    o.returnUs = this.nowUs();
  }

  watchStarted(client: number, request: WatchRequest, member?: string): number {
    const id = this.watches.length;
    this.watches.push({
      id,
      client,
      callUs: this.nowUs(),
      request,
      responses: [],
      ...(member ? { member } : {}),
    });
    return id;
  }

  watchResponse(watch: number, r: Omit<WatchResponse, "atUs">): void {
    this.watches[watch]?.responses.push({ atUs: this.nowUs(), ...r });
  }

  /** `watchResponse` for the common case, events, built without a spread (the hottest record). */
  watchEvents(watch: number, member: string, revision: number, events: readonly WatchEvent[]): void {
    this.watches[watch]?.responses.push({ atUs: this.nowUs(), member, revision, events });
  }

  keepAlive(r: KeepAliveRecord): void {
    this.keepAlives.push(r);
  }

  lockAcquired(r: Omit<LockRecord, "acquiredUs" | "releasedUs">): number {
    this.locks.push({ ...r, acquiredUs: this.nowUs(), releasedUs: null });
    return this.locks.length - 1;
  }

  lockReleased(i: number): void {
    const r = this.locks[i];
    if (r && r.releasedUs === null) this.locks[i] = { ...r, releasedUs: this.nowUs() };
  }

  get operationCount(): number {
    return this.ops.length;
  }

  /** The history so far. Calls still in flight have unknown outcomes. */
  history(): History {
    // spelt out in two shapes (a conditional spread takes V8's slow path, per operation)
    const operations: Operation[] = this.ops.map((o) =>
      o.member !== undefined
        ? {
            id: o.id,
            client: o.client,
            member: o.member,
            callUs: o.callUs,
            returnUs: o.returnUs,
            request: o.request,
            response: o.response,
          }
        : {
            id: o.id,
            client: o.client,
            callUs: o.callUs,
            returnUs: o.returnUs,
            request: o.request,
            response: o.response,
          },
    );
    const watches: WatchRecord[] = this.watches.map((w) => ({ ...w, responses: [...w.responses] }));
    return {
      operations,
      watches,
      ...(this.keepAlives.length ? { keepAlives: [...this.keepAlives] } : {}),
      ...(this.locks.length ? { locks: [...this.locks] } : {}),
    };
  }
}
