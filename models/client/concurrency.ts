// clientv3/concurrency: a session (a lease kept alive), Mutex and Election. A holder's
// place in line is its key's create revision under the prefix; it holds the lock once
// every older key is gone. After waiting, the recipe reads its own key again (#11456):
// if the session's lease expired meanwhile, the key is gone and the lock is not held.
// The planted `lock-without-lease-recheck` skips that read (etcd 3.4.3, Jepsen 2020).
//
// Every request goes through the client, so it is in the history; each acquisition is
// recorded with the revision that justified it, for the ownership checkers.

import type { EtcdClient } from "./client.js";
import {
  type ErrorResponse,
  type KeyValue,
  type KvResponse,
  prefixEnd,
  type RangeResponse,
  type TxnResponse,
} from "./history.js";

export type Done = (ok: boolean, error?: string) => void;

/** A lease kept alive for as long as the session lives (concurrency.NewSession). */
export class Session {
  lease = 0;
  lost = false;
  private keeper: { stop(): void } | null = null;

  constructor(
    readonly client: EtcdClient,
    readonly ttlS: number,
  ) {}

  open(done: Done, onLost?: () => void): void {
    const id = this.client.leaseGrant(this.ttlS, (r) => {
      if (r.type === "error") {
        done(false, r.message);
        return;
      }
      this.lease = id;
      this.keeper = this.client.keepAlive(id, this.ttlS, () => {
        this.lost = true;
        onLost?.();
      });
      done(true);
    });
  }

  close(done?: Done): void {
    this.keeper?.stop();
    if (this.lease === 0) {
      done?.(true);
      return;
    }
    this.client.leaseRevoke(this.lease, (r) =>
      done?.(r.type !== "error", r.type === "error" ? r.message : undefined),
    );
  }
}

function isError(r: KvResponse | ErrorResponse): r is ErrorResponse {
  return r.type === "error";
}

/** A Mutex (kind "lock") or an Election campaign (kind "election"): the same queue. */
export class Mutex {
  readonly key: string;
  myRev = 0;
  private record = -1;

  constructor(
    readonly session: Session,
    readonly prefix: string,
    readonly kind: "lock" | "election" = "lock",
    /** The planted #11456: return after waiting without re-reading our own key. */
    readonly skipRecheck = false,
  ) {
    this.key = `${prefix}/${session.lease.toString(16)}`;
  }

  private get client(): EtcdClient {
    return this.session.client;
  }

  /** Lock, or Campaign with `value`: done(true) once held. */
  lock(done: Done, value = ""): void {
    const pfx = `${this.prefix}/`;
    const all = { type: "range" as const, key: pfx, rangeEnd: prefixEnd(pfx) };
    this.client.kv(
      {
        type: "txn",
        compare: [{ key: this.key, target: "CREATE", result: "EQUAL", value: 0 }],
        success: [{ type: "put", key: this.key, value, lease: this.session.lease }, all],
        failure: [{ type: "range", key: this.key }, all],
      },
      (r) => {
        if (isError(r)) {
          done(false, r.message);
          return;
        }
        const t = r as TxnResponse;
        if (t.succeeded) this.myRev = t.revision;
        else {
          const mine = (t.responses[0] as RangeResponse).kvs[0];
          if (!mine) {
            done(false, "lock key vanished");
            return;
          }
          this.myRev = mine.createRevision;
        }
        const owner = oldest((t.responses[1] as RangeResponse).kvs);
        if (!owner || owner.createRevision === this.myRev) {
          this.acquired(t.revision);
          done(true);
          return;
        }
        this.waitDeletes(all, (ok, rev, error) => {
          if (!ok) {
            done(false, error);
            return;
          }
          if (this.skipRecheck) {
            this.acquired(rev);
            done(true);
            return;
          }
          // is our session's key still there? (the fix of #11456)
          this.client.get(this.key, {}, (g) => {
            if (isError(g)) {
              done(false, g.message);
              return;
            }
            if ((g as RangeResponse).kvs.length === 0) {
              done(false, "concurrency: session expired");
              return;
            }
            this.acquired(g.revision);
            done(true);
          });
        });
      },
    );
  }

  private acquired(revision: number): void {
    this.record = this.client.cfg.recorder.lockAcquired({
      kind: this.kind,
      client: this.client.id,
      prefix: this.prefix,
      key: this.key,
      lease: this.session.lease,
      createRevision: this.myRev,
      acquiredRevision: revision,
    });
  }

  /**
   * Waits until no key under the prefix is older than ours (concurrency.waitDeletes):
   * read the newest older key, watch it until it is deleted, and again.
   */
  private waitDeletes(
    all: { type: "range"; key: string; rangeEnd: string },
    done: (ok: boolean, revision: number, error?: string) => void,
  ): void {
    this.client.kv(all, (r) => {
      if (isError(r)) {
        done(false, 0, r.message);
        return;
      }
      const range = r as RangeResponse;
      const older = range.kvs.filter((kv) => kv.createRevision < this.myRev);
      const newest = older.reduce<KeyValue | null>(
        (a, kv) => (a === null || kv.createRevision > a.createRevision ? kv : a),
        null,
      );
      if (!newest) {
        done(true, range.revision);
        return;
      }
      const w = this.client.watch(
        { key: newest.key, startRevision: range.revision + 1, filters: ["NOPUT"] },
        {
          onEvents: (events) => {
            if (!events.some((e) => e.type === "DELETE")) return;
            w.cancel();
            this.waitDeletes(all, done);
          },
          onCanceled: () => this.waitDeletes(all, done),
        },
      );
    });
  }

  /** Proclaim (election only): a new value while we still lead. */
  proclaim(value: string, done: Done): void {
    this.client.kv(
      {
        type: "txn",
        compare: [{ key: this.key, target: "CREATE", result: "EQUAL", value: this.myRev }],
        success: [{ type: "put", key: this.key, value, lease: this.session.lease }],
        failure: [],
      },
      (r) => done(!isError(r) && (r as TxnResponse).succeeded, isError(r) ? r.message : undefined),
    );
  }

  /** Unlock or Resign: delete our key. */
  unlock(done: Done): void {
    this.client.delete(this.key, {}, (r) => {
      if (!isError(r) && this.record >= 0) this.client.cfg.recorder.lockReleased(this.record);
      done(!isError(r), isError(r) ? r.message : undefined);
    });
  }
}

function oldest(kvs: readonly KeyValue[]): KeyValue | null {
  let best: KeyValue | null = null;
  for (const kv of kvs) if (best === null || kv.createRevision < best.createRevision) best = kv;
  return best;
}
