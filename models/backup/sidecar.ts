// The backup sidecar of etcd-backup-restore, and the pod it shares with etcd
// (../shared/reference/etcd-model.md §4).
//
// At every start of the pod the sidecar validates the data directory before etcd may run:
// - the mode comes from the marker the bootstrap script leaves: its exit code, 0, 130 or
//   143 → sanity; anything else, or no marker (killed with the pod) → full;
// - steps (pkg/initializer/validator/datavalidator.go): the wrong-volume guard, existence,
//   structure, the revision check against the latest backup (single member only; if the
//   db is behind, a second check lets an embedded etcd replay the WAL tail for up to 60 s),
//   and in full mode the content checks: the newest snapshot file, the WAL's CRC chain
//   from it (one torn tail repaired), and the db's integrity (bbolt's tx.Check);
// - actions (pkg/initializer/initializer.go): one member → restore the latest full
//   snapshot and the deltas after it, or delete the data dir when the store is empty;
//   several members → remove the member, wipe it, add it back as a learner; a wrong
//   volume → refuse to start.
// Once etcd serves, the sidecar uploads a full snapshot or a delta every period (in a
// multi-member cluster only the leader's sidecar does, once it holds every committed
// entry). Validation costs virtual time in proportion to the data it reads.
import { type Disk, type NodeContext, NodeCrash, type NodeProgram } from "../../sim/index.js";
import type { Bugs } from "../bugs.js";
import { decode, encode } from "../codec.js";
import { Backend, BackendCorrupt, type Bucket, type Key } from "../etcd/backend.js";
import { revKey, revOfKey } from "../etcd/mvcc.js";
import {
  DB_PATH,
  EtcdServer,
  type EtcdServerOptions,
  MEMBER_DIR,
  META_CI,
  META_TERM,
} from "../etcd/server.js";
import { Snapshotter } from "../raft/snap.js";
import { listSegments, scanSnapshots, Wal, WalError, WalTornTail } from "../raft/wal.js";
import {
  type BackupKind,
  isStoreResponse,
  type LatestBackups,
  latestRevision,
  type StoreRequest,
  type StoreResponse,
} from "./store.js";

/** The namespace guard etcd-backup-restore keeps in the volume. */
export const SAFE_GUARD = "safe_guard";
/** Where the bootstrap script writes etcd's exit code. */
export const VALIDATION_MARKER = "validation_marker";
/**
 * Left by a restore that had to stop the embedded etcd first (a pod restart): the next
 * start runs etcd on the restored dir at once, as the initializer does after a restore.
 */
const RESTORED_MARKER = "restored";
const WAL_DIR = `${MEMBER_DIR}/wal`;
const SNAP_DIR = `${MEMBER_DIR}/snap`;
/** etcd-backup-restore polls the embedded etcd this long in the second revision check. */
const REPLAY_WAIT_US = 60_000_000;
/** The kubelet's back-off before it starts the pod again after the sidecar restored. */
const RESTART_BACKOFF_US = 1_000_000;

export type ValidationMode = "full" | "sanity";

/** etcd-backup-restore's failure names. */
export type DataDirFailure =
  | "WrongVolumeMounted"
  | "DataDirectoryInvStruct"
  | "DataDirectoryCorrupt"
  | "RevisionConsistencyError";

export interface DataDirVerdict {
  readonly failure: DataDirFailure | null;
  /** No data directory at all (a new or wiped volume). */
  readonly fresh: boolean;
  readonly detail: string;
  /** The db's newest revision (0 when not read). */
  readonly dbRevision: number;
  /** The db is behind the latest backup: the WAL tail must be replayed to tell (step 5). */
  readonly behind: boolean;
  /** Virtual time the checks took. */
  readonly costUs: number;
}

/** The mode for the marker's content (null: no marker). */
export function validationMode(marker: string | null): ValidationMode {
  return marker !== null && ["0", "130", "143"].includes(marker.trim()) ? "sanity" : "full";
}

/** Virtual time to read `bytes` for a check: full validation reads everything, slower. */
function readCostUs(mode: ValidationMode, bytes: number): number {
  return mode === "full" ? 50_000 + Math.ceil(bytes / 20) : 10_000 + Math.ceil(bytes / 200);
}

/** The newest main revision in a db's key bucket (the revision check's "last key"). */
export function dbRevision(tables: ReadonlyMap<Bucket, ReadonlyMap<Key, unknown>>): number {
  let rev = 1;
  for (const k of (tables.get("key") as ReadonlyMap<Key, unknown>).keys())
    rev = Math.max(rev, revOfKey(k as number).rev.main);
  return rev;
}

/**
 * Steps 1–4 and 6 of the validation, on a data directory (the pod's volume). Step 5 needs a
 * running etcd: `behind` asks the caller for it. `backupRevision` null skips the revision
 * check (several members, no store, or an empty one).
 */
export function validateDataDir(
  disk: Disk,
  o: { readonly mode: ValidationMode; readonly identity: string; readonly backupRevision: number | null },
): DataDirVerdict {
  const verdict = (
    failure: DataDirFailure | null,
    detail: string,
    extra: Partial<DataDirVerdict> = {},
  ): DataDirVerdict => ({
    failure,
    fresh: false,
    detail,
    dbRevision: 0,
    behind: false,
    costUs: readCostUs(o.mode, 0),
    ...extra,
  });
  // 1. the wrong-volume guard
  if (disk.exists(SAFE_GUARD)) {
    const guard = new TextDecoder().decode(disk.read(SAFE_GUARD));
    if (guard !== o.identity)
      return verdict("WrongVolumeMounted", `safe_guard names ${guard}, this pod is ${o.identity}`);
  }
  // 2. existence
  if (disk.list(MEMBER_DIR).length === 0) return { ...verdict(null, "no data directory"), fresh: true };
  // 3. structure
  if (listSegments(disk, WAL_DIR).length === 0 || !disk.exists(DB_PATH))
    return verdict("DataDirectoryInvStruct", `${WAL_DIR}/ or ${DB_PATH} is missing`);
  // 4. the revision check: the db opened read-only
  const db = disk.read(DB_PATH);
  let cost = readCostUs(o.mode, db.length);
  let tables: Map<Bucket, Map<Key, unknown>>;
  try {
    tables = Backend.contents(db);
  } catch (e) {
    if (!(e instanceof BackendCorrupt)) throw e;
    return verdict("DataDirectoryCorrupt", `opening the db: ${e.message}`, { costUs: cost });
  }
  const rev = dbRevision(tables);
  const behind = o.backupRevision !== null && rev < o.backupRevision;
  // 6. the content checks (full mode)
  if (o.mode === "full") {
    const problem = checkContent(disk, db);
    // the same pass reads every file once more (the fixed part is paid once)
    const bytes = disk.list(MEMBER_DIR).reduce((n, p) => n + disk.size(p), 0);
    cost += readCostUs(o.mode, bytes) - readCostUs(o.mode, 0);
    if (problem) return verdict("DataDirectoryCorrupt", problem, { costUs: cost, dbRevision: rev });
  }
  return verdict(
    null,
    behind ? `db at revision ${rev}, behind the latest backup at ${o.backupRevision}` : "valid",
    { costUs: cost, dbRevision: rev, behind },
  );
}

/** The newest snapshot, the WAL from it (one torn tail repaired), the db's integrity. */
function checkContent(disk: Disk, db: Uint8Array): string | null {
  const walSnaps = scanSnapshots(disk, WAL_DIR);
  const snap = new Snapshotter(disk, SNAP_DIR).inspectNewest(walSnaps);
  if (snap.broken) return `snapshot ${snap.broken} fails its CRC`;
  const marker = snap.id ?? { index: 0, term: 0 };
  for (let attempt = 0; ; attempt++) {
    try {
      Wal.open(disk, WAL_DIR, marker, Number.MAX_SAFE_INTEGER);
      break;
    } catch (e) {
      if (e instanceof WalTornTail && attempt === 0) {
        Wal.repair(disk, e);
        continue;
      }
      if (e instanceof WalTornTail || e instanceof WalError) return `WAL: ${e.message}`;
      throw e;
    }
  }
  const bad = Backend.check(db);
  return bad ? `db integrity: ${bad}` : null;
}

/**
 * The db a restore writes (etcdutl snapshot restore): the full snapshot's, with the
 * deltas' key changes on top, as a new cluster's: no consistent index (the raft log
 * starts again) and no members (the new cluster's come from its initial cluster).
 */
export function restoredDb(full: Uint8Array, deltas: readonly Uint8Array[]): Uint8Array {
  const tables = Backend.contents(full);
  const keys = tables.get("key") as Map<Key, unknown>;
  for (const d of deltas) for (const [k, v] of decode<[number, unknown][]>(d)) keys.set(k, v);
  const meta = tables.get("meta") as Map<Key, unknown>;
  meta.delete(META_CI);
  meta.delete(META_TERM);
  (tables.get("members") as Map<Key, unknown>).clear();
  (tables.get("members_removed") as Map<Key, unknown>).clear();
  return Backend.serialize(tables);
}

/** What a validation decided, for the run's records. */
export interface ValidationRecord {
  readonly atUs: number;
  readonly member: string;
  readonly mode: ValidationMode;
  readonly failure: DataDirFailure | null;
  readonly action: "start" | "restore" | "wipe" | "replace" | "refuse";
  readonly costUs: number;
  readonly detail: string;
}

/** What the pod needs from the cluster around it (the kubelet, an operator, the run). */
export interface PodHooks {
  validated(v: ValidationRecord): void;
  /** Several members: remove this one, wipe it, add it back as a learner. */
  replaceAsLearner(member: string): void;
  /** The pod exits; the kubelet starts it again after `backoffUs`. */
  restartAfter(member: string, backoffUs: number): void;
  /** The data dir now holds a restore up to `revision` (0: deleted, the store was empty). */
  restored(member: string, revision: number): void;
}

export interface PodConfig {
  readonly server: EtcdServerOptions;
  readonly singleMember: boolean;
  readonly storeNode: number;
  /** What the wrong-volume guard holds: namespace and pod. */
  readonly identity: string;
  /** A snapshot (full or delta) every this often. */
  readonly snapshotPeriodUs: number;
  /** A full snapshot after this many deltas. */
  readonly deltasPerFull: number;
  readonly bugs: Bugs;
  readonly hooks: PodHooks;
  readonly nowUs: () => number;
}

/** etcd and its backup sidecar: one simulator node, which a crash takes down whole. */
export class MemberPod implements NodeProgram {
  server: EtcdServer | null = null;
  /** etcd itself runs (not the sidecar's embedded one replaying the WAL). */
  private etcdRunning = false;
  private readonly waiting = new Map<number, (r: StoreResponse) => void>();
  private reqCounter = 0;
  private deltasSinceFull = 0;
  private uploading = false;

  constructor(
    private readonly ctx: NodeContext,
    private readonly cfg: PodConfig,
  ) {
    const disk = ctx.disk;
    if (disk.exists(RESTORED_MARKER)) {
      disk.remove(RESTORED_MARKER);
      disk.fsyncDir("", () => this.startEtcd(false));
      return;
    }
    const marker = disk.exists(VALIDATION_MARKER)
      ? new TextDecoder().decode(disk.read(VALIDATION_MARKER))
      : null;
    let mode = validationMode(marker);
    // the planted bug: an abnormal exit is taken for a clean one
    if (cfg.bugs.has("validation-skips-content-check-after-crash")) mode = "sanity";
    if (marker !== null) disk.remove(VALIDATION_MARKER);
    // the script removes the marker before etcd runs: durably, or a crash would bring it back
    disk.fsyncDir("", () => {
      if (!cfg.singleMember) return this.validate(mode, null);
      this.call({ kind: "backup-latest", reqId: 0 }, (r) => {
        if (r.kind === "backup-list") this.validate(mode, r.latest);
      });
    });
  }

  onMessage(from: number, msg: unknown): void {
    if (isStoreResponse(msg)) {
      const fn = this.waiting.get(msg.reqId);
      this.waiting.delete(msg.reqId);
      fn?.(msg);
      return;
    }
    // etcd not started yet: its ports are closed
    this.server?.onMessage(from, msg);
  }

  /**
   * SIGTERM: the bootstrap script records etcd's clean exit (143) before the pod goes; not
   * while the sidecar still validates (etcd never ran: the marker stays removed).
   */
  stopGracefully(): void {
    if (!this.etcdRunning) return;
    const disk = this.ctx.disk;
    disk.create(VALIDATION_MARKER);
    disk.append(VALIDATION_MARKER, new TextEncoder().encode("143"));
  }

  private get name(): string {
    return this.ctx.name;
  }

  private call(req: StoreRequest, fn: (r: StoreResponse) => void): void {
    const reqId = ++this.reqCounter;
    this.waiting.set(reqId, fn);
    const size = req.kind === "backup-upload" ? req.data.length : 64;
    this.ctx.send(this.cfg.storeNode, { ...req, reqId }, req.kind, 0, size);
  }

  // ---- validation and its actions ------------------------------------------------------

  private validate(mode: ValidationMode, latest: LatestBackups | null): void {
    const skipRevision = this.cfg.bugs.has("backup-skips-revision-check");
    const backupRev = latest && !skipRevision ? latestRevision(latest) : 0;
    const v = validateDataDir(this.ctx.disk, {
      mode,
      identity: this.cfg.identity,
      backupRevision: backupRev > 0 ? backupRev : null,
    });
    this.ctx.setTimer(v.costUs, "backup.validate", () => this.act(mode, v, latest, backupRev));
  }

  private record(
    mode: ValidationMode,
    v: DataDirVerdict,
    action: ValidationRecord["action"],
    detail = v.detail,
  ) {
    this.cfg.hooks.validated({
      atUs: this.cfg.nowUs(),
      member: this.name,
      mode,
      failure: v.failure,
      action,
      costUs: v.costUs,
      detail,
    });
  }

  private act(
    mode: ValidationMode,
    v: DataDirVerdict,
    latest: LatestBackups | null,
    backupRev: number,
  ): void {
    if (v.failure === "WrongVolumeMounted") {
      this.record(mode, v, "refuse");
      throw new NodeCrash(`refusing to start: ${v.detail}`, "keep");
    }
    const single = this.cfg.singleMember;
    if (v.failure !== null || (v.fresh && single && latest?.full)) {
      if (!single) {
        this.record(mode, v, "replace");
        this.cfg.hooks.replaceAsLearner(this.name);
        return;
      }
      this.record(mode, v, latest?.full ? "restore" : "wipe");
      this.restore(latest);
      return;
    }
    this.record(mode, v, "start");
    if (!v.behind) {
      this.startEtcd(false);
      return;
    }
    try {
      this.startEtcd(true);
    } catch (e) {
      if (!(e instanceof NodeCrash)) throw e;
      // the embedded etcd will not start on this data dir: the check fails, restore
      const failed: DataDirVerdict = { ...v, failure: "DataDirectoryCorrupt" };
      this.record(mode, failed, "restore", `embedded etcd: ${e.reason}`);
      this.restore(latest);
      return;
    }
    this.awaitReplay(mode, v, latest, backupRev);
  }

  /**
   * Step 5: an embedded etcd replays the WAL tail; still behind once it applied all of it
   * (at most 60 s) → stale data.
   */
  private awaitReplay(
    mode: ValidationMode,
    v: DataDirVerdict,
    latest: LatestBackups | null,
    backupRev: number,
  ) {
    const deadlineUs = this.ctx.monoUs() + REPLAY_WAIT_US;
    const poll = () => {
      const s = this.server as EtcdServer;
      if (s.mvcc.currentRev >= backupRev) {
        s.openGate();
        this.etcdRunning = true;
        return;
      }
      // the WAL tail is applied once the member leads with everything committed applied
      const replayed = s.raft.leaderCaughtUp && s.applied >= s.raft.committedIndex;
      if (replayed || this.ctx.monoUs() >= deadlineUs) {
        const stale: DataDirVerdict = { ...v, failure: "RevisionConsistencyError" };
        this.record(
          mode,
          stale,
          "restore",
          `revision ${s.mvcc.currentRev} after replaying the WAL, behind the latest backup at ${backupRev}`,
        );
        this.restore(latest);
        return;
      }
      this.ctx.setTimer(1_000_000, "backup.replay-poll", poll);
    };
    this.ctx.setTimer(1_000_000, "backup.replay-poll", poll);
  }

  private startEtcd(gated: boolean): void {
    const disk = this.ctx.disk;
    if (!disk.exists(SAFE_GUARD)) {
      disk.create(SAFE_GUARD);
      disk.append(SAFE_GUARD, new TextEncoder().encode(this.cfg.identity));
      disk.fsync(SAFE_GUARD, () => {});
    }
    this.server = new EtcdServer(this.ctx, { ...this.cfg.server, gated });
    this.etcdRunning = !gated;
    this.ctx.setTimer(this.cfg.snapshotPeriodUs, "backup.snapshot", () => this.snapshotTick());
  }

  /**
   * Replaces the data dir by the latest full snapshot and the deltas after it (or deletes
   * it when the store is empty), then starts etcd on it. If an embedded etcd runs (the
   * second revision check), the pod exits first and the kubelet starts it again.
   */
  private restore(latest: LatestBackups | null): void {
    const finish = (db: Uint8Array | null, revision: number) => {
      const disk = this.ctx.disk;
      disk.wipe();
      if (db) {
        disk.create(DB_PATH);
        disk.append(DB_PATH, db);
      }
      this.cfg.hooks.restored(this.name, revision);
      if (this.server === null) return this.startEtcd(false);
      disk.create(RESTORED_MARKER);
      this.cfg.hooks.restartAfter(this.name, RESTART_BACKOFF_US);
      // the restore's files are synced before the exit: it loses nothing
      throw new NodeCrash(db ? "restored from backup" : "data dir deleted", "keep");
    };
    const full = latest?.full;
    if (!latest || !full) {
      finish(null, 0);
      return;
    }
    const parts: Uint8Array[] = [];
    const paths = [full.path, ...latest.deltas.map((d) => d.path)];
    const next = () => {
      if (parts.length === paths.length) {
        return finish(restoredDb(parts[0] as Uint8Array, parts.slice(1)), latestRevision(latest));
      }
      this.call({ kind: "backup-fetch", reqId: 0, path: paths[parts.length] as string }, (r) => {
        if (r.kind !== "backup-data" || !r.data) throw new NodeCrash("backup missing from the store", "keep");
        parts.push(r.data);
        next();
      });
    };
    next();
  }

  // ---- snapshots -----------------------------------------------------------------------

  private snapshotTick(): void {
    this.ctx.setTimer(this.cfg.snapshotPeriodUs, "backup.snapshot", () => this.snapshotTick());
    const s = this.server;
    if (!s?.serving || this.uploading) return;
    // several members: the leader's sidecar, once it holds every committed entry
    if (!this.cfg.singleMember && !(s.raft.leaderCaughtUp && s.applied >= s.raft.committedIndex)) return;
    this.uploading = true;
    this.call({ kind: "backup-latest", reqId: 0 }, (r) => {
      if (r.kind !== "backup-list") return;
      if (this.cfg.singleMember) return this.snapshot(s, r.latest);
      // the backup leader asks its etcd for the revision with a linearizable read, which a
      // deposed leader (paused, then resumed unaware) cannot answer
      s.ensureLeadership((ok) => {
        if (ok && s.serving && this.server === s) this.snapshot(s, r.latest);
        else this.uploading = false;
      });
    });
  }

  /** A delta from the newest backup, or a full snapshot; nothing when nothing changed. */
  private snapshot(s: EtcdServer, latest: LatestBackups): void {
    const newest = latestRevision(latest);
    const rev = s.mvcc.currentRev;
    if (rev === newest && latest.full) {
      this.uploading = false;
      return;
    }
    const delta =
      latest.full !== null &&
      rev > newest &&
      this.deltasSinceFull < this.cfg.deltasPerFull &&
      s.mvcc.compactMainRev <= newest;
    if (delta) {
      const entries = s.backend.range("key", revKey(newest + 1, 0, false), revKey(rev + 1, 0, false));
      this.upload("delta", newest, rev, encode(entries));
    } else {
      // etcd's Snapshot API: a forced commit, then the whole db
      s.backend.commit();
      const db = s.backend.snapshot();
      this.upload("full", 0, dbRevision(Backend.contents(db)), db);
    }
  }

  private upload(kind: BackupKind, fromRevision: number, revision: number, data: Uint8Array): void {
    this.call(
      { kind: "backup-upload", reqId: 0, member: this.name, type: kind, fromRevision, revision, data },
      () => {
        this.uploading = false;
        this.deltasSinceFull = kind === "full" ? 0 : this.deltasSinceFull + 1;
      },
    );
  }
}
