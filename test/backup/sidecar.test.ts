// The backup sidecar: each validation step and action on a prepared data dir, the
// restore's db, and the backup checks on histories that break and keep them.
import { readFileSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  dbRevision,
  type MemberPod,
  restoredDb,
  SAFE_GUARD,
  VALIDATION_MARKER,
  validateDataDir,
  validationMode,
} from "../../models/backup/sidecar.js";
import { Backend } from "../../models/etcd/backend.js";
import { EtcdCluster } from "../../models/etcd/cluster.js";
import { DB_PATH } from "../../models/etcd/server.js";
import { payloadRanges } from "../../models/raft/wal.js";
import { Simulator } from "../../sim/index.js";
import { checkServes, checkStaleUploads } from "../../src/check/backup.js";
import { generateScenario } from "../../src/profiles.js";
import { runScenario } from "../../src/runner.js";
import { parseScenario } from "../../src/scenario.js";

/** A one-member cluster with sidecars, some writes, then stopped: its volume to validate. */
function preparedVolume(snapshotCount = 10_000) {
  const sim = new Simulator({ seed: "backup-volume" });
  const c = new EtcdCluster(sim, {
    members: 1,
    server: { raft: { snapshotCount } },
    backup: { snapshotPeriodUs: 500_000, deltasPerFull: 2 },
  });
  const client = c.addClient();
  sim.runUntilTrue(() => c.server(0)?.serving === true, 10_000_000);
  let acked = 0;
  // a write every 100 ms for 3 s: full snapshots and deltas in between
  for (let i = 0; i < 30; i++) {
    client.put(`k${i % 5}`, `v${i}`, {}, (r) => {
      if (r.type !== "error") acked++;
    });
    sim.runFor(100_000);
  }
  sim.runFor(1_000_000);
  const node = c.nodes[0] as number;
  sim.crash(node, "keep");
  return { sim, c, disk: sim.disk(node), acked };
}

test("the marker picks the mode as the bootstrap script's exit codes say", () => {
  assert.is(validationMode(null), "full");
  for (const code of ["0", "130", "143"]) assert.is(validationMode(code), "sanity");
  for (const code of ["137", "1", "2"]) assert.is(validationMode(code), "full");
});

test("a valid volume passes; a wrong one, a broken structure and a corrupt db do not", () => {
  const { disk, acked, c } = preparedVolume();
  assert.ok(acked > 20, `${acked} writes acknowledged`);
  const identity = "etcd-dst/m1";
  const ok = validateDataDir(disk, { mode: "full", identity, backupRevision: null });
  assert.is(ok.failure, null, ok.detail);
  assert.ok(ok.dbRevision > 20);
  assert.ok(ok.costUs > validateDataDir(disk, { mode: "sanity", identity, backupRevision: null }).costUs);
  // the sidecar uploaded snapshots; the db is not behind the newest
  assert.ok((c.backup?.uploads.length ?? 0) > 0);
  // revision check: a backup ahead of the db asks for the WAL replay
  const behind = validateDataDir(disk, { mode: "sanity", identity, backupRevision: ok.dbRevision + 10 });
  assert.ok(behind.behind);
  assert.is(
    validateDataDir(disk, { mode: "sanity", identity: "other/m1", backupRevision: null }).failure,
    "WrongVolumeMounted",
  );
  // flipped bits in a data page: only the full mode's integrity check sees them
  const db = disk.read(DB_PATH);
  disk.corrupt(DB_PATH, 20, 1);
  assert.is(Backend.check(disk.read(DB_PATH)) !== null, true);
  assert.is(
    validateDataDir(disk, { mode: "full", identity, backupRevision: null }).failure,
    "DataDirectoryCorrupt",
  );
  assert.equal(disk.corruptedFiles("member"), [DB_PATH]);
  disk.create(DB_PATH);
  disk.append(DB_PATH, db);
  assert.equal(disk.corruptedFiles("member"), [], "a rewritten file holds no corruption");
  for (const p of disk.list("member/wal")) disk.remove(p);
  assert.is(
    validateDataDir(disk, { mode: "sanity", identity, backupRevision: null }).failure,
    "DataDirectoryInvStruct",
  );
  disk.wipe();
  const fresh = validateDataDir(disk, { mode: "full", identity, backupRevision: null });
  assert.ok(fresh.fresh && fresh.failure === null);
  assert.ok(SAFE_GUARD.length > 0);
});

test("a restore's db holds the full snapshot and the deltas after it, as a new cluster", () => {
  const { c, sim } = preparedVolume();
  const store = sim.disk(sim.findNode("store"));
  const snaps = c.backup?.uploads ?? [];
  assert.ok(snaps.some((u) => u.kind === "full") && snaps.some((u) => u.kind === "delta"));
  const files = store.list("backups");
  const lastFull = files.filter((p) => p.includes("/full-")).pop() as string;
  const deltas = files.filter(
    (p) => p.includes("/delta-") && Number(p.split("-").pop()) > Number(lastFull.split("-").pop()),
  );
  const db = restoredDb(
    store.read(lastFull),
    deltas.map((p) => store.read(p)),
  );
  const newest = Math.max(...snaps.map((u) => u.revision));
  assert.is(dbRevision(Backend.contents(db)), newest);
  assert.is(Backend.contents(db).get("meta")?.has("consistent_index"), false);
});

test("backup.stale-upload and backup.start-on-bad-data fail what breaks them, pass the rest", () => {
  const base = { validations: [], restores: [] };
  const up = (revision: number, newestBefore: number) => ({
    atUs: 1,
    member: "m1",
    kind: "full" as const,
    fromRevision: 0,
    revision,
    newestBefore,
  });
  assert.is(checkStaleUploads({ ...base, serves: [], uploads: [up(10, 0), up(20, 10)] }).length, 0);
  const stale = checkStaleUploads({ ...base, serves: [], uploads: [up(20, 0), up(15, 20)] });
  assert.is(stale.length, 1);
  assert.is(stale[0]?.checker, "backup.stale-upload");
  // a lone member's serve carries its store; a cluster member's does not
  const serve = (revision: number, newestBackup: number, corrupted: string[], lone = true) => ({
    atUs: 1,
    member: "m1",
    revision,
    newestBackup,
    corrupted,
    ...(lone ? { state: { revision, compactRevision: -1, kvs: [], leases: [] } } : {}),
  });
  assert.is(checkServes({ ...base, uploads: [], serves: [serve(30, 30, [])] }).length, 0);
  assert.is(checkServes({ ...base, uploads: [], serves: [serve(29, 30, [])] }).length, 1);
  assert.is(checkServes({ ...base, uploads: [], serves: [serve(30, 30, [DB_PATH])] }).length, 1);
  // a cluster member serves once its publish entry applies, maybe behind the leader's
  // newest backup (seed 1100219); on corrupted bytes it may not
  assert.is(checkServes({ ...base, uploads: [], serves: [serve(29, 30, [], false)] }).length, 0);
  assert.is(checkServes({ ...base, uploads: [], serves: [serve(30, 30, [DB_PATH], false)] }).length, 1);
});

test("backup-skips-revision-check: a stale volume is served and uploaded over newer backups", () => {
  // seed 9 of the backup profile brings a single member back on an old volume
  const sc = generateScenario(9, "backup");
  assert.ok(sc.faults.some((f) => f.kind === "stale-volume"));
  const ok = runScenario(sc);
  assert.ok((ok.stats.backup?.restores ?? 0) > 0, "the correct flow restores from backup");
  assert.not.ok(ok.validation.violations.some((v) => v.checker.startsWith("backup.")));
  const bad = runScenario(sc, { bugs: ["backup-skips-revision-check"] });
  const ids = new Set(bad.validation.violations.map((v) => v.checker));
  assert.ok(ids.has("backup.stale-upload") && ids.has("backup.start-on-bad-data"), [...ids].join(", "));
});

test("a bad checksum on the db's newest commit: opening falls back, the check reports it", () => {
  const { disk } = preparedVolume();
  const db = disk.read(DB_PATH).slice();
  const newest = dbRevision(Backend.contents(db));
  // a crash cuts the last write short: that commit never happened, and nothing is corrupt
  assert.is(Backend.check(db.subarray(0, db.length - 3)), null);
  // a complete last record that fails its checksum is bit rot, not a torn write
  disk.corrupt(DB_PATH, db.length - 2, 1);
  const rotten = disk.read(DB_PATH);
  assert.ok(Backend.check(rotten)?.includes("bad checksum"));
  assert.ok(dbRevision(Backend.contents(rotten)) <= newest, "opening drops that commit");
  assert.is(
    validateDataDir(disk, { mode: "full", identity: "etcd-dst/m1", backupRevision: null }).failure,
    "DataDirectoryCorrupt",
  );
});

test("WAL corruption at rest lands in record payloads, where the full validation sees it", () => {
  const { c, disk } = preparedVolume();
  const path = disk.list("member/wal").pop() as string;
  const original = disk.read(path).slice();
  const frames = JSON.stringify(payloadRanges(original));
  for (const position of [0, 0.013, 0.25, 0.5, 0.77, 0.999, 1]) {
    c.corruptAtRest(0, "wal", position, 13);
    const bytes = disk.read(path);
    assert.is(JSON.stringify(payloadRanges(bytes)), frames, `frames intact at ${position}`);
    assert.not.equal(bytes, original, `bytes flipped at ${position}`);
    const v = validateDataDir(disk, { mode: "full", identity: "etcd-dst/m1", backupRevision: null });
    assert.is(v.failure, "DataDirectoryCorrupt", `${position}: ${v.detail}`);
    disk.create(path);
    disk.append(path, original);
  }
});

test("SIGTERM writes the clean-exit marker only once etcd itself runs", () => {
  const sim = new Simulator({ seed: "backup-marker" });
  const c = new EtcdCluster(sim, { members: 1, backup: { snapshotPeriodUs: 500_000, deltasPerFull: 2 } });
  const node = c.nodes[0] as number;
  const disk = sim.disk(node);
  sim.runUntilTrue(() => c.server(0)?.serving === true, 10_000_000);
  c.stopGracefully(0);
  assert.is(new TextDecoder().decode(disk.read(VALIDATION_MARKER)), "143");
  // back up: the sidecar takes the marker away and validates; stopped before etcd starts,
  // the next start must not believe etcd exited cleanly
  sim.restart(node);
  assert.not.ok(c.server(0), "still validating");
  c.stopGracefully(0);
  assert.not.ok(disk.exists(VALIDATION_MARKER));
});

test("an embedded etcd that will not start on the data dir fails the revision check: restore", () => {
  const sim = new Simulator({ seed: "backup-embedded" });
  const c = new EtcdCluster(sim, {
    members: 1,
    server: { raft: { snapshotCount: 10 } },
    backup: { snapshotPeriodUs: 500_000, deltasPerFull: 2 },
  });
  const node = c.nodes[0] as number;
  const disk = sim.disk(node);
  const client = c.addClient();
  sim.runUntilTrue(() => c.server(0)?.serving === true, 10_000_000);
  const write = (n: number) => {
    for (let i = 0; i < n; i++) {
      client.put(`k${i % 5}`, `v${i}`, {}, () => {});
      sim.runFor(50_000);
    }
  };
  write(3);
  sim.runFor(500_000);
  const oldDb = disk.read(DB_PATH).slice();
  write(40);
  sim.runFor(1_500_000);
  const newest = Math.max(...(c.backup?.uploads ?? []).map((u) => u.revision));
  // an old db under a newer WAL and snapshot: its consistent index is behind the snapshot,
  // whose db is gone, so etcd refuses to start on it
  sim.crash(node, "keep");
  disk.create(DB_PATH);
  disk.append(DB_PATH, oldDb);
  sim.restart(node);
  sim.runUntilTrue(() => c.server(0)?.serving === true, 20_000_000);
  const v = (c.backup?.validations ?? []).filter((x) => x.detail.startsWith("embedded etcd"));
  assert.is(v.length, 1, (c.backup?.validations ?? []).map((x) => x.detail).join("; "));
  assert.is(v[0]?.action, "restore");
  assert.ok((c.server(0)?.mvcc.currentRev ?? 0) >= newest, "serving the newest backup");
});

test("the actions, end to end: a replaced member is promoted, a wrong volume refused", () => {
  const seeds = new URL("../../seeds/", import.meta.url).pathname;
  // three members; m3's db rots while it is down: removed, wiped, back as a learner
  const three = runScenario(parseScenario(readFileSync(`${seeds}backup-1.json`, "utf8")));
  const replaced = three.artifacts.backup?.validations.find((v) => v.action === "replace");
  assert.is(replaced?.failure, "DataDirectoryCorrupt");
  const pod = three.sim.program(three.sim.findNode(replaced?.member as string)) as MemberPod;
  const status = pod.server?.status();
  assert.is(status?.isLearner, false, "promoted once it caught up");
  assert.ok((status?.revision ?? 0) > 0 && three.validation.verdict === "ok");
  // one member mounted on a copy of its volume from another namespace: refused, then back
  // on its own once the operator remounts it
  const lone = runScenario(generateScenario(10, "backup"));
  const actions = lone.artifacts.backup?.validations.map((v) => `${v.failure ?? "valid"}:${v.action}`);
  assert.ok(actions?.includes("WrongVolumeMounted:refuse"), actions?.join(" "));
  assert.is(actions?.at(-1), "valid:start");
  assert.is(lone.validation.verdict, "ok");
});

test("a snapshot file that fails its CRC fails the full validation only", () => {
  const { c, disk } = preparedVolume(10);
  const snap = disk
    .list("member/snap")
    .filter((p) => p.endsWith(".snap"))
    .pop();
  assert.ok(snap, "raft snapshots were taken");
  c.corruptAtRest(0, "snap", 0.5, 4);
  const identity = "etcd-dst/m1";
  const full = validateDataDir(disk, { mode: "full", identity, backupRevision: null });
  assert.is(full.failure, "DataDirectoryCorrupt");
  assert.ok(full.detail.includes("snapshot"), full.detail);
  assert.is(validateDataDir(disk, { mode: "sanity", identity, backupRevision: null }).failure, null);
});

test.run();
