// Fault schedules: plain data (JSON), so that a scenario file can be read, edited and
// shrunk. Every fault is a window [atUs, atUs + durationUs): it starts, and it ends
// (a crashed node restarts, a partition heals, a pause resumes...). The executor turns
// a schedule into simulator events, recomputing the combined effect whenever a window
// opens or closes, so overlapping faults compose instead of undoing each other.
import {
  DEFAULT_LINK,
  type DiskCrashMode,
  type LinkConfig,
  partitionLinks,
  type Random,
  type Simulator,
} from "../sim/index.js";

interface Window {
  readonly atUs: number;
  readonly durationUs: number;
}

export type Fault = Window &
  (
    | { readonly kind: "crash"; readonly node: string; readonly mode: DiskCrashMode }
    | {
        readonly kind: "partition";
        readonly groups: readonly (readonly string[])[];
        readonly oneWay: boolean;
      }
    | { readonly kind: "pause"; readonly node: string }
    | { readonly kind: "clock-drift"; readonly node: string; readonly ppm: number }
    | { readonly kind: "wall-jump"; readonly node: string; readonly deltaUs: number }
    | {
        readonly kind: "link";
        readonly from: string;
        readonly to: string;
        readonly lossRate: number;
        readonly duplicateRate: number;
        readonly extraDelayUs: number;
      }
    | { readonly kind: "clog"; readonly from: string; readonly to: string }
    | { readonly kind: "slow-disk"; readonly node: string; readonly extraUs: number }
    | { readonly kind: "disk-eio"; readonly node: string; readonly read: boolean; readonly write: boolean }
    | { readonly kind: "disk-full"; readonly node: string }
    | { readonly kind: "fsync-lies"; readonly node: string }
    | {
        readonly kind: "failpoint";
        readonly node: string;
        readonly name: string;
        /** crash: the node dies at the failpoint and restarts at the window's end. */
        readonly action: "crash" | "stall";
        readonly mode: DiskCrashMode;
        readonly stallUs: number;
      }
  );

export type FaultKind = Fault["kind"];

/** Faults outside etcd's assumptions: only the backup profile injects them by default. */
export const OUTSIDE_ASSUMPTIONS: ReadonlySet<FaultKind> = new Set<FaultKind>(["fsync-lies"]);

/** What the executor needs beyond the kernel: node names, and hooks for model-level faults. */
export interface FaultTarget {
  readonly sim: Simulator;
  /** Simulator index of a node name, or -1 when it does not exist (a shrunk cluster). */
  index(name: string): number;
  /** The nodes partitions and links apply to (cluster members; clients are left alone). */
  readonly members: readonly string[];
  /** Called when a node is restarted by a fault's end, after it boots. */
  onRestart?(name: string): void;
}

/** One line describing a fault, for schedules printed to people. */
export function describeFault(f: Fault): string {
  const at = `${(f.atUs / 1e6).toFixed(3)}s`;
  const dur = `${(f.durationUs / 1e6).toFixed(3)}s`;
  switch (f.kind) {
    case "crash":
      return `${at} crash ${f.node} (${f.mode === "keep" ? "process only" : `${f.mode} unsynced writes`}), restart after ${dur}`;
    case "partition":
      return `${at} partition ${f.groups.map((g) => `{${g.join(",")}}`).join(f.oneWay ? " -> " : " | ")} for ${dur}`;
    case "pause":
      return `${at} pause ${f.node} for ${dur}`;
    case "clock-drift":
      return `${at} ${f.node}'s clock drifts ${f.ppm > 0 ? "+" : ""}${f.ppm} ppm for ${dur}`;
    case "wall-jump":
      return `${at} ${f.node}'s wall clock jumps ${(f.deltaUs / 1e6).toFixed(3)}s`;
    case "link":
      return `${at} link ${f.from}->${f.to}: loss ${f.lossRate}, duplicates ${f.duplicateRate}, +${f.extraDelayUs / 1000}ms for ${dur}`;
    case "clog":
      return `${at} clog ${f.from}->${f.to} for ${dur}`;
    case "slow-disk":
      return `${at} ${f.node}'s fsyncs take +${f.extraUs / 1000}ms for ${dur}`;
    case "disk-eio":
      return `${at} ${f.node}'s disk fails ${[f.read ? "reads" : "", f.write ? "writes" : ""].filter(Boolean).join(" and ")} (EIO) for ${dur}`;
    case "disk-full":
      return `${at} ${f.node}'s disk is full for ${dur}`;
    case "fsync-lies":
      return `${at} ${f.node}'s fsync lies for ${dur}`;
    case "failpoint":
      return f.action === "crash"
        ? `${at} arm failpoint ${f.name} on ${f.node} to crash (${f.mode}), restart by ${dur}`
        : `${at} arm failpoint ${f.name} on ${f.node} to stall ${(f.stallUs / 1e6).toFixed(3)}s`;
  }
}

/** Schedules every fault of `faults` on the simulator. */
export function scheduleFaults(target: FaultTarget, faults: readonly Fault[]): void {
  const active = new Set<Fault>();
  const sim = target.sim;
  const idx = (name: string) => target.index(name);
  const members = () => target.members.map(idx).filter((i) => i >= 0);

  const recomputeNetwork = () => {
    const nodes = members();
    sim.network.heal(nodes);
    for (const a of nodes) for (const b of nodes) if (a !== b) sim.network.configure(a, b, DEFAULT_LINK);
    for (const f of active) {
      if (f.kind === "partition") {
        const groups = f.groups.map((g) => g.map(idx).filter((i) => i >= 0));
        for (const [a, b] of partitionLinks(groups, f.oneWay)) sim.network.setBlocked(a, b, true);
      } else if (f.kind === "link") {
        const a = idx(f.from);
        const b = idx(f.to);
        if (a >= 0 && b >= 0) {
          const c: Partial<LinkConfig> = {
            lossRate: f.lossRate,
            duplicateRate: f.duplicateRate,
            extraDelayUs: f.extraDelayUs,
          };
          sim.network.configure(a, b, c);
        }
      }
    }
  };

  const recomputeNode = (name: string) => {
    const i = idx(name);
    if (i < 0) return;
    const disk = sim.disk(i).faults;
    disk.fsyncExtraUs = 0;
    disk.readEioPrefix = null;
    disk.writeEioPrefix = null;
    disk.capacityBytes = Number.POSITIVE_INFINITY;
    disk.fsyncLies = false;
    let ppm = 0;
    for (const f of active) {
      if (!("node" in f) || f.node !== name) continue;
      if (f.kind === "slow-disk") disk.fsyncExtraUs = Math.max(disk.fsyncExtraUs, f.extraUs);
      else if (f.kind === "disk-eio") {
        if (f.read) disk.readEioPrefix = "";
        if (f.write) disk.writeEioPrefix = "";
      } else if (f.kind === "disk-full") disk.capacityBytes = sim.disk(i).used;
      else if (f.kind === "fsync-lies") disk.fsyncLies = true;
      else if (f.kind === "clock-drift") ppm = f.ppm;
    }
    if (sim.clock(i).driftPpm !== ppm) sim.clock(i).setDriftPpm(sim.nowUs, ppm);
  };

  const restart = (name: string) => {
    const i = idx(name);
    if (i < 0 || sim.isUp(i)) return;
    sim.restart(i);
    target.onRestart?.(name);
  };

  for (const f of faults) {
    const endUs = f.atUs + f.durationUs;
    const label = `fault.${f.kind}`;
    sim.at(f.atUs, label, () => {
      active.add(f);
      switch (f.kind) {
        case "crash":
          if (idx(f.node) >= 0) sim.crash(idx(f.node), f.mode);
          break;
        case "pause":
          if (idx(f.node) >= 0) sim.pause(idx(f.node));
          break;
        case "wall-jump":
          if (idx(f.node) >= 0) sim.clock(idx(f.node)).jumpWallUs(f.deltaUs);
          break;
        case "clog":
          if (idx(f.from) >= 0 && idx(f.to) >= 0) sim.network.clog(idx(f.from), idx(f.to));
          break;
        case "partition":
        case "link":
          recomputeNetwork();
          break;
        case "failpoint":
          if (idx(f.node) >= 0) {
            sim.armFailpoint(
              idx(f.node),
              f.name,
              f.action === "crash" ? { kind: "crash", mode: f.mode } : { kind: "stall", stallUs: f.stallUs },
            );
          }
          break;
        default:
          recomputeNode(f.node);
      }
    });
    sim.at(endUs, `${label}.end`, () => {
      active.delete(f);
      switch (f.kind) {
        case "crash":
          restart(f.node);
          break;
        case "pause":
          if (idx(f.node) >= 0) sim.resume(idx(f.node));
          break;
        case "wall-jump":
          break;
        case "clog":
          if (idx(f.from) >= 0 && idx(f.to) >= 0) sim.network.unclog(idx(f.from), idx(f.to));
          break;
        case "partition":
        case "link":
          recomputeNetwork();
          break;
        case "failpoint":
          if (idx(f.node) >= 0) sim.disarmFailpoint(idx(f.node), f.name);
          restart(f.node);
          break;
        case "disk-eio":
        case "disk-full":
          // etcd exits on an I/O error; its supervisor restarts it once the disk is back
          recomputeNode(f.node);
          restart(f.node);
          break;
        default:
          recomputeNode(f.node);
      }
    });
  }
}

/**
 * The heal phase: whatever is still broken is mended, so that liveness can be judged.
 * Every down member restarts, paused ones resume, links and disks go back to normal.
 */
export function healAll(target: FaultTarget): void {
  const sim = target.sim;
  const nodes = target.members.map((n) => target.index(n)).filter((i) => i >= 0);
  sim.network.heal(nodes);
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      sim.network.configure(a, b, DEFAULT_LINK);
      sim.network.unclog(a, b);
    }
  }
  for (const name of target.members) {
    const i = target.index(name);
    if (i < 0) continue;
    for (let k = 0; k < 8 && sim.isPaused(i); k++) sim.resume(i);
    const d = sim.disk(i).faults;
    d.fsyncExtraUs = 0;
    d.readEioPrefix = null;
    d.writeEioPrefix = null;
    d.capacityBytes = Number.POSITIVE_INFINITY;
    d.fsyncLies = false;
    if (sim.clock(i).driftPpm !== 0) sim.clock(i).setDriftPpm(sim.nowUs, 0);
    if (!sim.isUp(i)) {
      sim.restart(i);
      target.onRestart?.(name);
    }
  }
}

/** How often and how hard each kind of fault strikes in one run (swarm testing). */
export type FaultMix = Partial<Record<FaultKind, number>>;

export interface KernelFaultOptions {
  readonly members: readonly string[];
  readonly startUs: number;
  readonly endUs: number;
  /** Relative weights of fault kinds; kinds absent or at 0 never happen. */
  readonly mix: FaultMix;
  /** Mean gap between faults. */
  readonly meanGapUs: number;
  /** Crash modes to draw from. */
  readonly crashModes: readonly DiskCrashMode[];
  /** Failpoint names that may be armed. */
  readonly failpoints?: readonly string[];
  /** At most this many members down at once (crashes), so a quorum can survive. */
  readonly maxDown: number;
}

/**
 * Draws a fault schedule: fault kinds by weight, each window inside [startUs, endUs).
 * Uses only `rng`, so the schedule depends on nothing but the stream it is given.
 */
export function generateFaults(rng: Random, o: KernelFaultOptions): Fault[] {
  const kinds = (Object.entries(o.mix) as [FaultKind, number][]).filter(([, w]) => w > 0);
  const total = kinds.reduce((s, [, w]) => s + w, 0);
  const faults: Fault[] = [];
  if (total === 0 || o.members.length === 0) return faults;
  const downUntil = new Map<string, number>();
  for (
    let t = o.startUs + Math.round(rng.exponential(o.meanGapUs));
    t < o.endUs;
    t += 1 + Math.round(rng.exponential(o.meanGapUs))
  ) {
    let pick = rng.float(0, total);
    let kind = (kinds[0] as [FaultKind, number])[0];
    for (const [k, w] of kinds) {
      if (pick < w) {
        kind = k;
        break;
      }
      pick -= w;
    }
    const node = rng.pick(o.members);
    const maxLen = Math.max(1, o.endUs - t);
    const durationUs = Math.min(maxLen, rng.int(50_000, 3_000_000));
    const other = rng.pick(
      o.members.filter((m) => m !== node).length > 0 ? o.members.filter((m) => m !== node) : o.members,
    );
    const f = drawFault(rng, kind, t, durationUs, node, other, o);
    if (!f) continue;
    if (f.kind === "crash" || (f.kind === "failpoint" && f.action === "crash")) {
      // keep a quorum alive: skip a crash that would take too many members down at once
      let down = 0;
      for (const [n, until] of downUntil) if (until > t && n !== node) down++;
      if (down >= o.maxDown) continue;
      downUntil.set(node, Math.max(downUntil.get(node) ?? 0, t + durationUs));
    }
    faults.push(f);
  }
  return faults;
}

function drawFault(
  rng: Random,
  kind: FaultKind,
  atUs: number,
  durationUs: number,
  node: string,
  other: string,
  o: KernelFaultOptions,
): Fault | null {
  switch (kind) {
    case "crash":
      return { kind, atUs, durationUs, node, mode: rng.pick(o.crashModes) };
    case "partition": {
      const shuffled = rng.shuffle([...o.members]);
      const shape = rng.int(0, 4);
      let groups: string[][];
      if (shape === 0 || o.members.length < 3) {
        groups = [[node], o.members.filter((m) => m !== node)]; // isolate one
      } else if (shape === 1) {
        const cut = Math.floor(o.members.length / 2); // minority | majority
        groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
      } else if (shape === 2) {
        // a bridge: one node sees both halves
        const cut = Math.floor(o.members.length / 2);
        const bridge = shuffled[cut] as string;
        groups = [shuffled.slice(0, cut + 1), [bridge, ...shuffled.slice(cut + 1)]];
      } else {
        const cut = rng.int(1, o.members.length);
        groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
      }
      return { kind, atUs, durationUs, groups, oneWay: shape === 3 && rng.chance(0.5) };
    }
    case "pause":
      return { kind, atUs, durationUs, node };
    case "clock-drift":
      return { kind, atUs, durationUs, node, ppm: rng.int(-300_000, 300_001) };
    case "wall-jump":
      return { kind, atUs, durationUs: 0, node, deltaUs: rng.int(-60_000_000, 60_000_001) };
    case "link":
      return {
        kind,
        atUs,
        durationUs,
        from: node,
        to: other,
        lossRate: rng.chance(0.5) ? rng.float(0, 0.5) : 0,
        duplicateRate: rng.chance(0.5) ? rng.float(0, 0.3) : 0,
        extraDelayUs: rng.chance(0.5) ? rng.int(0, 200_000) : 0,
      };
    case "clog":
      return { kind, atUs, durationUs, from: node, to: other };
    case "slow-disk":
      return { kind, atUs, durationUs, node, extraUs: rng.int(5_000, 1_500_000) };
    case "disk-eio":
      return { kind, atUs, durationUs, node, read: rng.chance(0.3), write: true };
    case "disk-full":
      return { kind, atUs, durationUs, node };
    case "fsync-lies":
      return { kind, atUs, durationUs, node };
    case "failpoint": {
      const names = o.failpoints ?? [];
      if (names.length === 0) return null;
      const crash = rng.chance(0.7);
      return {
        kind,
        atUs,
        durationUs,
        node,
        name: rng.pick(names),
        action: crash ? "crash" : "stall",
        mode: rng.pick(o.crashModes),
        stallUs: crash ? 0 : rng.int(100_000, 2_000_000),
      };
    }
  }
}
