// `etcd-dst real` against etcd 3.4 (test:real): a short run under every fault kind passes
// and says what it checked; the checks it runs catch tampered histories; the peer proxies
// really partition a member.
import { existsSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { RangeResponse } from "../../models/client/history.js";
import { validateRun } from "../../src/check/validate.js";
import { etcdBinary, RealCluster } from "../../src/real/etcd.js";
import { runReal } from "../../src/real/run.js";
import { cli } from "../cli/io.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (etcdBinary()) {
  test("real --duration 8s under kill, pause and partition: ok, and says what it checked", async () => {
    const r = await cli("real", "--duration", "8s", "--faults", "kill,pause,partition", "--json");
    assert.is(r.code, 0, r.out + r.err);
    const doc = JSON.parse(r.out) as Record<string, unknown>;
    const stats = doc.stats as Record<string, number>;
    assert.is(doc.seed, null);
    assert.is(doc.traceHash, null);
    assert.is(doc.verdict, "ok");
    assert.match(String(doc.etcdVersion), /^3\.4\./);
    assert.ok((stats.ops ?? 0) > 100, `ops ${stats.ops}`);
    assert.ok((stats.watchEvents ?? 0) > 100, `watch events ${stats.watchEvents}`);
    assert.ok((stats.faults ?? 0) >= 1, `faults ${stats.faults}`);
    assert.ok(Array.isArray(doc.faultLog) && doc.faultLog.length >= 2);
  });

  test("the real mode's checks catch a tampered read, a lost watch event and disagreeing members", async () => {
    const r = await runReal({ members: 3, durationMs: 3_000, faults: [], seed: "tamper" });
    assert.is(r.validation.verdict, "ok");
    assert.ok(!existsSync(r.dir), "an ok run removes its directory");
    const a = r.artifacts;
    const ops = a.history.operations;
    // a linearizable read that saw a value nobody wrote
    const i = ops.findIndex(
      (o) => o.request.type === "range" && o.response?.type === "range" && o.response.kvs.length > 0,
    );
    assert.ok(i >= 0);
    const read = ops[i] as (typeof ops)[number];
    const resp = read.response as RangeResponse;
    const tampered = ops.map((o, k) =>
      k === i
        ? { ...o, response: { ...resp, kvs: resp.kvs.map((kv) => ({ ...kv, value: "never-written" })) } }
        : o,
    );
    const v1 = validateRun({ ...a, history: { ...a.history, operations: tampered as typeof ops } });
    assert.is(v1.verdict, "violation");
    // a watch that skipped one event
    const watches = a.history.watches.map((w, k) => {
      if (k !== 0) return w;
      const j = w.responses.findIndex((x) => x.events.length > 0);
      return { ...w, responses: w.responses.filter((_, n) => n !== j) };
    });
    const v2 = validateRun({ ...a, history: { ...a.history, watches } });
    assert.ok(
      v2.violations.some((v) => v.checker.startsWith("watch")),
      JSON.stringify(v2.violations.map((v) => v.checker)),
    );
    // one member's HashKV differs
    const end = a.end.map((m, k) =>
      k === 1 && m.hashKv ? { ...m, hashKv: { ...m.hashKv, hash: m.hashKv.hash + 1 } } : m,
    );
    const v3 = validateRun({ ...a, end });
    assert.ok(v3.violations.some((v) => v.checker === "agreement"));
  });

  test("blackholing the leader's peer traffic elects another; healing brings it back", async () => {
    const c = await RealCluster.start(3, { proxies: true });
    try {
      const status = (i: number) => c.call("/v3/maintenance/status", {}, i, 2_000);
      const first = await status(0);
      let leader = -1;
      for (let i = 0; i < 3; i++)
        if (String(((await status(i)).header as { member_id: string }).member_id) === String(first.leader))
          leader = i;
      assert.ok(leader >= 0);
      for (let k = 0; k < 3; k++) if (k !== leader) c.proxies?.setBlocked(leader, k, true);
      const other = (leader + 1) % 3;
      let elected = false;
      for (let t = 0; t < 50 && !elected; t++) {
        await sleep(200);
        const s = await status(other);
        elected =
          Number(s.raftTerm) > Number(first.raftTerm) &&
          String(s.leader) !== String(first.leader) &&
          String(s.leader) !== "0";
      }
      assert.ok(elected, "no new leader while the old one was cut off");
      c.proxies?.healAll();
      let back = false;
      for (let t = 0; t < 50 && !back; t++) {
        await sleep(200);
        const [a, b] = [await status(leader), await status(other)];
        back = String(a.leader) === String(b.leader) && Number(a.raftTerm) === Number(b.raftTerm);
      }
      assert.ok(back, "the old leader did not rejoin");
    } finally {
      await c.close();
    }
  });
}

test.run();
