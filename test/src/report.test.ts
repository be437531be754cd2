// The report's data: linearization points and states, member timelines from the
// simulator's marks, fault windows as they happened, the plain-language explanation, and
// the `report` / `--report` commands.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Operation } from "../../models/client/history.js";
import { INITIAL_ETCD_STATE } from "../../src/check/etcd.js";
import { buildReport, describeStateFor, explainViolation, placeOrder } from "../../src/report.js";
import { renderReport } from "../../src/report-page.js";
import { runScenario } from "../../src/runner.js";
import { parseScenario } from "../../src/scenario.js";
import { cli } from "../cli/io.js";

const SEEDS = new URL("../../seeds/", import.meta.url).pathname;
const ROLLBACK = `${SEEDS}bug-compaction-revision-rollback.json`;

const op = (
  id: number,
  callUs: number,
  returnUs: number | null,
  request: Operation["request"],
  response: Operation["response"],
): Operation => ({
  id,
  client: id,
  callUs,
  returnUs,
  request,
  response,
});

test("placeOrder: each operation at the earliest point after its call and its predecessor, with states", () => {
  const ops = [
    op(0, 100, 500, { type: "put", key: "a", value: "1" }, { type: "put", revision: 2 }),
    op(
      1,
      50,
      900,
      { type: "range", key: "a" },
      { type: "range", revision: 2, kvs: [], count: 1, more: false },
    ),
    op(2, 600, null, { type: "put", key: "a", value: "2" }, null),
  ];
  const p = placeOrder(ops, [0, 1, 2]);
  assert.is(p.get(0)?.linUs, 100);
  assert.is(p.get(1)?.linUs, 100, "the read is placed after the put, not at its own earlier call");
  assert.is(p.get(2)?.linUs, 600);
  assert.is(p.get(0)?.before, "revision 1; a absent");
  assert.is(p.get(0)?.after, "revision 2; a=1 (mod 2, version 1)");
  assert.is(p.get(2)?.after, "revision 3; a=2 (mod 3, version 2)");
  // a returned error took no effect
  const failed = placeOrder(
    [
      op(
        0,
        10,
        20,
        { type: "put", key: "b", value: "x" },
        { type: "error", code: "ResourceExhausted", message: "etcdserver: too many requests" },
      ),
    ],
    [0],
  );
  assert.is(failed.get(0)?.after, "revision 1; b absent");
});

test("describeStateFor: the revision and the keys a txn compares and writes", () => {
  const s = describeStateFor(INITIAL_ETCD_STATE, {
    type: "txn",
    compare: [{ key: "k1", target: "VERSION", result: "EQUAL", value: 0 }],
    success: [{ type: "put", key: "k2", value: "v" }],
    failure: [],
  });
  assert.is(s, "revision 1; k1 absent, k2 absent");
});

test("buildReport: members' lives and roles, fault windows, the stuck operation marked bad", () => {
  const r = runScenario(parseScenario(readFileSync(ROLLBACK, "utf8")));
  assert.is(r.validation.verdict, "violation");
  const d = buildReport(r, "summary");
  const m1 = d.members.find((m) => m.name === "m1");
  assert.ok(m1, "the member has a timeline");
  // the failpoints crash m1 twice: two down spans between leader/follower spans
  const down = m1.spans.filter((s) => s.state === "down" && s.fromUs > 0);
  assert.is(down.length, 2, JSON.stringify(m1.spans));
  assert.ok(down[0]?.text.includes("failpoint"), down[0]?.text);
  assert.ok(m1.spans.some((s) => s.state === "leader"));
  for (let i = 1; i < m1.spans.length; i++)
    assert.is(m1.spans[i]?.fromUs, m1.spans[i - 1]?.toUs, "spans tile the run without gaps");
  assert.is(d.faults.length, r.scenario.faults.length);
  assert.ok(
    d.faults.every((f) => f.nodes.includes("m1")),
    "roles are resolved to the member",
  );
  const stuck = r.validation.linearizability.stuck;
  assert.ok(stuck.length > 0);
  for (const id of stuck) assert.ok(d.ops.find((o) => o.id === id)?.bad, `operation ${id} is marked`);
  const placed = d.ops.filter((o) => o.linUs !== null);
  assert.is(placed.length, r.validation.linearizability.order.length);
  for (const o of placed) {
    assert.ok((o.linUs as number) >= o.callUs);
    if (o.returnUs !== null) assert.ok((o.linUs as number) <= o.returnUs);
  }
  const v = d.violations.find((x) => x.checker === "revision-rollback");
  assert.ok(
    v?.explanation.some((l) => l.includes("crashed (failpoint")),
    v?.explanation.join("\n"),
  );
});

test("a watch violation marks its watch and the offending response", () => {
  const r = runScenario(
    parseScenario(readFileSync(`${SEEDS}bug-progress-notify-ahead-of-events.json`, "utf8")),
  );
  const v = r.validation.violations.find((x) => x.checker === "watch.bookmarkable");
  assert.ok(v?.watches?.length);
  const d = buildReport(r, "");
  const w = d.watches.find((x) => x.id === v.watches?.[0]);
  assert.ok(w?.bad);
  const bad = w.responses.filter((x) => x.bad);
  assert.is(bad.length, 1);
  assert.is(bad[0]?.atUs, v.atUs);
  assert.is(bad[0]?.kind, "events", "the event that came after the notification");
  assert.ok(d.watches.filter((x) => !x.bad).every((x) => x.responses.every((y) => !y.bad)));
});

test("explainViolation names the operations with clients, members, revisions and times", () => {
  const r = runScenario(parseScenario(readFileSync(ROLLBACK, "utf8")));
  const v = r.validation.violations.find((x) => x.checker === "revision-rollback");
  assert.ok(v);
  const lines = explainViolation(r, v);
  assert.ok(lines[0]?.startsWith("revision-rollback: "));
  assert.ok(
    lines.some((l) =>
      /client \d+ via m1, called at \d+\.\d{3}s, answered at \d+\.\d{3}s: .* -> rev \d+/.test(l),
    ),
  );
});

test("renderReport: one self-contained page, its data inline and unable to close the script", () => {
  const r = runScenario(parseScenario(readFileSync(ROLLBACK, "utf8")));
  const d = buildReport(r, "</script><b>x</b>");
  const html = renderReport(d);
  assert.not.match(html, /<script[^>]+src=/);
  assert.not.match(html, /<link[^>]+href=/);
  assert.not.match(html, /https?:\/\//);
  assert.is(html.split("</script>").length - 1, 2, "only the two script elements close");
  const json = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)?.[1];
  assert.equal(JSON.parse(json as string).ops.length, d.ops.length);
  assert.match(html, /class="bad-op" data-op="\d+"/);
});

test("report and replay --report write the page; report prints its path and exits as the run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-dst-report-"));
  const out = join(dir, "r.html");
  const a = await cli("report", ROLLBACK, "--out", out);
  assert.is(a.code, 1);
  assert.is(a.out.trim(), out);
  assert.match(readFileSync(out, "utf8"), /Violation: linearizability, revision-rollback/);
  const out2 = join(dir, "replay.html");
  const b = await cli("replay", ROLLBACK, "--json", "--report", out2, "--out", dir);
  assert.is(JSON.parse(b.out).verdict, "violation");
  assert.match(b.err, new RegExp(`report: ${out2}`));
  assert.ok(existsSync(out2));
  assert.is((await cli("report")).code, 2);
  assert.is((await cli("report", ROLLBACK, "--profile", "etcd")).code, 2);
});

test("a backup run's timeline shows each member's validations, restores and uploads", () => {
  const sc = parseScenario(readFileSync(`${SEEDS}backup-44.json`, "utf8"));
  const r = runScenario(sc);
  const d = buildReport(r, "seed 44 (backup): ok");
  const m1 = d.members.find((m) => m.name === "m1");
  const kinds = new Set(m1?.marks.map((k) => k.kind));
  for (const k of ["validation", "restore", "upload"] as const) assert.ok(kinds.has(k), `${k} mark`);
  const restore = m1?.marks.find((k) => k.kind === "restore");
  assert.is(restore?.atUs, r.artifacts.backup?.restores[0]?.atUs);
  assert.ok(
    m1?.marks.every((k, i, all) => i === 0 || (all[i - 1]?.atUs ?? 0) <= k.atUs),
    "in time order",
  );
  assert.ok(renderReport(d).includes("backup upload"), "the legend names them");
});

test.run();
