// What a failure report shows, as plain data (the HTML page draws it; tests read it), and
// the plain-language explanation of a violation that ends a failing run's terminal output.
import type { KvRequest, Operation, WatchResponse } from "../models/client/history.js";
import type { MarkKind } from "../sim/index.js";
import type { Violation } from "./check/artifacts.js";
import {
  applyRequest,
  describeOutput,
  describeRequest,
  type EtcdState,
  INITIAL_ETCD_STATE,
  inRange,
  keyValueAt,
} from "./check/etcd.js";
import { describeFault, type Fault, type FaultWindow, faultNodes } from "./faults.js";
import type { RunResult } from "./runner.js";
import type { Scenario } from "./scenario.js";

export type OpStatus = "ok" | "error" | "unknown";

export interface ReportOp {
  readonly id: number;
  readonly client: number;
  readonly member: string | null;
  readonly callUs: number;
  /** Null: the outcome is unknown (drawn open-ended). */
  readonly returnUs: number | null;
  readonly request: string;
  readonly response: string;
  readonly status: OpStatus;
  /** Where the checker placed it, when it is in the linearization (or its longest prefix). */
  readonly linUs: number | null;
  /** The model's state (around the keys it touches) before and after it, when placed. */
  readonly before: string | null;
  readonly after: string | null;
  /** Could not be placed after the longest linearizable prefix, or named by a violation. */
  readonly bad: boolean;
}

export interface ReportWatchResponse {
  readonly atUs: number;
  readonly member: string | null;
  readonly kind: "events" | "progress" | "created" | "canceled" | "error";
  readonly revision: number;
  readonly text: string;
  /** The response a watch violation points at (same watch, same time). */
  readonly bad: boolean;
}

export interface ReportWatch {
  readonly id: number;
  readonly client: number;
  readonly callUs: number;
  readonly request: string;
  readonly responses: readonly ReportWatchResponse[];
  readonly bad: boolean;
}

export type SpanState = "down" | "follower" | "candidate" | "pre-candidate" | "leader";

export interface MemberSpan {
  readonly fromUs: number;
  readonly toUs: number;
  readonly state: SpanState;
  readonly text: string;
}

export interface ReportMember {
  readonly name: string;
  readonly spans: readonly MemberSpan[];
  readonly pauses: readonly { readonly fromUs: number; readonly toUs: number }[];
  readonly marks: readonly { readonly atUs: number; readonly kind: ReportMarkKind; readonly text: string }[];
}

/** The simulator's marks, and the backup sidecar's doings (the `backup` profile). */
export type ReportMarkKind = MarkKind | "validation" | "restore" | "upload";

export interface ReportFault {
  readonly kind: Fault["kind"];
  readonly nodes: readonly string[];
  readonly fromUs: number;
  readonly toUs: number;
  readonly text: string;
}

export interface ReportViolation {
  readonly checker: string;
  readonly message: string;
  readonly atUs: number | null;
  readonly operations: readonly number[];
  readonly watches: readonly number[];
  readonly members: readonly string[];
  /** The explanation in plain words, line by line. */
  readonly explanation: readonly string[];
}

export interface ReportData {
  readonly seed: number;
  readonly profile: string;
  readonly bugs: readonly string[];
  readonly verdict: string;
  readonly traceHash: string;
  readonly endUs: number;
  readonly summary: string;
  readonly violations: readonly ReportViolation[];
  readonly members: readonly ReportMember[];
  readonly faults: readonly ReportFault[];
  readonly ops: readonly ReportOp[];
  readonly watches: readonly ReportWatch[];
}

const secs = (us: number) => `${(us / 1e6).toFixed(3)}s`;

function opStatus(o: Operation): OpStatus {
  if (o.returnUs === null) return "unknown";
  return o.response?.type === "error" ? "error" : "ok";
}

function describeResponse(o: Operation): string {
  if (o.response === null) return o.returnUs === null ? "no answer (outcome unknown)" : "no answer";
  const text = describeOutput(o.response);
  return o.returnUs === null ? `${text} (outcome unknown)` : text;
}

/** The keys a request reads or writes, as they stand in `s`. */
function touchedKeys(s: EtcdState, r: KvRequest, into: Set<string>): void {
  switch (r.type) {
    case "range":
    case "delete":
      if (r.rangeEnd) {
        for (const k of s.kvs.keys) if (inRange(k, r.key, r.rangeEnd) && into.size < 8) into.add(k);
      } else into.add(r.key);
      return;
    case "put":
      into.add(r.key);
      return;
    case "txn":
      for (const c of r.compare) into.add(c.key);
      for (const x of [...r.success, ...r.failure]) touchedKeys(s, x, into);
      return;
    default:
      return;
  }
}

/** The model state around a request's keys: its revision and those keys' values. */
export function describeStateFor(s: EtcdState, r: KvRequest): string {
  const keys = new Set<string>();
  touchedKeys(s, r, keys);
  const parts = [...keys].sort().map((k) => {
    const kv = keyValueAt(s, k);
    return kv ? `${k}=${kv.value} (mod ${kv.modRevision}, version ${kv.version})` : `${k} absent`;
  });
  return `revision ${s.revision}${s.compactRevision > 0 ? `, compacted at ${s.compactRevision}` : ""}${parts.length ? `; ${parts.join(", ")}` : ""}`;
}

interface Placement {
  readonly linUs: number;
  readonly before: string;
  readonly after: string;
}

/**
 * Linearization points and states along an order of operations: each is placed at the
 * earliest time after its call and after the one before it (a valid order has one).
 */
export function placeOrder(ops: readonly Operation[], order: readonly number[]): Map<number, Placement> {
  const byId = new Map(ops.map((o) => [o.id, o]));
  const out = new Map<number, Placement>();
  let state = INITIAL_ETCD_STATE;
  let t = 0;
  for (const id of order) {
    const o = byId.get(id);
    if (!o) continue;
    t = Math.max(t, o.callUs);
    if (o.returnUs !== null) t = Math.min(t, o.returnUs);
    const next = applyRequest(state, o.request);
    // an error the client saw with a known return took no effect
    const after = opStatus(o) === "error" ? state : next.state;
    out.set(id, {
      linUs: t,
      before: describeStateFor(state, o.request),
      after: describeStateFor(after, o.request),
    });
    state = after;
  }
  return out;
}

/** Each member's roles, lives and pauses over the run, from the simulator's marks. */
function memberTimelines(r: RunResult): ReportMember[] {
  const names = [...new Set(r.artifacts.members.map((m) => m.name))].sort();
  const endUs = r.artifacts.endUs;
  return names.map((name) => {
    const marks = r.sim.marks.filter((m) => m.node === name);
    const spans: MemberSpan[] = [];
    const pauses: { fromUs: number; toUs: number }[] = [];
    let state: SpanState = "down";
    let text = "not started";
    let from = 0;
    let pausedAt: number | null = null;
    const to = (next: SpanState, nextText: string, atUs: number) => {
      if (atUs > from) {
        spans.push({ fromUs: from, toUs: atUs, state, text });
        from = atUs;
      }
      state = next;
      text = nextText;
    };
    for (const m of marks) {
      if (m.kind === "boot") to("follower", `follower (${m.text})`, m.atUs);
      else if (m.kind === "crash") {
        to("down", `down: ${m.text}`, m.atUs);
        if (pausedAt !== null) pauses.push({ fromUs: pausedAt, toUs: m.atUs });
        pausedAt = null;
      } else if (m.kind === "role") {
        const role = m.text.split(" in term ")[0] as SpanState;
        to(role, m.text, m.atUs);
      } else if (m.kind === "pause") pausedAt = m.atUs;
      else if (m.kind === "resume" && pausedAt !== null) {
        pauses.push({ fromUs: pausedAt, toUs: m.atUs });
        pausedAt = null;
      }
    }
    if (endUs > from) spans.push({ fromUs: from, toUs: endUs, state, text });
    if (pausedAt !== null) pauses.push({ fromUs: pausedAt, toUs: endUs });
    const b = r.artifacts.backup;
    const sidecar: ReportMember["marks"] = b
      ? [
          ...b.validations
            .filter((v) => v.member === name)
            .map((v) => ({
              atUs: v.atUs,
              kind: "validation" as const,
              text: `${v.mode} validation: ${v.failure ?? "valid"}, ${v.action} (${v.detail})`,
            })),
          ...b.restores
            .filter((x) => x.member === name)
            .map((x) => ({
              atUs: x.atUs,
              kind: "restore" as const,
              text: x.revision > 0 ? `restored from backup at revision ${x.revision}` : "data dir deleted",
            })),
          ...b.uploads
            .filter((u) => u.member === name)
            .map((u) => ({
              atUs: u.atUs,
              kind: "upload" as const,
              text: `${u.kind} snapshot uploaded at revision ${u.revision}${u.kind === "delta" ? ` (from ${u.fromRevision})` : ""}, store had ${u.newestBefore}`,
            })),
        ]
      : [];
    return {
      name,
      spans,
      pauses,
      marks: [
        ...marks
          .filter((m) => m.kind !== "role" && m.kind !== "pause" && m.kind !== "resume")
          .map((m) => ({ atUs: m.atUs, kind: m.kind as ReportMarkKind, text: m.text })),
        ...sidecar,
      ].sort((x, y) => x.atUs - y.atUs),
    };
  });
}

function watchKind(w: WatchResponse): ReportWatchResponse["kind"] {
  if (w.error) return "error";
  if (w.canceled) return "canceled";
  if (w.created) return "created";
  if (w.progressNotify || w.events.length === 0) return "progress";
  return "events";
}

function describeWatchResponse(w: WatchResponse): string {
  const head = `rev ${w.revision}${w.member ? ` from ${w.member}` : ""}`;
  switch (watchKind(w)) {
    case "error":
      return `${head}: error ${w.error}`;
    case "canceled":
      return `${head}: canceled${w.compactRevision ? ` (compacted at ${w.compactRevision})` : ""}`;
    case "created":
      return `${head}: created${w.startRevision ? ` from revision ${w.startRevision}` : ""}`;
    case "progress":
      return `${head}: progress notification`;
    default:
      return `${head}: ${w.events.map((e) => `${e.type} ${e.kv.key}@${e.kv.modRevision}`).join(", ")}`;
  }
}

function violationTime(v: Violation, ops: ReadonlyMap<number, Operation>): number | null {
  if (v.atUs !== undefined) return v.atUs;
  const times = (v.operations ?? [])
    .map((id) => ops.get(id)?.callUs)
    .filter((t): t is number => t !== undefined);
  return times.length ? Math.max(...times) : null;
}

function describeOp(o: Operation): string {
  return `client ${o.client}${o.member ? ` via ${o.member}` : ""}, called at ${secs(o.callUs)}${o.returnUs === null ? " (never answered)" : `, answered at ${secs(o.returnUs)}`}: ${describeRequest(o.request)} -> ${describeResponse(o)}`;
}

/**
 * A violation in plain words: the property, the operations involved with their clients,
 * members, revisions and times, the faults active around it, and what happened to the
 * members just before (crashes, restarts, snapshots, failpoints).
 */
export function explainViolation(r: RunResult, v: Violation): string[] {
  const ops = new Map(r.artifacts.history.operations.map((o) => [o.id, o]));
  const lines = [`${v.checker}: ${v.message.split("\n")[0]}`];
  const involved = (v.operations ?? []).map((id) => ops.get(id)).filter((o): o is Operation => !!o);
  if (involved.length > 0) {
    lines.push("operations involved:");
    for (const o of involved.slice(0, 6)) lines.push(`  ${describeOp(o)}`);
    if (involved.length > 6) lines.push(`  (and ${involved.length - 6} more)`);
  }
  const at = violationTime(v, ops);
  if (at === null) return lines;
  const active = r.faultWindows.filter(
    (w) => w.fromUs <= at && at <= (w.toUs ?? r.artifacts.endUs) + 1_000_000,
  );
  if (active.length > 0) {
    lines.push(`faults active around ${secs(at)}:`);
    for (const w of active.slice(0, 6)) lines.push(`  ${describeWindow(w)}`);
  }
  const recent = r.sim.marks.filter(
    (m) =>
      m.atUs <= at &&
      m.atUs >= at - 5_000_000 &&
      (m.kind === "crash" ||
        m.kind === "snapshot" ||
        m.kind === "failpoint" ||
        (m.kind === "boot" && m.text !== "started")),
  );
  if (recent.length > 0) {
    lines.push("what the nodes went through just before:");
    for (const m of recent.slice(-8))
      lines.push(`  ${secs(m.atUs)} ${m.node} ${describeMark(m.kind, m.text)}`);
  }
  return lines;
}

function describeMark(kind: MarkKind, text: string): string {
  switch (kind) {
    case "failpoint":
      return `reached failpoint ${text}`;
    case "crash":
      return `crashed (${text})`;
    default:
      return text;
  }
}

function describeWindow(w: FaultWindow): string {
  const planned = describeFault(w.fault).replace(/^\S+ /, "");
  return `${secs(w.fromUs)}..${w.toUs === null ? "heal" : secs(w.toUs)} ${planned}`;
}

/** Everything the page draws, from a finished run. */
export function buildReport(r: RunResult, summary: string): ReportData {
  const history = r.artifacts.history;
  const lin = r.validation.linearizability;
  const placed = placeOrder(history.operations, lin.order);
  const badOps = new Set<number>(lin.stuck);
  const badWatches = new Set<number>();
  const badTimes = new Set<string>();
  for (const v of r.validation.violations) {
    for (const id of v.operations ?? []) badOps.add(id);
    for (const id of v.watches ?? []) {
      badWatches.add(id);
      if (v.atUs !== undefined) badTimes.add(`${id}@${v.atUs}`);
    }
  }
  const opsById = new Map(history.operations.map((o) => [o.id, o]));
  return {
    seed: r.scenario.seed,
    profile: r.scenario.profile,
    bugs: r.scenario.bugs,
    verdict: r.validation.verdict,
    traceHash: r.traceHash,
    endUs: r.artifacts.endUs,
    summary,
    violations: r.validation.violations.map((v) => ({
      checker: v.checker,
      message: v.message,
      atUs: violationTime(v, opsById),
      operations: v.operations ?? [],
      watches: v.watches ?? [],
      members: v.members ?? [],
      explanation: explainViolation(r, v),
    })),
    members: memberTimelines(r),
    faults: r.faultWindows.map((w) => ({
      kind: w.fault.kind,
      nodes: faultNodes(w.fault),
      fromUs: w.fromUs,
      toUs: w.toUs ?? r.artifacts.endUs,
      text: describeWindow(w),
    })),
    ops: history.operations
      .filter((o) => o.client >= 0)
      .map((o) => {
        const p = placed.get(o.id);
        return {
          id: o.id,
          client: o.client,
          member: o.member ?? null,
          callUs: o.callUs,
          returnUs: o.returnUs,
          request: describeRequest(o.request),
          response: describeResponse(o),
          status: opStatus(o),
          linUs: p?.linUs ?? null,
          before: p?.before ?? null,
          after: p?.after ?? null,
          bad: badOps.has(o.id),
        };
      }),
    watches: history.watches.map((w) => ({
      id: w.id,
      client: w.client,
      callUs: w.callUs,
      request: `watch ${w.request.key}${w.request.rangeEnd ? `..${w.request.rangeEnd === "\0" ? "" : w.request.rangeEnd}` : ""}${w.request.startRevision ? ` from revision ${w.request.startRevision}` : ""}${w.request.prevKv ? " prev_kv" : ""}${w.request.filters?.length ? ` filters ${w.request.filters.join(",")}` : ""}`,
      responses: w.responses.map((x) => ({
        atUs: x.atUs,
        member: x.member ?? null,
        kind: watchKind(x),
        revision: x.revision,
        text: describeWatchResponse(x),
        bad: badTimes.has(`${w.id}@${x.atUs}`),
      })),
      bad: badWatches.has(w.id),
    })),
  };
}

/** The command that reproduces a scenario. */
export function reproduce(sc: Scenario, file: string | null): string {
  if (file) return `etcd-dst replay ${file}`;
  const bugs = sc.bugs.map((b) => ` --bug ${b}`).join("");
  return `etcd-dst run --seed ${sc.seed} --profile ${sc.profile}${sc.case ? ` --case ${sc.case}` : ""}${bugs}`;
}

/** A short account for people: which property, what, which faults were active, how to replay. */
export function humanSummary(r: RunResult, file: string | null): string {
  const v = r.validation;
  const s = r.stats;
  const lines = [
    `seed ${r.scenario.seed} (${r.scenario.profile}${r.scenario.bugs.length ? `, bugs: ${r.scenario.bugs.join(", ")}` : ""}): ${v.verdict}`,
    `  ${s.ops} operations, ${s.faults} faults, ${s.leaderChanges} leader changes, ${(s.unavailableMs / 1000).toFixed(1)}s without writes, ${(s.virtualMs / 1000).toFixed(1)}s virtual in ${s.wallMs}ms`,
  ];
  if (s.backup) {
    const b = s.backup;
    lines.push(
      `  backup: ${b.uploads} uploads, ${b.validations} data-dir validations (${(b.validationMs / 1000).toFixed(2)}s), ${b.restores} restores, ${b.lostWrites} acknowledged writes lost after the last backup${b.lossWindowMs ? ` (acknowledged ${(b.lossWindowMs[0] / 1000).toFixed(3)}s..${(b.lossWindowMs[1] / 1000).toFixed(3)}s)` : ""}`,
    );
  }
  if (s.restore) {
    const x = s.restore;
    lines.push(
      `  restored from a snapshot ${x.restores === 1 ? "once" : `${x.restores} times`} (revision ${x.revisions.join(", ")}): ${x.lostWrites} acknowledged writes after it lost by design${x.lossWindowMs ? ` (acknowledged ${(x.lossWindowMs[0] / 1000).toFixed(3)}s..${(x.lossWindowMs[1] / 1000).toFixed(3)}s)` : ""}`,
    );
  }
  if (v.verdict === "unknown") lines.push("  the linearizability check ran out of budget before deciding");
  const shown = new Set<string>();
  for (const x of v.violations) {
    if (shown.has(x.checker)) continue;
    shown.add(x.checker);
    lines.push(...explainViolation(r, x).map((l) => `  ${l}`));
  }
  if (v.violations.length > shown.size)
    lines.push(`  (${v.violations.length - shown.size} more violations of the same checkers)`);
  if (v.verdict !== "ok") lines.push(`  reproduce: ${reproduce(r.scenario, file)}`);
  return lines.join("\n");
}
