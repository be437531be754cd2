// `etcd-dst run`, `replay`, `fuzz`, `bugs`, `profiles` and `scenario`: JSON documents as
// the contract gives them, exit codes, and one clear line for bad input.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BUG_NAMES } from "../../models/bugs.js";
import { cli, scratchDir } from "./io.js";

test("run --json: one document with the contract's fields; the same seed gives the same trace", async () => {
  const a = await cli("run", "--seed", "3", "--profile", "single-node", "--json");
  assert.is(a.code, 0, a.err);
  const doc = JSON.parse(a.out);
  assert.equal(Object.keys(doc).sort(), [
    "bugs",
    "profile",
    "seed",
    "stats",
    "traceHash",
    "verdict",
    "violations",
  ]);
  assert.is(doc.seed, 3);
  assert.is(doc.profile, "single-node");
  assert.is(doc.verdict, "ok");
  assert.equal(doc.violations, []);
  assert.match(doc.traceHash, /^[0-9a-f]{16}$/);
  for (const k of ["events", "virtualMs", "wallMs", "ops", "faults", "leaderChanges", "unavailableMs"])
    assert.type(doc.stats[k], "number", k);
  const b = JSON.parse((await cli("run", "--seed", "3", "--profile", "single-node", "--json")).out);
  assert.is(b.traceHash, doc.traceHash);
  const human = await cli("run", "--seed", "3", "--profile", "single-node");
  assert.match(human.out, /seed 3 \(single-node\): ok/);
});

test("bad input exits 2 with one line naming the problem", async () => {
  for (const [argv, pattern] of [
    [["run"], /needs --seed/],
    // a negative value is the flag's own error, not the parser's "argument is ambiguous"
    [["run", "--seed", "-4"], /--seed must be a decimal integer from 0 to 2\^53-1, got '-4'/],
    [["fuzz", "--seeds", "-1"], /--seeds must be an integer >= 1, got '-1'/],
    [["run", "--seed", "4x"], /decimal integer/],
    [["run", "--seed", "1", "--profile", "nope"], /unknown profile 'nope' \(known: etcd, kubernetes/],
    [["run", "--seed", "1", "--bug", "nope"], /unknown bug 'nope' \(known: .*vote-granted-before-persist/],
    [["run", "--seed", "1", "--case", "NOPE"], /unknown case 'NOPE'/],
    [
      ["fuzz", "--profile", "single-node", "--case", "SIGQUIT_AND_REMOVE_LEADER"],
      /case SIGQUIT_AND_REMOVE_LEADER needs a cluster of 3 members or more; profile single-node runs 1/,
    ],
    [
      [
        "run",
        "--seed",
        "1",
        "--profile",
        "backup",
        "--case",
        "SIGQUIT_AND_REMOVE_QUORUM_AND_RESTORE_LEADER_SNAPSHOT_FROM_SCRATCH",
      ],
      /does not run in profile backup: there the backup sidecars restore members themselves/,
    ],
    [["replay", "/nonexistent.json"], /cannot read/],
    [["fuzz", "--shard", "3/2"], /--shard must be I\/N/],
    [["fuzz", "--seed-timeout", "10"], /duration with a unit/],
  ] as const) {
    const r = await cli(...argv);
    assert.is(r.code, 2, argv.join(" "));
    assert.match(r.err, pattern);
    assert.is(r.err.trim().split("\n").length, 1, "one line");
  }
  const dir = scratchDir();
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ format: "etcd-dst-scenario", version: 1, seed: 1 }));
  const r = await cli("replay", bad);
  assert.is(r.code, 2);
  assert.match(r.err, /bad\.json: "profile" must be a string/);
});

test("scenario prints a file that replay runs to the same trace, twice over with --check-determinism", async () => {
  const dir = scratchDir();
  const s = await cli("scenario", "--seed", "5", "--profile", "single-node");
  assert.is(s.code, 0);
  const file = join(dir, "s.json");
  writeFileSync(file, s.out);
  const viaSeed = JSON.parse((await cli("run", "--seed", "5", "--profile", "single-node", "--json")).out);
  const viaFile = await cli("replay", file, "--check-determinism", "--json");
  assert.is(viaFile.code, 0, viaFile.err);
  const doc = JSON.parse(viaFile.out);
  assert.is(doc.traceHash, viaSeed.traceHash);
  assert.is(doc.deterministic, true);
  // --bug replaces the file's bugs; the scenario stays the same
  const withBug = JSON.parse(
    (await cli("replay", file, "--bug", "single-node-ack-before-fsync", "--json")).out,
  );
  assert.equal(withBug.bugs, ["single-node-ack-before-fsync"]);
  assert.is(JSON.parse(readFileSync(file, "utf8")).seed, 5);
});

test("fuzz --json: the campaign document; shards split the seeds", async () => {
  const dir = scratchDir();
  const r = await cli(
    "fuzz",
    "--seeds",
    "4",
    "--from",
    "10",
    "--jobs",
    "2",
    "--profile",
    "single-node",
    "--out",
    dir,
    "--json",
  );
  assert.is(r.code, 0, r.err);
  const doc = JSON.parse(r.out);
  for (const k of [
    "seeds",
    "from",
    "profile",
    "bugs",
    "failures",
    "unknown",
    "timeouts",
    "crashed",
    "wallMs",
    "virtualMs",
    "events",
    "ops",
  ])
    assert.ok(k in doc, k);
  assert.is(doc.seeds, 4);
  assert.is(doc.from, 10);
  assert.equal(doc.failures, []);
  assert.ok(doc.ops > 100);
  const shard = JSON.parse(
    (
      await cli(
        "fuzz",
        "--seeds",
        "4",
        "--from",
        "10",
        "--jobs",
        "1",
        "--profile",
        "single-node",
        "--shard",
        "1/2",
        "--out",
        dir,
        "--json",
      )
    ).out,
  );
  assert.is(shard.seeds, 2);
});

test("fuzz saves a failing seed, writes its report next to it and names it on stderr under --json", async () => {
  const dir = scratchDir();
  const r = await cli(
    "fuzz",
    "--seeds",
    "1",
    "--from",
    "7000",
    "--jobs",
    "1",
    "--profile",
    "lock",
    "--bug",
    "lock-without-lease-recheck",
    "--out",
    dir,
    "--json",
  );
  assert.is(r.code, 1, r.err);
  const doc = JSON.parse(r.out);
  assert.is(doc.failures.length, 1);
  const file = doc.failures[0].file as string;
  const page = file.replace(/\.json$/, ".html");
  assert.match(r.err, new RegExp(`report ${page}`));
  assert.match(readFileSync(page, "utf8"), /Violation: lock\.ownership/);
});

test("COMMAND --help prints the command's synopsis and exits 0; every command has one", async () => {
  for (const name of [
    "run",
    "fuzz",
    "replay",
    "shrink",
    "report",
    "bugs",
    "profiles",
    "scenario",
    "check",
    "demo",
  ]) {
    const r = await cli(name, "--help");
    assert.is(r.code, 0, name);
    assert.match(r.out, new RegExp(`^usage: etcd-dst ${name} `), name);
  }
  assert.match((await cli("replay", "--help")).out, /--check-determinism/);
});

test("bugs --json lists every planted bug; profiles --json lists profiles and cases", async () => {
  const b = JSON.parse((await cli("bugs", "--json")).out);
  assert.equal(b.map((x: { name: string }) => x.name).sort(), [...BUG_NAMES].sort());
  for (const x of b)
    assert.equal(Object.keys(x).sort(), ["detectors", "etcdIssue", "name", "profile", "summary"]);
  const p = JSON.parse((await cli("profiles", "--json")).out);
  assert.ok(p.profiles.some((x: { name: string }) => x.name === "mixed"));
  assert.ok(p.cases.some((x: { name: string }) => x.name === "SIGTERM_LEADER"));
});

test("shrink: exit 1 when the input does not fail; the JSON document and a replayable result when it does", async () => {
  const dir = scratchDir();
  const ok = await cli("shrink", "--seed", "3", "--profile", "single-node", "--out", join(dir, "x.json"));
  assert.is(ok.code, 1);
  assert.match(ok.err, /does not fail/);
  const out = join(dir, "min.json");
  const r = await cli(
    "shrink",
    "--seed",
    "2",
    "--profile",
    "single-node",
    "--bug",
    "single-node-ack-before-fsync",
    "--out",
    out,
    "--jobs",
    "2",
    "--json",
  );
  assert.is(r.code, 0, r.err);
  const doc = JSON.parse(r.out);
  assert.equal(Object.keys(doc).sort(), ["after", "before", "checker", "file", "runs", "wallMs"]);
  for (const k of ["faults", "ops", "clients", "members", "virtualMs"])
    assert.type(doc.after[k], "number", k);
  assert.ok(doc.after.faults < doc.before.faults);
  assert.is(doc.file, out);
  assert.match(r.err, /faults, in time order/);
  const replayed = JSON.parse((await cli("replay", out, "--json", "--out", dir)).out);
  assert.ok(
    replayed.violations.some((v: { checker: string }) => v.checker === doc.checker),
    "the shrunk file fails with the same checker",
  );
});

test("a case that needs 3 members never runs on fewer; other seeds keep their profile", async () => {
  const { generateScenario, resolveProfile } = await import("../../src/profiles.js");
  let moved = 0;
  for (let seed = 3000; seed < 3060; seed++) {
    const plain = resolveProfile(seed, "mixed");
    const sc = generateScenario(seed, "mixed", "SIGQUIT_AND_REMOVE_ONE_FOLLOWER");
    assert.ok(sc.cluster.members >= 3, `seed ${seed}: ${sc.profile} with ${sc.cluster.members}`);
    if (plain === "single-node") moved++;
    else assert.is(sc.profile, plain, `seed ${seed} keeps its profile`);
  }
  assert.ok(moved > 0, "some seeds would have drawn single-node");
  // backup runs 1 or 3 members: with the case, always 3
  for (let seed = 1; seed < 20; seed++)
    assert.is(generateScenario(seed, "backup", "SIGQUIT_AND_REMOVE_LEADER").cluster.members, 3);
  // a scenario file may still ask a lone member to be replaced: nothing happens, no crash
  const sc = generateScenario(3013, "single-node");
  const dir = scratchDir();
  const file = join(dir, "lone.json");
  writeFileSync(
    file,
    JSON.stringify({
      ...sc,
      faults: [{ kind: "member-replace", node: "m1", atUs: 3_000_000, durationUs: 0 }],
    }),
  );
  const r = await cli("replay", file, "--json");
  assert.is(r.code, 0, r.err);
  assert.is(JSON.parse(r.out).verdict, "ok");
});

test.run();
