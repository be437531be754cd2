// Reading and writing etcd-dst histories (models/client/history.ts): JSON for people
// (one operation or watch per line, so that an error can name its line) and msgpack for
// artifacts. Everything read is validated; a bad record is reported with its line.
import { Packr } from "msgpackr";
import type {
  History,
  KeepAliveRecord,
  KvRequest,
  LockRecord,
  Operation,
  WatchRecord,
} from "../../models/client/history.js";
import { HistoryFormatError } from "./errors.js";

export const HISTORY_FORMAT = "etcd-dst-history";
export const HISTORY_VERSION = 1;

/** A history as JSON: a header, then one record per line. */
export function historyToJson(h: History): string {
  const lines: string[] = [`{"format":"${HISTORY_FORMAT}","version":${HISTORY_VERSION},`];
  const sections: [string, readonly unknown[]][] = [
    ["operations", h.operations],
    ["watches", h.watches],
  ];
  if (h.keepAlives?.length) sections.push(["keepAlives", h.keepAlives]);
  if (h.locks?.length) sections.push(["locks", h.locks]);
  sections.forEach(([name, records], s) => {
    lines.push(`"${name}":[`);
    records.forEach((r, i) => {
      lines.push(JSON.stringify(r) + (i + 1 < records.length ? "," : ""));
    });
    lines.push(s + 1 < sections.length ? "]," : "]}");
  });
  lines.push("");
  return lines.join("\n");
}

const packr = new Packr({ useRecords: true });

export function historyToMsgpack(h: History): Uint8Array {
  return Uint8Array.from(
    packr.pack({
      format: HISTORY_FORMAT,
      version: HISTORY_VERSION,
      operations: h.operations,
      watches: h.watches,
      ...(h.keepAlives?.length ? { keepAlives: h.keepAlives } : {}),
      ...(h.locks?.length ? { locks: h.locks } : {}),
    }),
  );
}

export function historyFromMsgpack(bytes: Uint8Array): History {
  let doc: unknown;
  try {
    doc = packr.unpack(bytes);
  } catch (e) {
    throw new HistoryFormatError(0, `not a msgpack history: ${(e as Error).message}`);
  }
  return validate(doc, null);
}

export function looksLikeEtcdDstJson(text: string): boolean {
  return text.trimStart().startsWith("{") && text.slice(0, 256).includes(HISTORY_FORMAT);
}

export function historyFromJson(text: string): History {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    const line = m ? lineAt(text, Number(m[1])) : 0;
    throw new HistoryFormatError(
      line,
      `malformed JSON: ${(e as Error).message.replace(/ in JSON at position \d+.*$/, "")}`,
    );
  }
  return validate(doc, text);
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Offsets where the elements of each top-level array ("operations", "watches"...) start,
 * found by a small scan (strings skipped), so validation errors can name a line.
 */
function elementOffsets(text: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  let depth = 0;
  let lastKey = "";
  let current: number[] | null = null;
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1) lastKey = text.slice(i + 1, j);
      if (expectElement && current) current.push(i);
      expectElement = false;
      i = j;
      continue;
    }
    if (c === " " || c === "\n" || c === "\r" || c === "\t") continue;
    if (expectElement && current && c !== "]") current.push(i);
    expectElement = false;
    if (c === "{" || c === "[") {
      depth++;
      if (depth === 2 && c === "[") {
        current = [];
        out[lastKey] = current;
        expectElement = true;
      }
    } else if (c === "}" || c === "]") {
      depth--;
      if (depth === 1) current = null;
    } else if (c === "," && depth === 2 && current) {
      expectElement = true;
    }
  }
  return out;
}

function validate(doc: unknown, text: string | null): History {
  const d = doc as { format?: unknown; version?: unknown; operations?: unknown; watches?: unknown } | null;
  if (typeof d !== "object" || d === null || Array.isArray(d))
    throw new HistoryFormatError(1, "a history is a JSON object");
  if (d.format !== HISTORY_FORMAT) throw new HistoryFormatError(1, `"format" must be "${HISTORY_FORMAT}"`);
  if (d.version !== HISTORY_VERSION)
    throw new HistoryFormatError(1, `unsupported history version ${String(d.version)}`);
  if (!Array.isArray(d.operations)) throw new HistoryFormatError(1, `"operations" must be an array`);
  const watches = d.watches === undefined ? [] : d.watches;
  if (!Array.isArray(watches)) throw new HistoryFormatError(1, `"watches" must be an array`);
  const offsets = text === null ? null : elementOffsets(text);
  const lineOf = (kind: string, i: number) => {
    const off = offsets?.[kind]?.[i];
    return off === undefined || text === null ? 0 : lineAt(text, off);
  };
  d.operations.forEach((op, i) => {
    const problem = operationProblem(op);
    if (problem) throw new HistoryFormatError(lineOf("operations", i), `operation ${i}: ${problem}`);
  });
  watches.forEach((w, i) => {
    const problem = watchProblem(w);
    if (problem) throw new HistoryFormatError(lineOf("watches", i), `watch ${i}: ${problem}`);
  });
  const extra: { keepAlives?: KeepAliveRecord[]; locks?: LockRecord[] } = {};
  for (const name of ["keepAlives", "locks"] as const) {
    const list = (d as Record<string, unknown>)[name];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new HistoryFormatError(1, `"${name}" must be an array`);
    list.forEach((r, i) => {
      const x = r as Record<string, unknown> | null;
      if (typeof x !== "object" || x === null || !isNum(x.client) || !isNum(x.lease))
        throw new HistoryFormatError(lineOf(name, i), `${name} ${i}: needs numeric client and lease`);
    });
    extra[name] = list;
  }
  return { operations: d.operations as Operation[], watches: watches as WatchRecord[], ...extra };
}

const REQUEST_TYPES = new Set(["range", "put", "delete", "txn", "compact", "lease-grant", "lease-revoke"]);

function isNum(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

function requestProblem(r: unknown, path: string): string | null {
  const q = r as Partial<KvRequest> & Record<string, unknown>;
  if (typeof q !== "object" || q === null) return `${path} must be an object`;
  if (!REQUEST_TYPES.has(q.type as string))
    return `${path}.type must be one of ${[...REQUEST_TYPES].join(", ")}`;
  switch (q.type) {
    case "range":
    case "delete":
      return typeof q.key === "string" ? null : `${path}.key must be a string`;
    case "put":
      return typeof q.key === "string" && typeof q.value === "string"
        ? null
        : `${path} needs string key and value`;
    case "txn": {
      if (!Array.isArray(q.compare) || !Array.isArray(q.success) || !Array.isArray(q.failure)) {
        return `${path} needs compare, success and failure arrays`;
      }
      for (const [k, ops] of [
        ["success", q.success],
        ["failure", q.failure],
      ] as const) {
        for (let j = 0; j < ops.length; j++) {
          const p = requestProblem(ops[j], `${path}.${k}[${j}]`);
          if (p) return p;
        }
      }
      return null;
    }
    case "compact":
      return isNum(q.revision) ? null : `${path}.revision must be a number`;
    case "lease-grant":
      return isNum(q.id) && isNum(q.ttlS) ? null : `${path} needs numeric id and ttlS`;
    case "lease-revoke":
      return isNum(q.id) ? null : `${path}.id must be a number`;
    default:
      return null;
  }
}

function operationProblem(op: unknown): string | null {
  const o = op as Partial<Operation> | null;
  if (typeof o !== "object" || o === null) return "must be an object";
  if (!isNum(o.id)) return "id must be a number";
  if (!isNum(o.client)) return "client must be a number";
  if (!isNum(o.callUs)) return "callUs must be a number";
  if (o.returnUs !== null && !isNum(o.returnUs)) return "returnUs must be a number or null (unknown outcome)";
  if (o.returnUs !== null && (o.returnUs as number) < o.callUs) return "returnUs is before callUs";
  const rp = requestProblem(o.request, "request");
  if (rp) return rp;
  if (
    o.response !== null &&
    (typeof o.response !== "object" || typeof (o.response as { type?: unknown }).type !== "string")
  ) {
    return "response must be an object with a type, or null";
  }
  if (o.returnUs !== null && o.response === null) return "a returned operation needs a response";
  if (o.response && o.response.type !== "error" && o.response.type !== o.request?.type)
    return `response type ${o.response.type} does not answer a ${o.request?.type}`;
  if (o.response && o.response.type !== "error" && !isNum((o.response as { revision?: unknown }).revision))
    return "response.revision must be a number";
  return null;
}

function watchProblem(w: unknown): string | null {
  const x = w as Partial<WatchRecord> | null;
  if (typeof x !== "object" || x === null) return "must be an object";
  if (!isNum(x.id) || !isNum(x.client) || !isNum(x.callUs)) return "id, client and callUs must be numbers";
  if (typeof x.request !== "object" || x.request === null || typeof x.request.key !== "string")
    return "request.key must be a string";
  if (!Array.isArray(x.responses)) return "responses must be an array";
  for (let i = 0; i < x.responses.length; i++) {
    const r = x.responses[i];
    if (!isNum(r?.atUs) || !isNum(r?.revision) || !Array.isArray(r?.events))
      return `response ${i} needs atUs, revision and events`;
  }
  return null;
}
