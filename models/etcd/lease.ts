// The lessor (etcd's server/lease): leases with a TTL and their attached keys.
//
// - Grant, revoke and checkpoint are raft entries; every member applies them.
// - Only the leader's lessor is primary: it answers keep-alives and time-to-live, and
//   watches expiry on the leader's monotonic clock. Other lessors keep leases forever.
// - Promotion (a new leader) resets every expiry to now + remaining TTL + an election
//   timeout: TTLs restart on every leader change (etcd #9888).
// - Expired leases are handed to the server about every 500 ms, at most 1000 a second,
//   and a lease being revoked is offered again after 3 s if it is still there.
// - A revoke deletes the lease's keys in one write transaction (one revision).
import { type Backend, BackendCorrupt } from "./backend.js";
import { Errors } from "./errors.js";

export interface Lease {
  readonly id: number;
  readonly ttlS: number;
  /** A checkpointed remaining TTL (0: none). */
  remainingS: number;
  /** Monotonic microseconds when it expires; Infinity while not primary. */
  expiryUs: number;
  /** When it was last offered for revocation (to retry after 3 s). */
  revokeOfferedUs: number;
  readonly keys: Set<string>;
}

/** Leases persisted in the `lease` bucket. */
interface StoredLease {
  readonly id: number;
  readonly ttlS: number;
  readonly remainingS: number;
}

export const LEASE_EXPIRY_CHECK_US = 500_000;
const REVOKE_RETRY_US = 3_000_000;
const MAX_REVOKES_PER_CHECK = 500; // 1000 a second, checked twice a second
export const MAX_LEASE_TTL_S = 9_000_000_000;

export class Lessor {
  private readonly leases = new Map<number, Lease>();
  primary = false;

  constructor(
    /** Replaced when the server swaps its database (snapshot, defrag). */
    public backend: Backend,
    /** Minimum TTL in seconds: 1.5 election timeouts, rounded up. */
    readonly minTtlS: number,
  ) {}

  /** Rebuilds leases from the backend at boot or after a snapshot (none primary). */
  restore(): void {
    this.leases.clear();
    this.primary = false;
    for (const [, v] of this.backend.range("lease", 0, Number.MAX_SAFE_INTEGER)) {
      const s = v as StoredLease;
      if (!Number.isSafeInteger(s?.id) || !Number.isFinite(s.ttlS) || !Number.isFinite(s.remainingS))
        throw new BackendCorrupt("db: bad lease record"); // a bad page: etcd panics
      this.leases.set(s.id, {
        id: s.id,
        ttlS: s.ttlS,
        remainingS: s.remainingS,
        expiryUs: Number.POSITIVE_INFINITY,
        revokeOfferedUs: 0,
        keys: new Set(),
      });
    }
  }

  get(id: number): Lease | undefined {
    return this.leases.get(id);
  }

  /** Lease ids, ascending (deterministic iteration). */
  ids(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  /** Applies a grant entry. */
  grant(id: number, ttlS: number, nowUs: number) {
    if (ttlS > MAX_LEASE_TTL_S) return Errors.leaseTtlTooLarge;
    if (this.leases.has(id)) return Errors.leaseExists;
    const ttl = Math.max(ttlS, this.minTtlS);
    const l: Lease = {
      id,
      ttlS: ttl,
      remainingS: 0,
      expiryUs: Number.POSITIVE_INFINITY,
      revokeOfferedUs: 0,
      keys: new Set(),
    };
    if (this.primary) l.expiryUs = nowUs + ttl * 1_000_000;
    this.leases.set(id, l);
    this.backend.put("lease", id, { id, ttlS: ttl, remainingS: 0 } satisfies StoredLease);
    return { id, ttlS: ttl };
  }

  /** Applies a revoke entry: the lease goes; its keys are returned for deletion. */
  revoke(id: number): string[] | null {
    const l = this.leases.get(id);
    if (!l) return null;
    this.leases.delete(id);
    this.backend.delete("lease", id);
    return [...l.keys].sort();
  }

  attach(id: number, key: string): boolean {
    const l = this.leases.get(id);
    if (!l) return false;
    l.keys.add(key);
    return true;
  }

  detach(id: number, key: string): void {
    this.leases.get(id)?.keys.delete(key);
  }

  /** Applies a checkpoint entry: records the remaining TTL (so a new leader keeps it). */
  checkpoint(id: number, remainingS: number): void {
    const l = this.leases.get(id);
    if (!l) return;
    l.remainingS = remainingS;
    this.backend.put("lease", id, { id, ttlS: l.ttlS, remainingS } satisfies StoredLease);
  }

  /**
   * A keep-alive, on the primary: the lease lives another TTL. Returns the TTL, and
   * whether a checkpointed remaining TTL must be cleared through raft (etcd's Renew
   * proposes that checkpoint, so that a new leader does not expire it early).
   */
  renew(id: number, nowUs: number) {
    if (!this.primary) return Errors.notLeader;
    const l = this.leases.get(id);
    if (!l || l.expiryUs <= nowUs) return Errors.leaseNotFound;
    l.expiryUs = nowUs + l.ttlS * 1_000_000;
    return { ttlS: l.ttlS, clearCheckpoint: l.remainingS > 0 };
  }

  /** Time to live, on the primary. */
  timeToLive(id: number, nowUs: number): { ttlS: number; grantedTtlS: number; keys: string[] } | null {
    const l = this.leases.get(id);
    if (!l) return null;
    const left =
      l.expiryUs === Number.POSITIVE_INFINITY
        ? l.ttlS
        : Math.max(0, Math.ceil((l.expiryUs - nowUs) / 1_000_000));
    return { ttlS: left, grantedTtlS: l.ttlS, keys: [...l.keys].sort() };
  }

  /** Becoming leader: every lease restarts its (remaining) TTL plus `extendUs`. */
  promote(nowUs: number, extendUs: number): void {
    this.primary = true;
    for (const l of this.leases.values()) {
      const ttl = l.remainingS > 0 ? l.remainingS : l.ttlS;
      l.expiryUs = nowUs + extendUs + ttl * 1_000_000;
      l.revokeOfferedUs = 0;
    }
  }

  /** No longer leader: leases stop expiring here. */
  demote(): void {
    this.primary = false;
    for (const l of this.leases.values()) l.expiryUs = Number.POSITIVE_INFINITY;
  }

  /** Expired leases to revoke now (rate-limited; a lease offered recently waits 3 s). */
  expired(nowUs: number): number[] {
    if (!this.primary) return [];
    const out: number[] = [];
    for (const id of this.ids()) {
      const l = this.leases.get(id) as Lease;
      if (l.expiryUs > nowUs) continue;
      if (l.revokeOfferedUs > 0 && nowUs - l.revokeOfferedUs < REVOKE_RETRY_US) continue;
      l.revokeOfferedUs = nowUs;
      out.push(id);
      if (out.length >= MAX_REVOKES_PER_CHECK) break;
    }
    return out;
  }

  /** Remaining TTLs of live leases, for a checkpoint round. */
  remaining(nowUs: number): { id: number; remainingS: number }[] {
    if (!this.primary) return [];
    return this.ids()
      .map((id) => this.leases.get(id) as Lease)
      .filter((l) => l.expiryUs > nowUs && l.expiryUs !== Number.POSITIVE_INFINITY)
      .map((l) => ({ id: l.id, remainingS: Math.max(1, Math.ceil((l.expiryUs - nowUs) / 1_000_000)) }));
  }

  get size(): number {
    return this.leases.size;
  }
}
