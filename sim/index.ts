// The deterministic simulation kernel: nothing here knows about Raft or etcd.
export { NodeClock, WALL_EPOCH_US } from "./clock.js";
export {
  DEFAULT_DISK_OPTIONS,
  Disk,
  type DiskCrashMode,
  DiskError,
  type DiskErrorCode,
  type DiskFaults,
  type DiskImage,
  type DiskOptions,
  slabBytes,
} from "./disk.js";
export { Monitor, type MonitorReport } from "./monitor.js";
export { DEFAULT_LINK, Delivery, type LinkConfig, Network, partitionLinks } from "./network.js";
export { EventQueue } from "./queue.js";
export { Random, type RandomState } from "./random.js";
export {
  type Divergence,
  describeRecord,
  firstDivergence,
  hashBytes,
  hashLabel,
  hashString,
  mix32,
  Trace,
  type TraceRecord,
} from "./trace.js";
export {
  EventKind,
  type FailpointAction,
  type MarkKind,
  NodeContext,
  NodeCrash,
  type NodeFactory,
  type NodeOptions,
  type NodeProgram,
  type SimStats,
  Simulator,
  type SimulatorOptions,
  type TimelineMark,
  type TimerHandle,
} from "./world.js";
