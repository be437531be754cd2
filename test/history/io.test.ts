// History files: round trips, and bad input reported with its line.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generateHistory } from "../../src/check/generate.js";
import { HistoryFormatError } from "../../src/history/errors.js";
import {
  historyFromJson,
  historyFromMsgpack,
  historyToJson,
  historyToMsgpack,
} from "../../src/history/io.js";
import { parseJepsenLog } from "../../src/history/jepsen.js";
import { parsePorcupineKv } from "../../src/history/porcupine-kv.js";

const lineOf = (fn: () => unknown): number => {
  try {
    fn();
  } catch (e) {
    if (e instanceof HistoryFormatError) return e.line;
    throw e;
  }
  return -1;
};

test("a history survives JSON and msgpack round trips, unknown outcomes included", () => {
  const h = generateHistory({ seed: "io", ops: 200, unknownRate: 0.1 });
  h.operations.length;
  const json = historyToJson(h);
  assert.equal(historyFromJson(json), h);
  assert.equal(historyFromMsgpack(historyToMsgpack(h)), h);
  assert.ok(h.operations.some((o) => o.returnUs === null));
  assert.ok(historyToMsgpack(h).length < json.length, "msgpack is smaller");
});

test("one operation per line, and a bad operation is reported at its line", () => {
  const h = generateHistory({ seed: "io2", ops: 5, unknownRate: 0 });
  const lines = historyToJson(h).split("\n");
  assert.ok(lines[2]?.startsWith('{"id":0'));
  // break operation 3 (line 6)
  const broken = [...lines];
  broken[5] = (broken[5] as string).replace('"callUs":', '"callUs":"x","was":');
  assert.is(
    lineOf(() => historyFromJson(broken.join("\n"))),
    6,
  );
  // malformed JSON: the line of the syntax error
  const syntax = [...lines];
  syntax[4] = "{oops";
  assert.is(
    lineOf(() => historyFromJson(syntax.join("\n"))),
    5,
  );
  assert.is(
    lineOf(() => historyFromJson('{"format":"other"}')),
    1,
  );
});

test("Jepsen and Porcupine logs: parsed, and bad lines named", () => {
  const ops = parseJepsenLog(
    "INFO  jepsen.util - 0\t:invoke\t:write\t3\nINFO  jepsen.util - 0\t:info\t:write\t3\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\t3\n",
  );
  assert.is(ops.length, 2);
  assert.ok(ops[0]?.optional, ":info is an unknown outcome");
  assert.is(ops[1]?.output.value, 3);
  assert.is(
    lineOf(() => parseJepsenLog("INFO  jepsen.util - 0\t:invoke\t:write\t3\nbad line\n")),
    2,
  );
  assert.is(
    lineOf(() => parseJepsenLog("INFO  jepsen.util - 0\t:ok\t:write\t3\n")),
    1,
  );
  const kv = parsePorcupineKv(
    '{:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}\n{:process 0, :type :ok, :f :append, :key "4", :value "x 0 1 y"}\n',
  );
  assert.equal(kv[0]?.input, { f: "append", key: "4", value: "x 0 1 y" });
  assert.is(
    lineOf(() => parsePorcupineKv('{:process 0, :type :invoke, :f :get, :key "4", :value nil}\n')),
    1,
  );
});

test.run();
