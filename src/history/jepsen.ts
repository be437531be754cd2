// Jepsen's etcd register logs (as Porcupine's test data has them):
//   INFO  jepsen.util - <process>\t<type>\t<f>\t<value>
// type :invoke | :ok | :fail | :info; f :read | :write | :cas; value nil | N | [from to].
// Line order is real time. An :info operation crashed (its outcome is unknown); a read
// that failed or timed out tells nothing and is dropped; an invocation never completed
// is unknown too.
import type { CheckOp } from "../check/linearizability.js";
import type { RegisterInput, RegisterOutput } from "../check/register.js";
import { HistoryFormatError } from "./errors.js";

const LINE = /^INFO\s+jepsen\.util\s+-\s+(\d+)\t:(invoke|ok|fail|info)\t:(read|write|cas)\t(.*)$/;

type RegisterOp = CheckOp<RegisterInput, RegisterOutput>;

function parseValue(text: string, line: number): number | null | [number, number] {
  const t = text.trim();
  if (t === "nil" || t === ":timed-out") return null;
  const cas = /^\[(-?\d+) (-?\d+)\]$/.exec(t);
  if (cas) return [Number(cas[1]), Number(cas[2])];
  if (/^-?\d+$/.test(t)) return Number(t);
  throw new HistoryFormatError(line, `unreadable value '${t}'`);
}

export function looksLikeJepsen(text: string): boolean {
  return /^INFO\s+jepsen\.util\s+-\s/m.test(text.slice(0, 4096));
}

function toInput(
  f: RegisterInput["f"],
  value: number | null | [number, number],
  line: number,
): RegisterInput {
  if (f === "read") return { f };
  if (f === "write") {
    if (typeof value !== "number") throw new HistoryFormatError(line, "a write needs a number");
    return { f, value };
  }
  if (!Array.isArray(value)) throw new HistoryFormatError(line, "a cas needs [from to]");
  return { f, from: value[0], to: value[1] };
}

export function parseJepsenLog(text: string): RegisterOp[] {
  const slots: (RegisterOp | null)[] = [];
  const open = new Map<number, { slot: number; callUs: number; input: RegisterInput }>();
  const unknown = (client: number, callUs: number, input: RegisterInput): RegisterOp | null =>
    input.f === "read"
      ? null
      : { client, callUs, returnUs: Number.POSITIVE_INFINITY, input, output: { ok: false }, optional: true };
  let time = 0;
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === "") return;
    const m = LINE.exec(raw.replace(/\r$/, ""));
    if (!m)
      throw new HistoryFormatError(
        line,
        "not a Jepsen etcd log line (INFO  jepsen.util - <process>\\t<type>\\t<f>\\t<value>)",
      );
    const client = Number(m[1]);
    const type = m[2] as string;
    const f = m[3] as RegisterInput["f"];
    const value = parseValue(m[4] as string, line);
    time++;
    if (type === "invoke") {
      if (open.has(client))
        throw new HistoryFormatError(line, `process ${client} invoked twice without completing`);
      open.set(client, { slot: slots.length, callUs: time, input: toInput(f, value, line) });
      slots.push(null);
      return;
    }
    const inv = open.get(client);
    if (!inv) throw new HistoryFormatError(line, `process ${client} completes an operation it never invoked`);
    if (inv.input.f !== f)
      throw new HistoryFormatError(line, `process ${client} invoked :${inv.input.f} but completes :${f}`);
    open.delete(client);
    const base = { client, callUs: inv.callUs, input: inv.input };
    if (type === "ok") {
      const output: RegisterOutput =
        f === "read" ? { ok: true, value: value as number | null } : { ok: true };
      slots[inv.slot] = { ...base, returnUs: time, output, optional: false };
    } else if (type === "fail") {
      // A failed read says nothing; a failed write or cas did not happen.
      slots[inv.slot] =
        f === "read" ? null : { ...base, returnUs: time, output: { ok: false }, optional: false };
    } else {
      slots[inv.slot] = unknown(client, inv.callUs, inv.input);
    }
  });
  for (const [client, inv] of open) slots[inv.slot] = unknown(client, inv.callUs, inv.input);
  return slots.filter((o): o is RegisterOp => o !== null);
}
