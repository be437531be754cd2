import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Disk, type DiskCrashMode, DiskError, Random, Simulator, slabBytes } from "../../sim/index.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A simulator with one idle node; returns the node's disk and a way to run fsyncs. */
function setup(seed = "disk", blockBytes = 4): { sim: Simulator; disk: Disk } {
  const sim = new Simulator({ seed });
  sim.addNode("n1", () => ({ onMessage() {} }), { disk: { blockBytes } });
  sim.start(0);
  return { sim, disk: sim.disk(0) };
}

function fsync(sim: Simulator, disk: Disk, path: string): void {
  let done = false;
  disk.fsync(path, (err) => {
    assert.is(err, null);
    done = true;
  });
  sim.runFor(100_000);
  assert.ok(done, "fsync completed");
}

function fsyncDir(sim: Simulator, disk: Disk, dir: string): void {
  disk.fsyncDir(dir, () => {});
  sim.runFor(100_000);
}

function crash(sim: Simulator, mode: DiskCrashMode): void {
  sim.crash(0, mode);
  sim.restart(0);
}

test("unsynced writes vanish on a power loss; synced ones stay", () => {
  const { sim, disk } = setup();
  disk.append("f", enc("durable"));
  fsync(sim, disk, "f");
  disk.append("f", enc("+lost"));
  assert.is(dec(disk.read("f")), "durable+lost");
  crash(sim, "lose");
  assert.is(dec(disk.read("f")), "durable");
});

test("a process crash without power loss keeps the page cache", () => {
  const { sim, disk } = setup();
  disk.append("f", enc("abc"));
  crash(sim, "keep");
  assert.is(dec(disk.read("f")), "abc");
  crash(sim, "lose");
  assert.is(dec(disk.read("f")), "abc", "what survived a process crash stays");
});

test("fsync covers only the writes issued before it", () => {
  const { sim, disk } = setup();
  disk.append("f", enc("one"));
  disk.fsync("f", () => {});
  disk.append("f", enc("two")); // issued while the fsync is in flight
  sim.runFor(100_000);
  crash(sim, "lose");
  assert.is(dec(disk.read("f")), "one");
});

test("a crash in prefix mode keeps an ordered prefix of unsynced writes, varying by seed", () => {
  const kept = new Set<string>();
  for (let s = 0; s < 60; s++) {
    const { sim, disk } = setup(`prefix-${s}`);
    disk.append("f", enc("a"));
    fsync(sim, disk, "f");
    for (const c of "bcde") disk.append("f", enc(c));
    crash(sim, "prefix");
    const v = dec(disk.read("f"));
    assert.ok("abcde".startsWith(v) && v.length >= 1, v);
    kept.add(v);
  }
  assert.equal([...kept].sort(), ["a", "ab", "abc", "abcd", "abcde"]);
});

test("a torn write keeps whole blocks of the torn write, never a partial block", () => {
  const tails = new Set<number>();
  for (let s = 0; s < 80; s++) {
    const { sim, disk } = setup(`torn-${s}`, 4);
    disk.append("f", enc("0123"));
    fsync(sim, disk, "f");
    disk.append("f", enc("abcdefghijkl")); // spans blocks 1..3, boundaries inside at 8 and 12
    crash(sim, "torn");
    const v = dec(disk.read("f"));
    assert.ok("0123abcdefghijkl".startsWith(v), v);
    assert.is(v.length % 4, 0, `torn at a block boundary: ${v}`);
    tails.add(v.length);
  }
  // Lengths 8 and 12 are tears inside the write; 16 is the write kept whole.
  assert.equal(
    [...tails].sort((a, b) => a - b),
    [8, 12, 16],
  );
});

test("a new file survives once it is fsynced; a rename needs the directory synced", () => {
  const { sim, disk } = setup();
  disk.append("d/a.tmp", enc("x"));
  crash(sim, "lose");
  assert.not.ok(disk.exists("d/a.tmp"), "unsynced new file is gone");

  disk.append("d/a.tmp", enc("x"));
  fsync(sim, disk, "d/a.tmp");
  disk.rename("d/a.tmp", "d/a");
  crash(sim, "lose");
  assert.ok(disk.exists("d/a.tmp") && !disk.exists("d/a"), "rename without a dir sync is undone");

  disk.rename("d/a.tmp", "d/a");
  fsyncDir(sim, disk, "d");
  crash(sim, "lose");
  assert.ok(disk.exists("d/a") && !disk.exists("d/a.tmp"), "rename is durable after the dir sync");
  assert.is(dec(disk.read("d/a")), "x");

  disk.remove("d/a");
  crash(sim, "lose");
  assert.ok(disk.exists("d/a"), "remove without a dir sync is undone");
  disk.remove("d/a");
  fsyncDir(sim, disk, "d");
  crash(sim, "lose");
  assert.not.ok(disk.exists("d/a"));
  assert.equal(disk.list("d"), []);
});

test("EIO on read and write, ENOSPC when full", () => {
  const { sim, disk } = setup();
  disk.append("wal/0.wal", enc("hello"));
  disk.faults.readEioPrefix = "wal/";
  assert.throws(
    () => disk.read("wal/0.wal"),
    (e: unknown) => e instanceof DiskError && e.code === "EIO",
  );
  disk.faults.readEioPrefix = null;
  assert.is(dec(disk.read("wal/0.wal")), "hello");

  disk.faults.writeEioPrefix = "";
  assert.throws(
    () => disk.append("x", enc("1")),
    (e: unknown) => e instanceof DiskError && e.code === "EIO",
  );
  let err: DiskError | null = null;
  disk.fsync("wal/0.wal", (e) => {
    err = e;
  });
  sim.runFor(100_000);
  assert.is((err as DiskError | null)?.code, "EIO");
  disk.faults.writeEioPrefix = null;

  disk.faults.capacityBytes = 8;
  disk.append("wal/0.wal", enc("123"));
  assert.throws(
    () => disk.append("wal/0.wal", enc("x")),
    (e: unknown) => e instanceof DiskError && e.code === "ENOSPC",
  );
  assert.throws(
    () => disk.read("missing"),
    (e: unknown) => e instanceof DiskError && e.code === "ENOENT",
  );
});

test("fsync lies: success is reported and nothing is persisted", () => {
  const { sim, disk } = setup();
  disk.append("f", enc("base"));
  fsync(sim, disk, "f");
  disk.faults.fsyncLies = true;
  disk.append("f", enc("+acked"));
  fsync(sim, disk, "f");
  crash(sim, "lose");
  assert.is(dec(disk.read("f")), "base");
});

test("slow fsync completes later; fsyncs queue one after another", () => {
  const { sim, disk } = setup();
  disk.append("f", enc("a"));
  const done: number[] = [];
  disk.faults.fsyncExtraUs = 500_000;
  disk.fsync("f", () => done.push(sim.nowUs));
  disk.faults.fsyncExtraUs = 0;
  disk.fsync("f", () => done.push(sim.nowUs));
  sim.runFor(2_000_000);
  assert.is(done.length, 2);
  assert.ok((done[0] as number) >= 500_000, "slow fsync took at least the extra latency");
  assert.ok((done[1] as number) > (done[0] as number), "the second waited for the first");
});

test("corruption flips bytes in the cache and on disk", () => {
  const { sim, disk } = setup();
  disk.append("db", enc("aaaaaaaa"));
  fsync(sim, disk, "db");
  disk.corrupt("db", 2, 3);
  const v = disk.read("db");
  assert.is(dec(v.slice(0, 2)) + dec(v.slice(5)), "aaaaa");
  for (let i = 2; i < 5; i++) assert.is.not(v[i], 97);
  crash(sim, "lose");
  assert.equal(disk.read("db"), v, "the corruption is durable");
});

test("corruption under an unsynced overwrite reaches the durable bytes too", () => {
  const { sim, disk } = setup();
  disk.append("db", enc("aaaaaaaa"));
  fsync(sim, disk, "db");
  disk.write("db", 0, enc("bbbbbbbbbb")); // overwrites all 8 durable bytes, appends 2
  disk.corrupt("db", 3, 6);
  const cached = disk.read("db");
  crash(sim, "lose");
  const durable = disk.read("db");
  assert.is(dec(durable.slice(0, 3)), "aaa");
  for (let i = 3; i < 8; i++) {
    const mask = (cached[i] as number) ^ 98;
    assert.ok(
      mask !== 0 && (durable[i] as number) === (97 ^ mask),
      `byte ${i}: the same bit flipped on disk`,
    );
  }
  assert.is(durable.length, 8, "the unsynced append is gone");
});

test("overwrite, truncate and wipe", () => {
  const { sim, disk } = setup();
  disk.append("f", enc("abcdef"));
  disk.write("f", 2, enc("XY"));
  assert.is(dec(disk.read("f")), "abXYef");
  disk.truncate("f", 3);
  assert.is(dec(disk.read("f")), "abX");
  disk.append("f", enc("z"));
  assert.is(dec(disk.read("f")), "abXz");
  fsync(sim, disk, "f");
  assert.is(dec(disk.read("f", 1, 2)), "bX");
  assert.is(disk.used, 4);
  disk.wipe();
  crash(sim, "lose");
  assert.not.ok(disk.exists("f"));
});

test("files across many pages: writes, truncates, fsyncs, crashes and corruption match a flat model", () => {
  const { sim, disk } = setup("pages");
  const rnd = new Random("pages-model");
  const resize = (b: Uint8Array, n: number): Uint8Array => {
    const out = new Uint8Array(n);
    out.set(b.subarray(0, Math.min(n, b.length)));
    return out;
  };
  let cache: Uint8Array = new Uint8Array(0);
  let durable: Uint8Array = new Uint8Array(0);
  /** Unsynced ops, as functions from one image to the next. */
  let pending: ((b: Uint8Array) => Uint8Array)[] = [];
  disk.create("f");
  fsync(sim, disk, "f");
  for (let step = 0; step < 400; step++) {
    const r = rnd.int(0, 12);
    if (r < 6) {
      // up to 200 KiB, anywhere up to 100 KiB past the end: crosses 64 KiB pages
      const bytes = new Uint8Array(rnd.int(1, 200_000)).map(() => rnd.int(0, 256));
      const offset = rnd.int(0, Math.min(cache.length, 800_000) + 100_000);
      disk.write("f", offset, bytes);
      const op = (b: Uint8Array) => {
        const out = resize(b, Math.max(b.length, offset + bytes.length));
        out.set(bytes, offset);
        return out;
      };
      pending.push(op);
      cache = op(cache);
    } else if (r < 8) {
      const n = rnd.int(0, cache.length + 70_000);
      disk.truncate("f", n);
      const op = (b: Uint8Array) => resize(b, n);
      pending.push(op);
      cache = op(cache);
    } else if (r < 9) {
      fsync(sim, disk, "f");
      durable = cache.slice();
      pending = [];
    } else if (r < 10) {
      crash(sim, "lose");
      cache = durable.slice();
      pending = [];
    } else if (r < 11) {
      // an ordered prefix of the unsynced ops survives
      crash(sim, "prefix");
      const got = disk.read("f");
      let image = durable;
      let found = equal(image, got);
      for (const op of pending) {
        image = op(image);
        found ||= equal(image, got);
      }
      assert.ok(found, `step ${step}: a crash kept the durable image plus a prefix of the unsynced ops`);
      cache = got;
      durable = got.slice();
      pending = [];
    } else if (pending.length === 0 && cache.length > 0) {
      // corruption at rest (nothing unsynced): one flipped bit per byte, in the range only
      const offset = rnd.int(0, cache.length);
      const length = Math.min(rnd.int(1, 5_000), cache.length - offset);
      disk.corrupt("f", offset, length);
      const got = disk.read("f");
      assert.is(got.length, cache.length);
      for (let i = 0; i < got.length; i++) {
        const x = (got[i] as number) ^ (cache[i] as number);
        if (i < offset || i >= offset + length) assert.is(x, 0);
        else assert.ok(x !== 0 && (x & (x - 1)) === 0, `byte ${i}: one bit flipped`);
      }
      cache = got;
      durable = got.slice();
    }
    assert.is(disk.size("f"), cache.length);
    const from = rnd.int(0, cache.length + 1);
    const length = rnd.int(0, 150_000);
    sameBytes(disk.read("f", from, length), cache.slice(from, from + length), `step ${step}: a read`);
    sameBytes(disk.read("f"), cache, `step ${step}: the file`);
    sameBytes(disk.image().get("f")?.bytes ?? new Uint8Array(0), durable, `step ${step}: the durable image`);
  }
});

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Where two byte arrays first differ, as a short message (uvu's diff of megabytes takes minutes). */
function sameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  const i = got.findIndex((x, j) => x !== want[j]);
  assert.is(i, -1, `${what}: first difference at byte ${i}`);
}

test("a write the caller changes afterwards reaches the disk as it was written", () => {
  const { sim, disk } = setup();
  const buf = enc("abcd");
  disk.append("f", buf);
  buf.set(enc("XXXX"));
  disk.fsync("f", () => {});
  sim.runUntil(1_000_000);
  crash(sim, "lose");
  assert.is(dec(disk.read("f")), "abcd");
});

test("slab buffers start zeroed and never overlap, across slabs", () => {
  const seen: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) {
    const b = slabBytes(1 + (i % 200));
    assert.ok(
      b.every((x) => x === 0),
      `buffer ${i} zeroed`,
    );
    b.fill(0xff);
    seen.push(b);
  }
  // every earlier buffer still holds only its own fill: none was handed out twice
  for (const b of seen) assert.ok(b.every((x) => x === 0xff));
  assert.is(slabBytes(100_000).byteLength, 100_000);
});

test.run();
