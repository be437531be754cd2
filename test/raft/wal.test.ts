// The WAL and snapshot files: round trips, segment cuts with the CRC chain carried over,
// torn-tail repair, corruption refused, and the choice of snapshot at restart.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { crc32c } from "../../models/codec.js";
import { Snapshotter } from "../../models/raft/snap.js";
import { startLogCluster } from "../../models/raft/testbed.js";
import { type Entry, EntryType, type Snapshot } from "../../models/raft/types.js";
import { listSegments, scanSnapshots, Wal, WalError, WalTornTail } from "../../models/raft/wal.js";
import { type Disk, Simulator } from "../../sim/index.js";

const DIR = "member/wal";

test("crc32c: the Castagnoli check value, chaining, and every length against a bitwise CRC", () => {
  const ascii = (t: string) => new TextEncoder().encode(t);
  assert.is(crc32c(0, ascii("123456789")), 0xe3069283); // the standard check value
  assert.is(crc32c(0, new Uint8Array(0)), 0);
  const bitwise = (crc: number, b: Uint8Array) => {
    let c = ~crc >>> 0;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    }
    return ~c >>> 0;
  };
  const bytes = Uint8Array.from({ length: 67 }, (_, i) => (i * 151 + 7) & 0xff);
  for (let n = 0; n <= bytes.length; n++) {
    const b = bytes.subarray(0, n);
    assert.is(crc32c(0, b), bitwise(0, b), `length ${n}`);
    // a chain over two pieces equals one pass over the whole
    const cut = n >> 1;
    assert.is(crc32c(crc32c(0, b.subarray(0, cut)), b.subarray(cut)), crc32c(0, b), `chained at ${cut}`);
  }
});

function setup(seed = "wal"): { sim: Simulator; disk: Disk } {
  const sim = new Simulator({ seed });
  sim.addNode("n1", () => ({ onMessage() {} }), { disk: { blockBytes: 16 } });
  sim.start(0);
  return { sim, disk: sim.disk(0) };
}

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

function createWal(sim: Simulator, disk: Disk, segmentBytes = 1 << 20): Wal {
  let wal: Wal | null = null;
  Wal.create(disk, DIR, new Uint8Array([7]), segmentBytes, (w) => {
    wal = w;
  });
  sim.runFor(1_000_000);
  if (!wal) throw new Error("WAL not created");
  return wal;
}

function sync(sim: Simulator, wal: Wal): void {
  wal.sync((err) => assert.is(err, null));
  sim.runFor(1_000_000);
}

const texts = (es: readonly Entry[]) => es.map((e) => new TextDecoder().decode(e.data));

test("entries, hard state and snapshot markers round-trip; a rewrite of an index replaces the tail", () => {
  const { sim, disk } = setup();
  const wal = createWal(sim, disk);
  wal.save({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1), entry(3, 1)], true);
  wal.save({ term: 2, vote: 2, commit: 1 }, [entry(2, 2, "new2")], true);
  wal.saveSnapshot({ index: 1, term: 1, confState: { voters: [1], learners: [] } });
  sync(sim, wal);
  const { read } = Wal.open(disk, DIR, { index: 0, term: 0 }, 1 << 20);
  assert.equal(texts(read.entries), ["e1", "new2"], "index 2 rewritten drops index 3");
  assert.equal(read.hardState, { term: 2, vote: 2, commit: 1 });
  assert.equal(read.snapshots, [
    { index: 0, term: 0 },
    { index: 1, term: 1 },
  ]);
  const fromSnap = Wal.open(disk, DIR, { index: 1, term: 1 }, 1 << 20);
  assert.equal(texts(fromSnap.read.entries), ["new2"], "reading from a snapshot skips what it covers");
  assert.throws(
    () => Wal.open(disk, DIR, { index: 1, term: 9 }, 1 << 20),
    (e: unknown) => e instanceof WalError && e.kind === "snapshot-mismatch",
  );
  assert.throws(
    () => Wal.open(disk, DIR, { index: 5, term: 1 }, 1 << 20),
    (e: unknown) => e instanceof WalError && e.kind === "snapshot-not-found",
  );
});

test("segments are cut at the size limit and the CRC chain carries across them", () => {
  const { sim, disk } = setup();
  const wal = createWal(sim, disk, 256);
  for (let i = 1; i <= 40; i++) wal.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i, 1)], true);
  sync(sim, wal);
  const segs = listSegments(disk, DIR);
  assert.ok(segs.length > 3, `cut into ${segs.length} segments`);
  const { read } = Wal.open(disk, DIR, { index: 0, term: 0 }, 256);
  assert.is(read.entries.length, 40);
  // a new WAL opened for append continues the chain
  const reopened = Wal.open(disk, DIR, { index: 0, term: 0 }, 256).wal;
  reopened.save({ term: 1, vote: 1, commit: 40 }, [entry(41, 1)], true);
  sync(sim, reopened);
  assert.is(Wal.open(disk, DIR, { index: 0, term: 0 }, 256).read.entries.length, 41);
  // releasing up to a snapshot removes old segments but keeps the one holding it
  reopened.saveSnapshot({ index: 30, term: 1, confState: { voters: [1], learners: [] } });
  sync(sim, reopened);
  reopened.releaseTo(30, 0);
  const after = listSegments(disk, DIR);
  assert.ok(after.length < segs.length, "old segments removed");
  assert.is(
    Wal.open(disk, DIR, { index: 30, term: 1 }, 256).read.entries.length,
    11,
    "entries 31..41 remain",
  );
});

test("a torn tail is reported as repairable and repair truncates it", () => {
  let repaired = 0;
  for (let s = 0; s < 40; s++) {
    const { sim, disk } = setup(`torn-${s}`);
    const wal = createWal(sim, disk);
    wal.save({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1)], true);
    sync(sim, wal);
    wal.save(
      { term: 1, vote: 1, commit: 2 },
      [entry(3, 1, "x".repeat(100)), entry(4, 1, "y".repeat(100))],
      true,
    );
    sim.crash(0, "torn");
    sim.restart(0);
    let read: { entries: Entry[] };
    try {
      read = Wal.open(disk, DIR, { index: 0, term: 0 }, 1 << 20).read;
    } catch (e) {
      assert.ok(e instanceof WalTornTail, String(e));
      Wal.repair(disk, e);
      repaired++;
      read = Wal.open(disk, DIR, { index: 0, term: 0 }, 1 << 20).read;
    }
    const got = texts(read.entries);
    assert.ok(got.length >= 2 && got[0] === "e1" && got[1] === "e2", "synced entries survive");
  }
  assert.ok(repaired > 5, `torn tails repaired: ${repaired}`);
});

test("corruption in a synced record is fatal: the WAL refuses to open", () => {
  const { sim, disk } = setup();
  const wal = createWal(sim, disk);
  wal.save({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1), entry(3, 1)], true);
  sync(sim, wal);
  const path = listSegments(disk, DIR)[0]?.path as string;
  // flip a byte inside the second entry's payload (not a length field: a bad length
  // at the tail looks like a torn write, to etcd as to us)
  const bytes = disk.read(path);
  const at = new TextDecoder("latin1").decode(bytes).lastIndexOf("e2");
  assert.ok(at > 0);
  disk.corrupt(path, at, 1);
  assert.throws(
    () => Wal.open(disk, DIR, { index: 0, term: 0 }, 1 << 20),
    (e: unknown) => e instanceof WalError && e.kind === "crc-mismatch",
  );
});

test("restart ignores snapshot markers beyond the last hard state's commit (etcd #10219)", () => {
  const { sim, disk } = setup();
  const wal = createWal(sim, disk);
  wal.save({ term: 1, vote: 1, commit: 5 }, [entry(1, 1)], true);
  wal.saveSnapshot({ index: 4, term: 1, confState: { voters: [1], learners: [] } });
  wal.saveSnapshot({ index: 9, term: 1, confState: { voters: [1], learners: [] } }); // commit 9 never written
  sync(sim, wal);
  assert.equal(scanSnapshots(disk, DIR), [
    { index: 0, term: 0 },
    { index: 4, term: 1 },
  ]);
});

test("the snapshotter loads the newest snapshot the WAL knows, skipping a corrupt file", () => {
  const { sim, disk } = setup();
  const snapper = new Snapshotter(disk, "member/snap");
  const snap = (index: number, text: string): Snapshot => ({
    metadata: { index, term: 1, confState: { voters: [1], learners: [] } },
    data: new TextEncoder().encode(text),
  });
  for (const [i, t] of [
    [3, "three"],
    [6, "six"],
    [9, "nine"],
  ] as const) {
    snapper.save(snap(i, t), () => {});
  }
  sim.runFor(1_000_000);
  const markers = [3, 6, 9].map((index) => ({ index, term: 1 }));
  const text = (s: Snapshot | null) => (s ? new TextDecoder().decode(s.data) : null);
  assert.is(text(snapper.loadNewestAvailable(markers)), "nine");
  assert.is(
    text(snapper.loadNewestAvailable(markers.slice(0, 2))),
    "six",
    "a file the WAL does not record is ignored",
  );
  const nine = disk.list("member/snap").find((p) => p.endsWith("9.snap")) as string;
  disk.corrupt(nine, 10, 4);
  assert.is(text(snapper.loadNewestAvailable(markers)), "six");
  assert.ok(disk.exists(`${nine}.broken`), "the corrupt file is set aside as .broken");
});

test("a member whose WAL is corrupt refuses to start, and stays down", () => {
  const sim = new Simulator({ seed: "refuse" });
  const cluster = startLogCluster(sim, { members: 3 });
  for (let k = 0; k < 20; k++) cluster.propose(0, `v${k}`);
  sim.runFor(3_000_000);
  sim.crash(1, "keep");
  const path = listSegments(sim.disk(1), "member/wal")[0]?.path as string;
  sim.disk(1).corrupt(path, 200, 8);
  sim.restart(1);
  sim.runFor(1_000_000);
  assert.not.ok(sim.isUp(1));
  assert.equal(
    sim.monitor.reports,
    [],
    "refusing to start on corruption is correct behaviour, not a violation",
  );
  // the other two keep serving
  cluster.propose(0, "after");
  sim.runFor(1_000_000);
  cluster.propose(2, "after");
  sim.runFor(5_000_000);
  assert.is(cluster.applied.get("m3")?.at(-1), "after");
});

test.run();
