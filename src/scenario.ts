// A scenario: everything a run needs, as plain versioned JSON. A seed becomes one (see
// profiles.ts); a file holds one; the shrinker edits one. The same scenario runs the same
// way every time: all randomness comes from streams forked from `seed` by name.
import { BUG_NAMES } from "../models/bugs.js";
import { FAULT_KINDS, type Fault, type FaultKind } from "./faults.js";

export const SCENARIO_FORMAT = "etcd-dst-scenario";
export const SCENARIO_VERSION = 1;

/** The etcd configuration of a run (etcd's flags, in the units their names carry). */
export interface ClusterPlan {
  readonly members: number;
  /** --heartbeat-interval. */
  readonly tickUs: number;
  /** --election-timeout in ticks. */
  readonly electionTicks: number;
  readonly snapshotCount: number;
  readonly snapshotCatchUpEntries: number;
  readonly compactionBatchLimit: number;
  readonly backendBatchIntervalUs: number;
  readonly progressNotifyIntervalUs: number;
  /** 0: lease checkpoints off. */
  readonly leaseCheckpointIntervalUs: number;
  readonly walSegmentBytes: number;
  /** Members run next to etcd-backup-restore's sidecar, with a backup store (the backup profile). */
  readonly backup?: { readonly snapshotPeriodUs: number; readonly deltasPerFull: number };
}

export type ClientKind = "etcd" | "kubernetes" | "watch" | "lease" | "lock" | "election";

export interface ClientPlan {
  readonly name: string;
  readonly kind: ClientKind;
  /** Member names it may talk to; empty: every member. */
  readonly endpoints: readonly string[];
  readonly startUs: number;
  readonly stopUs: number;
  /** Mean pause between its operations. */
  readonly thinkUs: number;
  /** At most this many operations (the shrinker lowers it); absent: no limit. */
  readonly maxOps?: number;
  readonly requestTimeoutUs: number;
  /** Keys (etcd), objects (kubernetes), watches (watch) or leases (lease) it works with. */
  readonly keys: number;
  /** A variant of the kind's mix (`CLIENT_MIXES`); absent: the kind's default traffic. */
  readonly mix?: string;
  /**
   * An etcd client that never compacts: compaction comes from the operator's triggers
   * only (robustness's compaction failpoints run without compaction traffic).
   */
  readonly noCompaction?: boolean;
}

/**
 * The variants of each kind's traffic. etcd: "create-delete" puts and deletes on its few
 * keys; "unique-create-delete" is robustness's KubernetesCreateDelete (objects with
 * unique names, created then deleted, never updated). watch: "short-lived" is
 * robustness's watch traffic (a watch from around the current revision, closed after
 * 500 ms, again and again).
 */
export const CLIENT_MIXES: Readonly<Partial<Record<ClientKind, readonly string[]>>> = {
  etcd: ["create-delete", "unique-create-delete"],
  watch: ["short-lived"],
};

export interface Timeline {
  /** When the faults are healed (whatever is still broken is mended). */
  readonly healUs: number;
  /** When clients stop starting operations. */
  readonly trafficEndUs: number;
  /** How long after the heal a write and a read must succeed. */
  readonly livenessBoundUs: number;
}

export interface Expectation {
  readonly verdict: "ok" | "violation" | "unknown";
  /** Checker ids that must fail (for "violation"), sorted. */
  readonly checkers?: readonly string[];
}

export interface Scenario {
  readonly format: typeof SCENARIO_FORMAT;
  readonly version: typeof SCENARIO_VERSION;
  /** The generator seed; also the string seed of every random stream of the run. */
  readonly seed: number;
  readonly profile: string;
  readonly case?: string;
  readonly bugs: readonly string[];
  readonly cluster: ClusterPlan;
  readonly clients: readonly ClientPlan[];
  readonly faults: readonly Fault[];
  readonly timeline: Timeline;
  /** For corpus files in seeds/: what replaying it must give. */
  readonly expect?: Expectation;
  /** Free text: why the file is kept, what it shows. */
  readonly note?: string;
}

/** A scenario file that is not one: the reason, for a one-line error (exit 2). */
export class ScenarioError extends Error {}

function need(cond: boolean, what: string): void {
  if (!cond) throw new ScenarioError(what);
}

const isInt = (x: unknown, min = 0): x is number =>
  typeof x === "number" && Number.isSafeInteger(x) && x >= min;

/** Parses and checks a scenario document; throws ScenarioError naming what is wrong. */
export function parseScenario(text: string): Scenario {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError(`not JSON: ${(e as Error).message}`);
  }
  return checkScenario(doc);
}

export function checkScenario(doc: unknown): Scenario {
  const d = doc as Record<string, unknown>;
  need(typeof d === "object" && d !== null && !Array.isArray(d), "a scenario is a JSON object");
  need(d.format === SCENARIO_FORMAT, `"format" must be "${SCENARIO_FORMAT}"`);
  need(d.version === SCENARIO_VERSION, `unsupported scenario version ${String(d.version)}`);
  need(isInt(d.seed), `"seed" must be an integer from 0 to 2^53-1`);
  need(typeof d.profile === "string", `"profile" must be a string`);
  need(d.case === undefined || typeof d.case === "string", `"case" must be a string`);
  need(
    Array.isArray(d.bugs) && d.bugs.every((b) => typeof b === "string"),
    `"bugs" must be an array of names`,
  );
  for (const b of d.bugs as string[])
    need(BUG_NAMES.includes(b), `unknown bug '${b}' (known: ${BUG_NAMES.join(", ")})`);
  const c = d.cluster as Record<string, unknown>;
  need(typeof c === "object" && c !== null, `"cluster" must be an object`);
  need(c.members === 1 || c.members === 3 || c.members === 5, `"cluster.members" must be 1, 3 or 5`);
  for (const k of [
    "tickUs",
    "electionTicks",
    "snapshotCount",
    "snapshotCatchUpEntries",
    "compactionBatchLimit",
    "backendBatchIntervalUs",
    "progressNotifyIntervalUs",
    "walSegmentBytes",
  ])
    need(isInt(c[k], 1), `"cluster.${k}" must be a positive integer`);
  need(isInt(c.leaseCheckpointIntervalUs), `"cluster.leaseCheckpointIntervalUs" must be an integer >= 0`);
  if (c.backup !== undefined) {
    const b = c.backup as Record<string, unknown>;
    need(
      typeof b === "object" && b !== null && isInt(b.snapshotPeriodUs, 1) && isInt(b.deltasPerFull),
      `"cluster.backup" must be {"snapshotPeriodUs": positive integer, "deltasPerFull": integer >= 0}`,
    );
  }
  need(Array.isArray(d.clients), `"clients" must be an array`);
  const members = Array.from({ length: c.members as number }, (_, i) => `m${i + 1}`);
  const names = new Set<string>();
  (d.clients as unknown[]).forEach((x, i) => {
    const p = x as Record<string, unknown>;
    const at = `clients[${i}]`;
    need(typeof p === "object" && p !== null, `${at} must be an object`);
    need(typeof p.name === "string" && /^c\d+$/.test(p.name as string), `${at}.name must be like "c1"`);
    need(!names.has(p.name as string), `${at}.name ${String(p.name)} is used twice`);
    names.add(p.name as string);
    need(
      ["etcd", "kubernetes", "watch", "lease", "lock", "election"].includes(p.kind as string),
      `${at}.kind is unknown`,
    );
    need(
      Array.isArray(p.endpoints) && (p.endpoints as unknown[]).every((e) => members.includes(e as string)),
      `${at}.endpoints must name members of the cluster`,
    );
    for (const k of ["startUs", "stopUs", "thinkUs", "requestTimeoutUs", "keys"])
      need(isInt(p[k]), `${at}.${k} must be an integer >= 0`);
    need(p.maxOps === undefined || isInt(p.maxOps), `${at}.maxOps must be an integer >= 0`);
    need(
      p.noCompaction === undefined || typeof p.noCompaction === "boolean",
      `${at}.noCompaction must be a boolean`,
    );
    const mixes = CLIENT_MIXES[p.kind as ClientKind] ?? [];
    need(
      p.mix === undefined || mixes.includes(p.mix as string),
      `${at}.mix must be one of ${mixes.map((x) => `"${x}"`).join(", ") || "nothing"} for a ${String(p.kind)} client`,
    );
  });
  need(Array.isArray(d.faults), `"faults" must be an array`);
  (d.faults as unknown[]).forEach((x, i) => {
    const f = x as Record<string, unknown>;
    need(
      typeof f === "object" && f !== null && FAULT_KINDS.includes(f.kind as FaultKind),
      `faults[${i}].kind must be one of ${FAULT_KINDS.join(", ")}`,
    );
    need(isInt(f.atUs) && isInt(f.durationUs), `faults[${i}] needs integer atUs and durationUs`);
    checkFaultFields(f, `faults[${i}]`, [...members, ...names]);
  });
  const t = d.timeline as Record<string, unknown>;
  need(typeof t === "object" && t !== null, `"timeline" must be an object`);
  for (const k of ["healUs", "trafficEndUs", "livenessBoundUs"])
    need(isInt(t[k]), `"timeline.${k}" must be an integer >= 0`);
  if (d.expect !== undefined) {
    const e = d.expect as Record<string, unknown>;
    need(
      ["ok", "violation", "unknown"].includes(e.verdict as string),
      `"expect.verdict" must be ok, violation or unknown`,
    );
  }
  return doc as Scenario;
}

const CRASH_MODES = ["keep", "lose", "prefix", "torn"];

/** The fields a fault of its kind needs, with values the executor understands. */
function checkFaultFields(f: Record<string, unknown>, at: string, nodes: readonly string[]): void {
  const node = (k: string, roles: readonly string[] = ["@leader", "@follower"]) =>
    need(
      typeof f[k] === "string" && (nodes.includes(f[k] as string) || roles.includes(f[k] as string)),
      `${at}.${k} must name a member, a client or a role (${roles.join(", ")})`,
    );
  const num = (k: string) =>
    need(typeof f[k] === "number" && Number.isFinite(f[k]), `${at}.${k} must be a number`);
  const oneOf = (k: string, values: readonly string[]) =>
    need(values.includes(f[k] as string), `${at}.${k} must be one of ${values.join(", ")}`);
  switch (f.kind) {
    case "crash":
      node("node");
      oneOf("mode", CRASH_MODES);
      break;
    case "partition":
      need(
        Array.isArray(f.groups) &&
          f.groups.every(
            (g) =>
              Array.isArray(g) &&
              g.every((n) => nodes.includes(n) || n === "@leader" || n === "@follower" || n === "@rest"),
          ),
        `${at}.groups must be arrays of members, clients or roles (@leader, @follower, @rest)`,
      );
      need(typeof f.oneWay === "boolean", `${at}.oneWay must be true or false`);
      break;
    case "link":
      node("from");
      node("to");
      for (const k of ["lossRate", "duplicateRate", "extraDelayUs"]) num(k);
      break;
    case "clog":
      node("from");
      node("to");
      break;
    case "clock-drift":
      node("node");
      num("ppm");
      break;
    case "wall-jump":
      node("node");
      num("deltaUs");
      break;
    case "slow-disk":
      node("node");
      num("extraUs");
      break;
    case "failpoint":
      node("node");
      need(typeof f.name === "string" && f.name !== "", `${at}.name must name a failpoint`);
      oneOf("action", ["crash", "stall", "stall-crash"]);
      oneOf("mode", CRASH_MODES);
      need(isInt(f.stallUs), `${at}.stallUs must be an integer >= 0`);
      break;
    case "trigger":
      node("node");
      oneOf("action", ["compact", "defrag", "request-progress"]);
      break;
    case "corrupt":
      node("node", []);
      oneOf("file", ["db", "wal", "snap"]);
      need(
        typeof f.position === "number" && f.position >= 0 && f.position <= 1,
        `${at}.position must be from 0 to 1`,
      );
      need(isInt(f.lengthBytes, 1), `${at}.lengthBytes must be a positive integer`);
      break;
    case "stale-volume":
      node("node", []);
      need(isInt(f.ageUs), `${at}.ageUs must be an integer >= 0`);
      break;
    case "wrong-volume":
      node("node", []);
      node("other", []);
      break;
    default:
      node("node");
  }
}

/** A scenario as a file: stable key order, two-space indentation. */
export function scenarioToJson(s: Scenario): string {
  return `${JSON.stringify(s, null, 2)}\n`;
}
