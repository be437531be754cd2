// Porcupine's key-value logs: one EDN map per line, in real-time order,
//   {:process N, :type :invoke|:ok, :f :get|:put|:append, :key "k", :value "v"|nil}
// Every call returns; a get returns the value (nil or "" when never written).
import type { KvInput, KvOutput } from "../check/kv.js";
import type { CheckOp } from "../check/linearizability.js";
import { HistoryFormatError } from "./errors.js";

const LINE =
  /^\{:process (\d+), :type :(invoke|ok), :f :(get|put|append), :key "((?:[^"\\]|\\.)*)", :value (nil|"((?:[^"\\]|\\.)*)")\}$/;

export function looksLikePorcupineKv(text: string): boolean {
  return /^\{:process \d+, :type :/m.test(text.slice(0, 4096));
}

export function parsePorcupineKv(text: string): CheckOp<KvInput, KvOutput>[] {
  const ops: (CheckOp<KvInput, KvOutput> | null)[] = [];
  const open = new Map<number, { slot: number; callUs: number; input: KvInput; line: number }>();
  let time = 0;
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === "") return;
    const m = LINE.exec(raw.trim());
    if (!m)
      throw new HistoryFormatError(
        line,
        'not a Porcupine KV line ({:process N, :type :invoke|:ok, :f :get|:put|:append, :key "k", :value ...})',
      );
    const client = Number(m[1]);
    const f = m[3] as KvInput["f"];
    const key = JSON.parse(`"${m[4]}"`) as string;
    const value = m[5] === "nil" ? "" : (JSON.parse(`"${m[6]}"`) as string);
    time++;
    if (m[2] === "invoke") {
      if (open.has(client))
        throw new HistoryFormatError(line, `process ${client} invoked twice without completing`);
      open.set(client, { slot: ops.length, callUs: time, input: { f, key, value }, line });
      ops.push(null);
      return;
    }
    const inv = open.get(client);
    if (!inv) throw new HistoryFormatError(line, `process ${client} completes an operation it never invoked`);
    open.delete(client);
    ops[inv.slot] = {
      client,
      callUs: inv.callUs,
      returnUs: time,
      input: inv.input,
      output: { value },
      optional: false,
    };
  });
  const pending = [...open.values()][0];
  if (pending)
    throw new HistoryFormatError(
      pending.line,
      "an invocation never completes (this format has no unknown outcomes)",
    );
  return ops.filter((o): o is CheckOp<KvInput, KvOutput> => o !== null);
}
