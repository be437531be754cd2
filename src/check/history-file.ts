// Checking a history file of any supported format: etcd-dst (JSON or msgpack), Jepsen's
// etcd register logs, and Porcupine's KV logs. The library behind `etcd-dst check`.
import type { History } from "../../models/client/history.js";
import { HistoryFormatError } from "../history/errors.js";
import { historyFromJson, historyFromMsgpack, looksLikeEtcdDstJson } from "../history/io.js";
import { looksLikeJepsen, parseJepsenLog } from "../history/jepsen.js";
import { looksLikePorcupineKv, parsePorcupineKv } from "../history/porcupine-kv.js";
import { checkEtcdHistory, explainEtcdFailure } from "./etcd-history.js";
import { kvModel } from "./kv.js";
import {
  type CheckOp,
  type CheckResult,
  checkLinearizability,
  type Model,
  type Verdict,
} from "./linearizability.js";
import { registerModel } from "./register.js";

export const HISTORY_FORMATS = ["jepsen-etcd", "porcupine-kv", "etcd-dst"] as const;
export type HistoryFormat = (typeof HISTORY_FORMATS)[number];

export type ParsedHistory =
  | { readonly format: "jepsen-etcd"; readonly ops: ReturnType<typeof parseJepsenLog> }
  | { readonly format: "porcupine-kv"; readonly ops: ReturnType<typeof parsePorcupineKv> }
  | { readonly format: "etcd-dst"; readonly history: History };

/** Reads a history, detecting its format from the content when none is given. */
export function parseHistoryFile(bytes: Uint8Array, name: string, format?: HistoryFormat): ParsedHistory {
  const isMsgpack = format === "etcd-dst" ? name.endsWith(".msgpack") : name.endsWith(".msgpack");
  if (isMsgpack && (format === undefined || format === "etcd-dst"))
    return { format: "etcd-dst", history: historyFromMsgpack(bytes) };
  const text = new TextDecoder().decode(bytes);
  const detected = format ?? detect(text);
  if (detected === undefined) {
    throw new HistoryFormatError(
      0,
      "cannot tell the history's format (use --format jepsen-etcd|porcupine-kv|etcd-dst)",
    );
  }
  switch (detected) {
    case "jepsen-etcd":
      return { format: detected, ops: parseJepsenLog(text) };
    case "porcupine-kv":
      return { format: detected, ops: parsePorcupineKv(text) };
    case "etcd-dst":
      return { format: detected, history: historyFromJson(text) };
  }
}

function detect(text: string): HistoryFormat | undefined {
  if (looksLikeEtcdDstJson(text)) return "etcd-dst";
  if (looksLikeJepsen(text)) return "jepsen-etcd";
  if (looksLikePorcupineKv(text)) return "porcupine-kv";
  return undefined;
}

export interface FileCheckResult {
  readonly verdict: Verdict;
  readonly format: HistoryFormat;
  /** Operations checked. */
  readonly ops: number;
  readonly steps: number;
  /** For etcd-dst: which path decided, and unknown outcomes settled and dropped. */
  readonly path?: "fast" | "search";
  readonly settled?: number;
  readonly dropped?: number;
  /** Lines that explain a violation (empty otherwise). */
  readonly explanation: readonly string[];
}

export function checkParsedHistory(parsed: ParsedHistory, budgetSteps?: number): FileCheckResult {
  const options = budgetSteps === undefined ? {} : { budgetSteps };
  switch (parsed.format) {
    case "jepsen-etcd": {
      const r = checkLinearizability(registerModel, parsed.ops, options);
      return generic(parsed.format, registerModel, parsed.ops, r);
    }
    case "porcupine-kv": {
      const model = kvModel();
      const r = checkLinearizability(model, parsed.ops, options);
      return generic(parsed.format, model, parsed.ops, r);
    }
    case "etcd-dst": {
      const r = checkEtcdHistory(parsed.history, options);
      const explanation = explainEtcdFailure(r);
      return {
        verdict: r.verdict,
        format: "etcd-dst",
        ops: r.ops.length,
        steps: r.steps,
        path: r.path,
        settled: r.settled,
        dropped: r.dropped,
        explanation,
      };
    }
  }
}

function generic<S, I, O>(
  format: HistoryFormat,
  model: Model<S, I, O>,
  ops: readonly CheckOp<I, O>[],
  r: CheckResult<S>,
): FileCheckResult {
  const explanation: string[] = [];
  if (r.failure) {
    const f = r.failure;
    const at = (i: number) => {
      const op = ops[i] as CheckOp<I, O>;
      const desc = model.describeOperation
        ? model.describeOperation(op.input, op.output, op.optional)
        : `operation ${i}`;
      return `client ${op.client} [${op.callUs}..${Number.isFinite(op.returnUs) ? op.returnUs : "never returned"}] ${desc}`;
    };
    const state = model.describeState ? model.describeState(f.state) : "";
    explanation.push(
      `the longest linearizable prefix has ${f.prefix.length} of ${f.partition.length} operations${state ? `; the state after it is ${state}` : ""}`,
    );
    explanation.push("none of these could be placed next:", ...f.stuck.map((i) => `  ${at(i)}`));
  }
  return { verdict: r.verdict, format, ops: ops.length, steps: r.steps, explanation };
}
