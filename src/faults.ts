// Fault schedules: plain data (JSON), so that a scenario file can be read, edited and
// shrunk. Every fault is a window [atUs, atUs + durationUs): it starts, and it ends
// (a crashed node restarts, a partition heals, a pause resumes...). The executor turns
// a schedule into simulator events, recomputing the combined effect whenever a window
// opens or closes, so overlapping faults compose instead of undoing each other.
//
// A node may be named by role: `@leader` or `@follower` (and `@rest` in a partition
// group: every member not named in another group). Roles are resolved when the window
// opens, from the cluster's state then, so a replay resolves them the same way.
import {
  DEFAULT_LINK,
  type DiskCrashMode,
  type DiskImage,
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
    | {
        readonly kind: "crash";
        readonly node: string;
        readonly mode: DiskCrashMode;
        /** Stay down until the leader took a snapshot past this node (bounded by the window). */
        readonly untilSnapshot?: boolean;
      }
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
        /**
         * crash: the node dies at the failpoint and restarts at the window's end; stall: the
         * path waits `stallUs`; stall-crash: it waits, and dies the next time it passes there.
         */
        readonly action: FailpointMode;
        readonly mode: DiskCrashMode;
        readonly stallUs: number;
      }
    /** etcd's robustness MemberReplace: remove, wipe, add back under a new id. */
    | { readonly kind: "member-replace"; readonly node: string }
    /**
     * Disaster recovery (the functional tester's restore from scratch): `node`'s snapshot
     * is saved, a second later every member is killed and wiped, the snapshot is restored
     * as a new one-member cluster and the others join it one by one.
     */
    | { readonly kind: "restore-from-scratch"; readonly node: string }
    /** An operator action on a member: compact, defragment, or request watch progress. */
    | { readonly kind: "trigger"; readonly node: string; readonly action: TriggerAction }
    /** Cut the node off until the leader took a snapshot past it (bounded by the window). */
    | { readonly kind: "blackhole-until-snapshot"; readonly node: string }
    /** SIGTERM: a clean stop, a start at the window's end. */
    | { readonly kind: "stop"; readonly node: string }
    /**
     * The node dies, and while it is down bytes of one of its files flip (silent corruption
     * at rest): `lengthBytes` from `position` (0–1) of the db, the newest WAL segment or
     * the newest snapshot file. It starts at the window's end.
     */
    | {
        readonly kind: "corrupt";
        readonly node: string;
        readonly file: CorruptFile;
        readonly position: number;
        readonly lengthBytes: number;
      }
    /** The node dies and comes back on an old copy of its volume, taken `ageUs` earlier. */
    | { readonly kind: "stale-volume"; readonly node: string; readonly ageUs: number }
    /**
     * The node dies and comes back on another pod's volume (`other`'s, or a copy of its own
     * from another namespace when `other` is itself) until the window ends.
     */
    | { readonly kind: "wrong-volume"; readonly node: string; readonly other: string }
  );

export type CorruptFile = "db" | "wal" | "snap";

export type TriggerAction = "compact" | "defrag" | "request-progress";

export type FaultKind = Fault["kind"];

export const FAULT_KINDS: readonly FaultKind[] = [
  "crash",
  "partition",
  "pause",
  "clock-drift",
  "wall-jump",
  "link",
  "clog",
  "slow-disk",
  "disk-eio",
  "disk-full",
  "fsync-lies",
  "failpoint",
  "member-replace",
  "restore-from-scratch",
  "trigger",
  "blackhole-until-snapshot",
  "stop",
  "corrupt",
  "stale-volume",
  "wrong-volume",
];

/** Faults outside etcd's assumptions: only the backup profile injects them by default. */
export const OUTSIDE_ASSUMPTIONS: ReadonlySet<FaultKind> = new Set<FaultKind>([
  "fsync-lies",
  "corrupt",
  "stale-volume",
  "wrong-volume",
]);

/** What the executor needs beyond the kernel: node names, and hooks for model-level faults. */
export interface FaultTarget {
  readonly sim: Simulator;
  /** Simulator index of a node name, or -1 when it does not exist (a shrunk cluster). */
  index(name: string): number;
  /** The nodes partitions and links apply to (cluster members; clients are left alone). */
  readonly members: readonly string[];
  /** Called when a node is restarted by a fault's end, after it boots. */
  onRestart?(name: string): void;
  /** The cluster behind the nodes, for roles and etcd-level faults (absent: ignored). */
  readonly cluster?: ClusterHooks;
  /** Filled as the run goes: each fault window as it happened, roles resolved (for reports). */
  readonly windows?: FaultWindow[];
}

/** A fault window as it happened: its roles resolved, when it opened and closed. */
export interface FaultWindow {
  readonly fault: Fault;
  readonly fromUs: number;
  /** Null while open (at the end of the run: closed by the heal). */
  toUs: number | null;
}

export interface ClusterHooks {
  /** The member that leads now, if any. */
  leader(): string | null;
  /** The leader's newest raft snapshot index (0 when none or no leader). */
  leaderSnapshotIndex(): number;
  /** The last index a member applied (0 when down). */
  appliedIndex(name: string): number;
  replaceMember(name: string): void;
  /** Restores the cluster from `name`'s snapshot (see the `restore-from-scratch` fault). */
  restoreFromScratch(name: string): void;
  /** Whether a member replace is under way there (faults must not restart it then). */
  replacing(name: string): boolean;
  trigger(action: TriggerAction, name: string): void;
  /** SIGTERM to a member (a clean stop). */
  stop(name: string): void;
  /** Flips bytes of a down member's file (see the `corrupt` fault). */
  corruptAtRest(name: string, file: CorruptFile, position: number, lengthBytes: number): void;
  /** The volume a member gets by mistake: `other`'s, or its own copy from another namespace. */
  foreignVolume(name: string, other: string): DiskImage;
}

/** The nodes a fault acts on. */
export function faultNodes(f: Fault): string[] {
  switch (f.kind) {
    case "partition":
      return f.groups.flat();
    case "link":
    case "clog":
      return [f.from, f.to];
    case "wrong-volume":
      return f.other === f.node ? [f.node] : [f.node, f.other];
    default:
      return [f.node];
  }
}

/** One line describing a fault, for schedules printed to people. */
export function describeFault(f: Fault): string {
  const at = `${(f.atUs / 1e6).toFixed(3)}s`;
  const dur = `${(f.durationUs / 1e6).toFixed(3)}s`;
  switch (f.kind) {
    case "crash":
      return `${at} crash ${f.node} (${f.mode === "keep" ? "process only" : `${f.mode} unsynced writes`}), restart ${f.untilSnapshot ? `once the leader snapshots past it (at most ${dur})` : `after ${dur}`}`;
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
        : f.action === "stall"
          ? `${at} arm failpoint ${f.name} on ${f.node} to stall ${(f.stallUs / 1e6).toFixed(3)}s`
          : `${at} arm failpoint ${f.name} on ${f.node} to stall ${(f.stallUs / 1e6).toFixed(3)}s, then crash (${f.mode}) on the next pass, restart by ${dur}`;
    case "member-replace":
      return `${at} replace member ${f.node} (remove, wipe, add back as a new member)`;
    case "restore-from-scratch":
      return `${at} save ${f.node}'s snapshot; 1s later kill every member and remove its data; restore the snapshot as a new one-member cluster on ${f.node} and add the others back, 5 election timeouts apart`;
    case "trigger":
      return `${at} ${f.action} on ${f.node}`;
    case "blackhole-until-snapshot":
      return `${at} cut ${f.node} off until the leader snapshots past it (at most ${dur})`;
    case "stop":
      return `${at} stop ${f.node} cleanly (SIGTERM), start it after ${dur}`;
    case "corrupt":
      return `${at} kill ${f.node}; while down, ${f.lengthBytes} bytes of its ${f.file === "db" ? "db" : f.file === "wal" ? "newest WAL segment" : "newest snapshot"} at ${(f.position * 100).toFixed(0)}% flip; start it after ${dur}`;
    case "stale-volume":
      return `${at} kill ${f.node}; it comes back on its volume as it was ${(f.ageUs / 1e6).toFixed(3)}s earlier, after ${dur}`;
    case "wrong-volume":
      return `${at} kill ${f.node}; it comes back on ${f.other === f.node ? "a copy of its volume from another namespace" : `${f.other}'s volume`} until ${dur} later`;
  }
}

/** What an armed failpoint does when reached (gofail's panic, sleep, or sleep->panic). */
export type FailpointMode = "crash" | "stall" | "stall-crash";

/** Failpoints armed to stall only. */
const STALL_ONLY: ReadonlySet<string> = new Set(["beforeSendWatchResponse", "beforeSyncWatchers"]);

/** The operator action that makes a failpoint's code path run (robustness's triggers). */
export function failpointTrigger(name: string): TriggerAction | null {
  if (name.startsWith("defrag")) return "defrag";
  if (name.startsWith("compact")) return "compact";
  return null;
}

/** Resolves `@leader`, `@follower` and `@rest` against the cluster as it is now. */
function resolveRoles(target: FaultTarget, f: Fault): Fault {
  const hooks = target.cluster;
  const leader = hooks?.leader() ?? null;
  const node = (name: string): string => {
    if (name === "@leader") return leader ?? (target.members[0] as string);
    if (name === "@follower")
      return target.members.find((m) => m !== leader) ?? (target.members[0] as string);
    return name;
  };
  if (f.kind === "partition") {
    const named = f.groups.map((g) => g.filter((n) => n !== "@rest").map(node));
    const used = new Set(named.flat());
    const groups = f.groups.map((g, i) =>
      g.includes("@rest")
        ? [...(named[i] as string[]), ...target.members.filter((m) => !used.has(m))]
        : (named[i] as string[]),
    );
    return { ...f, groups };
  }
  if (f.kind === "link" || f.kind === "clog") return { ...f, from: node(f.from), to: node(f.to) };
  return { ...f, node: node(f.node) };
}

/**
 * Schedules every fault of `faults` on the simulator. Returns the heal: it mends
 * everything (healAll) and ends every window still open, so that nothing breaks again.
 */
export function scheduleFaults(target: FaultTarget, faults: readonly Fault[]): () => void {
  const active = new Set<Fault>();
  const opened = new Map<Fault, FaultWindow>();
  const close = (f: Fault) => {
    const w = opened.get(f);
    if (w) w.toUs = target.sim.nowUs;
    opened.delete(f);
  };
  let healed = false;
  const sim = target.sim;
  const hooks = target.cluster;
  const idx = (name: string) => target.index(name);
  const members = () => target.members.map(idx).filter((i) => i >= 0);

  const recomputeNetwork = () => {
    const nodes = members();
    sim.network.heal(nodes);
    for (const a of nodes) for (const b of nodes) if (a !== b) sim.network.configure(a, b, DEFAULT_LINK);
    for (const f of active) {
      if (f.kind === "partition" || f.kind === "blackhole-until-snapshot") {
        const groups =
          f.kind === "partition"
            ? f.groups.map((g) => g.map(idx).filter((i) => i >= 0))
            : [[idx(f.node)], target.members.filter((m) => m !== f.node).map(idx)];
        for (const [a, b] of partitionLinks(groups, f.kind === "partition" && f.oneWay))
          sim.network.setBlocked(a, b, true);
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
    sim.disk(i).clearFaults();
    const disk = sim.disk(i).faults;
    let ppm = 0;
    let slowUntil = 0;
    for (const f of active) {
      if (!("node" in f) || f.node !== name) continue;
      if (f.kind === "slow-disk") {
        disk.fsyncExtraUs = Math.max(disk.fsyncExtraUs, f.extraUs);
        slowUntil = Math.max(slowUntil, f.atUs + f.durationUs);
      } else if (f.kind === "disk-eio") {
        if (f.read) disk.readEioPrefix = "";
        if (f.write) disk.writeEioPrefix = "";
      } else if (f.kind === "disk-full") disk.capacityBytes = sim.disk(i).used;
      else if (f.kind === "fsync-lies") disk.fsyncLies = true;
      else if (f.kind === "clock-drift") ppm = f.ppm;
    }
    if (disk.fsyncExtraUs > 0) disk.fsyncExtraUntilUs = slowUntil;
    if (sim.clock(i).driftPpm !== ppm) sim.clock(i).setDriftPpm(sim.nowUs, ppm);
  };

  const restart = (name: string) => {
    const i = idx(name);
    if (i < 0 || sim.isUp(i) || hooks?.replacing(name)) return;
    sim.restart(i);
    target.onRestart?.(name);
  };

  /** The index a new leader snapshot must pass: the node's applied index, or the last snapshot. */
  const snapshotMark = (name: string) =>
    Math.max(hooks?.appliedIndex(name) ?? 0, hooks?.leaderSnapshotIndex() ?? 0);

  /** Calls `done` once the leader snapshotted past `index`, or at `untilUs`. */
  const whenSnapshotPast = (index: number, untilUs: number, label: string, done: () => void) => {
    const poll = () => {
      if (sim.nowUs >= untilUs || (hooks?.leaderSnapshotIndex() ?? Number.POSITIVE_INFINITY) > index) done();
      else sim.after(100_000, label, poll);
    };
    poll();
  };

  /** Volumes set aside: a stale-volume's old copy, a wrong-volume's right one. */
  const volumes = new Map<Fault, { node: string; image: DiskImage; mounted: boolean }>();
  const remount = (f: Fault) => {
    const v = volumes.get(f);
    volumes.delete(f);
    if (!v || idx(v.node) < 0) return;
    sim.crash(idx(v.node), "keep"); // a pod on the wrong volume may be validating it
    sim.disk(idx(v.node)).mount(v.image);
  };
  /**
   * Kills a member so that its volume can be touched: not one being replaced, nor one on
   * another pod's volume (volume faults on a member do not nest).
   */
  const takeDown = (name: string): boolean => {
    const i = idx(name);
    if (i < 0 || hooks?.replacing(name)) return false;
    for (const v of volumes.values()) if (v.node === name && v.mounted) return false;
    sim.crash(i, "keep");
    return true;
  };

  for (const planned of faults) {
    const endUs = planned.atUs + planned.durationUs;
    if (planned.kind === "stale-volume") {
      sim.at(Math.max(0, planned.atUs - planned.ageUs), "fault.stale-volume.copy", () => {
        const name = (resolveRoles(target, planned) as { node: string }).node;
        if (idx(name) < 0) return;
        // its own volume, also while another pod's is mounted in its place
        const own = [...volumes.values()].find((v) => v.node === name && v.mounted);
        volumes.set(planned, {
          node: name,
          image: own ? own.image : sim.disk(idx(name)).image(),
          mounted: false,
        });
      });
    }
    const label = `fault.${planned.kind}`;
    let f = planned; // the window's fault with its roles resolved
    const end = () => {
      if (healed || !active.has(f)) return;
      active.delete(f);
      close(f);
      switch (f.kind) {
        case "crash":
          restart(f.node);
          break;
        case "pause":
          if (idx(f.node) >= 0) sim.resume(idx(f.node));
          break;
        case "wall-jump":
        case "member-replace":
        case "restore-from-scratch":
        case "trigger":
          break;
        case "clog":
          if (idx(f.from) >= 0 && idx(f.to) >= 0) sim.network.unclog(idx(f.from), idx(f.to));
          break;
        case "partition":
        case "link":
        case "blackhole-until-snapshot":
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
        case "wrong-volume":
          remount(f);
          restart(f.node);
          break;
        case "stop":
        case "corrupt":
        case "stale-volume":
          restart(f.node);
          break;
        default:
          recomputeNode(f.node);
      }
    };
    sim.at(planned.atUs, label, () => {
      if (healed) return;
      f = resolveRoles(target, planned);
      active.add(f);
      if (target.windows) {
        const w: FaultWindow = { fault: f, fromUs: sim.nowUs, toUs: null };
        target.windows.push(w);
        opened.set(f, w);
      }
      let untilSnapshot = false;
      switch (f.kind) {
        case "crash":
          if (idx(f.node) >= 0) {
            untilSnapshot = f.untilSnapshot === true;
            const past = snapshotMark(f.node);
            sim.crash(idx(f.node), f.mode);
            if (untilSnapshot) whenSnapshotPast(past, endUs, `${label}.until-snapshot`, end);
          }
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
        case "blackhole-until-snapshot": {
          untilSnapshot = true;
          recomputeNetwork();
          whenSnapshotPast(snapshotMark(f.node), endUs, `${label}.until-snapshot`, end);
          break;
        }
        case "failpoint":
          if (idx(f.node) >= 0) {
            sim.armFailpoint(
              idx(f.node),
              f.name,
              f.action === "crash"
                ? { kind: "crash", mode: f.mode }
                : f.action === "stall"
                  ? { kind: "stall", stallUs: f.stallUs }
                  : { kind: "stall-crash", stallUs: f.stallUs, mode: f.mode },
            );
            // as etcd's robustness tests do: a failpoint on a path that runs on demand
            // comes with the request that runs it
            const trigger = failpointTrigger(f.name);
            if (trigger) hooks?.trigger(trigger, f.node);
          }
          break;
        case "member-replace":
          if (idx(f.node) >= 0 && !hooks?.replacing(f.node)) hooks?.replaceMember(f.node);
          break;
        case "restore-from-scratch":
          if (idx(f.node) >= 0 && sim.isUp(idx(f.node)) && !target.members.some((m) => hooks?.replacing(m)))
            hooks?.restoreFromScratch(f.node);
          break;
        case "trigger":
          if (idx(f.node) >= 0) hooks?.trigger(f.action, f.node);
          break;
        case "stop":
          if (idx(f.node) >= 0 && !hooks?.replacing(f.node)) {
            if (hooks) hooks.stop(f.node);
            else sim.crash(idx(f.node), "keep");
          }
          break;
        case "corrupt":
          // strikes a running member: the kill is the abnormal exit that makes the sidecar
          // validate in full. A cleanly stopped volume rotting at rest passes the sanity
          // mode in etcd-backup-restore too (docs/backup.md), so that is not drawn.
          if (idx(f.node) >= 0 && sim.isUp(idx(f.node)) && takeDown(f.node)) {
            hooks?.corruptAtRest(f.node, f.file, f.position, f.lengthBytes);
          }
          break;
        case "stale-volume": {
          const old = volumes.get(planned);
          volumes.delete(planned);
          if (takeDown(f.node)) sim.disk(idx(f.node)).mount(old?.node === f.node ? old.image : new Map());
          break;
        }
        case "wrong-volume":
          if (hooks && idx(f.other) >= 0 && takeDown(f.node)) {
            const disk = sim.disk(idx(f.node));
            volumes.set(f, { node: f.node, image: disk.image(), mounted: true });
            disk.mount(hooks.foreignVolume(f.node, f.other));
          }
          break;
        default:
          recomputeNode(f.node);
      }
      if (!untilSnapshot) sim.at(Math.max(endUs, sim.nowUs), `${label}.end`, end);
    });
  }
  return () => {
    healed = true;
    for (const f of active) close(f);
    // the operator mounts the right volume back
    for (const f of active) if (f.kind === "wrong-volume") remount(f);
    // paused clients are not members: healAll would not see them
    for (const f of active)
      if (f.kind === "pause" && idx(f.node) >= 0) while (sim.isPaused(idx(f.node))) sim.resume(idx(f.node));
    active.clear();
    for (const name of target.members)
      if (idx(name) >= 0)
        for (const f of faults) if (f.kind === "failpoint") sim.disarmFailpoint(idx(name), f.name);
    healAll(target);
  };
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
    while (sim.isPaused(i)) sim.resume(i);
    sim.disk(i).clearFaults();
    if (sim.clock(i).driftPpm !== 0) sim.clock(i).setDriftPpm(sim.nowUs, 0);
    if (!sim.isUp(i) && !target.cluster?.replacing(name)) {
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
  /** How often a node fault names a role (`@leader`) instead of a member (0: never). */
  readonly roles?: number;
  /** The longest fault window (3 s by default). */
  readonly maxDurationUs?: number;
  /** The most a slow disk adds to an fsync (1.5 s by default). */
  readonly maxSlowDiskUs?: number;
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
    // a quarter of node faults strike whoever leads when they start
    const node = (o.roles ?? 0) > 0 && rng.chance(o.roles ?? 0) ? "@leader" : rng.pick(o.members);
    const maxLen = Math.max(1, o.endUs - t);
    const durationUs = Math.min(maxLen, rng.int(50_000, o.maxDurationUs ?? 3_000_000));
    const concrete = node.startsWith("@") ? rng.pick(o.members) : node;
    const other = rng.pick(
      o.members.filter((m) => m !== concrete).length > 0
        ? o.members.filter((m) => m !== concrete)
        : o.members,
    );
    const f = drawFault(
      rng,
      kind,
      t,
      durationUs,
      kind === "link" || kind === "clog" ? concrete : node,
      other,
      o,
    );
    if (!f) continue;
    const takesDown =
      f.kind === "crash" ||
      f.kind === "member-replace" ||
      f.kind === "stop" ||
      f.kind === "corrupt" ||
      f.kind === "stale-volume" ||
      f.kind === "wrong-volume" ||
      (f.kind === "failpoint" && f.action !== "stall");
    if (takesDown) {
      // keep a quorum alive: skip a crash that would take too many members down at once
      // (a role names no member in advance: it counts against every other one)
      let down = 0;
      for (const [n, until] of downUntil) if (until > t && (n !== node || node.startsWith("@"))) down++;
      if (down >= o.maxDown) continue;
      // a replace (also the sidecar's, for a corrupt member) keeps it out for a while
      const upUs = t + (f.kind === "member-replace" || f.kind === "corrupt" ? 10_000_000 : f.durationUs);
      downUntil.set(node, Math.max(downUntil.get(node) ?? 0, upUs));
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
        groups = node.startsWith("@") ? [[node], ["@rest"]] : [[node], o.members.filter((m) => m !== node)]; // isolate one
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
    case "slow-disk": {
      // slow for at least one whole slow fsync
      const extraUs = rng.int(5_000, o.maxSlowDiskUs ?? 1_500_000);
      return {
        kind,
        atUs,
        durationUs: Math.min(Math.max(1, o.endUs - atUs), Math.max(durationUs, extraUs)),
        node,
        extraUs,
      };
    }
    case "disk-eio":
      return { kind, atUs, durationUs, node, read: rng.chance(0.3), write: true };
    case "disk-full":
      return { kind, atUs, durationUs, node };
    case "fsync-lies":
      return { kind, atUs, durationUs, node };
    case "failpoint": {
      const names = o.failpoints ?? [];
      if (names.length === 0) return null;
      const name = rng.pick(names);
      // the watch send and sync loops are starved (robustness sleeps there), not crashed
      const draw = rng.next();
      const action: FailpointMode =
        STALL_ONLY.has(name) || draw >= 0.85 ? "stall" : draw < 0.6 ? "crash" : "stall-crash";
      const stallUs = action === "crash" ? 0 : rng.int(100_000, 2_000_000);
      return {
        kind,
        atUs,
        // a stall-crash's window outlasts the stall, or the crash would be disarmed first
        durationUs: action === "stall-crash" ? Math.max(durationUs, stallUs + 1_000_000) : durationUs,
        node,
        name,
        action,
        mode: rng.pick(o.crashModes),
        stallUs,
      };
    }
    case "member-replace":
      return { kind, atUs, durationUs: 0, node };
    case "trigger":
      return {
        kind,
        atUs,
        durationUs: 0,
        node,
        action: rng.pick(["compact", "defrag", "request-progress"] as const),
      };
    case "blackhole-until-snapshot":
      return {
        kind,
        atUs,
        durationUs: Math.min(
          Math.max(1, o.endUs - atUs),
          Math.max(durationUs, rng.int(3_000_000, 10_000_000)),
        ),
        node,
      };
    case "stop":
      return { kind, atUs, durationUs, node };
    case "corrupt":
      return {
        kind,
        atUs,
        durationUs,
        node: concreteOf(node, other),
        file: rng.pick(["db", "wal", "snap"] as const),
        position: rng.float(0, 1),
        lengthBytes: rng.int(1, 17),
      };
    case "stale-volume":
      return { kind, atUs, durationUs, node: concreteOf(node, other), ageUs: rng.int(500_000, 8_000_000) };
    case "wrong-volume":
      return { kind, atUs, durationUs, node: concreteOf(node, other), other };
    case "restore-from-scratch":
      // loses acknowledged writes by design: only `--case` schedules it
      return null;
  }
}

/** Faults on a volume name a member, not a role: its copy is taken before the role exists. */
function concreteOf(node: string, other: string): string {
  return node.startsWith("@") ? other : node;
}
