// The backup store of etcd-backup-restore (an object store such as S3): a node of its own
// with its own disk, outside every member's failure domain (no fault names it). Sidecars
// upload full snapshots (the whole db) and deltas (the key changes of a revision range)
// over the network; an upload is acknowledged once its file is fsynced. The store checks
// nothing: like an object store, it keeps what it is given, and the latest full snapshot
// is the one uploaded last.
import type { NodeContext, NodeProgram } from "../../sim/index.js";

export type BackupKind = "full" | "delta";

export interface BackupMeta {
  readonly kind: BackupKind;
  /** A delta's changes are those of revisions (fromRevision, revision]; a full's is 0. */
  readonly fromRevision: number;
  readonly revision: number;
  readonly path: string;
  readonly member: string;
  readonly uploadedUs: number;
}

/** Every upload as the store received it, for the stale-upload check. */
export interface UploadRecord {
  readonly atUs: number;
  readonly member: string;
  readonly kind: BackupKind;
  readonly fromRevision: number;
  readonly revision: number;
  /** The newest revision the store held before it (0: none). */
  readonly newestBefore: number;
}

export type StoreRequest =
  | {
      readonly kind: "backup-upload";
      readonly reqId: number;
      readonly member: string;
      readonly type: BackupKind;
      readonly fromRevision: number;
      readonly revision: number;
      readonly data: Uint8Array;
    }
  | { readonly kind: "backup-latest"; readonly reqId: number }
  | { readonly kind: "backup-fetch"; readonly reqId: number; readonly path: string };

export type StoreResponse =
  | { readonly kind: "backup-uploaded"; readonly reqId: number }
  | { readonly kind: "backup-list"; readonly reqId: number; readonly latest: LatestBackups }
  | { readonly kind: "backup-data"; readonly reqId: number; readonly data: Uint8Array | null };

/** What a restore uses: the latest full snapshot and the deltas uploaded after it. */
export interface LatestBackups {
  readonly full: BackupMeta | null;
  readonly deltas: readonly BackupMeta[];
}

/** The revision a restore from `latest` reaches (0: the store is empty). */
export function latestRevision(latest: LatestBackups): number {
  const last = latest.deltas[latest.deltas.length - 1];
  return last ? last.revision : (latest.full?.revision ?? 0);
}

export function isStoreResponse(msg: unknown): msg is StoreResponse {
  const k = (msg as { kind?: unknown }).kind;
  return k === "backup-uploaded" || k === "backup-list" || k === "backup-data";
}

/** The catalogue the store keeps, and the log of uploads (shared with the run's checks). */
export class BackupCatalogue {
  readonly snapshots: BackupMeta[] = [];
  readonly uploads: UploadRecord[] = [];

  /** `nowUs`: the simulator's true time, for the records. */
  constructor(readonly nowUs: () => number) {}

  latest(): LatestBackups {
    let full = -1;
    for (let i = this.snapshots.length - 1; i >= 0; i--)
      if ((this.snapshots[i] as BackupMeta).kind === "full") {
        full = i;
        break;
      }
    if (full < 0) return { full: null, deltas: [] };
    return {
      full: this.snapshots[full] as BackupMeta,
      deltas: this.snapshots.slice(full + 1).filter((m) => m.kind === "delta"),
    };
  }

  /** The newest revision any stored snapshot reaches (0: none). */
  get newestRevision(): number {
    let r = 0;
    for (const m of this.snapshots) r = Math.max(r, m.revision);
    return r;
  }
}

export class BackupStore implements NodeProgram {
  private seq = 0;

  constructor(
    private readonly ctx: NodeContext,
    private readonly catalogue: BackupCatalogue,
  ) {}

  onMessage(from: number, msg: unknown): void {
    const m = msg as StoreRequest;
    switch (m.kind) {
      case "backup-upload": {
        const c = this.catalogue;
        c.uploads.push({
          atUs: c.nowUs(),
          member: m.member,
          kind: m.type,
          fromRevision: m.fromRevision,
          revision: m.revision,
          newestBefore: c.newestRevision,
        });
        const path = `backups/${m.type}-${m.fromRevision}-${m.revision}-${++this.seq}`;
        this.ctx.disk.create(path);
        this.ctx.disk.append(path, m.data);
        this.ctx.disk.fsync(path, () => {
          this.ctx.disk.fsyncDir("backups", () => {
            c.snapshots.push({
              kind: m.type,
              fromRevision: m.fromRevision,
              revision: m.revision,
              path,
              member: m.member,
              uploadedUs: c.nowUs(),
            });
            this.reply(from, { kind: "backup-uploaded", reqId: m.reqId });
          });
        });
        return;
      }
      case "backup-latest":
        this.reply(from, { kind: "backup-list", reqId: m.reqId, latest: this.catalogue.latest() });
        return;
      case "backup-fetch":
        this.reply(from, {
          kind: "backup-data",
          reqId: m.reqId,
          data: this.ctx.disk.exists(m.path) ? this.ctx.disk.read(m.path) : null,
        });
        return;
    }
  }

  private reply(to: number, r: StoreResponse): void {
    const size = r.kind === "backup-data" && r.data ? r.data.length : 64;
    this.ctx.send(to, r, r.kind, 0, size);
  }
}
