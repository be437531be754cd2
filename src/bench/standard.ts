// The standard scenario of `npm run bench` and `npm run bench:instructions`: three
// members, etcd traffic at about 1000 requests per virtual second with watches, one fault
// window (a follower crashes and restarts), then the heal and every checker.
import { type ClientPlan, SCENARIO_FORMAT, SCENARIO_VERSION, type Scenario } from "../scenario.js";

export const S = 1_000_000;
// 16 etcd clients, each ~60 requests per virtual second (6 ms think time plus the
// request's own latency): about 950 a second together, etcd's highest robustness traffic
export const ETCD_CLIENTS = 16;
export const TRAFFIC_US = 10 * S;

export function standard(seed: number): Scenario {
  const clients: ClientPlan[] = [];
  for (let i = 0; i < ETCD_CLIENTS; i++)
    clients.push({
      name: `c${i + 1}`,
      kind: "etcd",
      endpoints: [],
      startUs: S,
      stopUs: 11 * S,
      thinkUs: 6_000,
      requestTimeoutUs: 2 * S,
      keys: 10,
    });
  for (let i = ETCD_CLIENTS; i < ETCD_CLIENTS + 2; i++)
    clients.push({
      name: `c${i + 1}`,
      kind: "watch",
      endpoints: [],
      startUs: S,
      stopUs: 11 * S,
      thinkUs: 300_000,
      requestTimeoutUs: 2 * S,
      keys: 3,
    });
  return {
    format: SCENARIO_FORMAT,
    version: SCENARIO_VERSION,
    seed,
    profile: "etcd",
    bugs: [],
    cluster: {
      members: 3,
      tickUs: 100_000,
      electionTicks: 10,
      snapshotCount: 1000,
      snapshotCatchUpEntries: 500,
      compactionBatchLimit: 1000,
      backendBatchIntervalUs: 100_000,
      progressNotifyIntervalUs: 600 * S,
      leaseCheckpointIntervalUs: 0,
      walSegmentBytes: 64 * 1024,
    },
    clients,
    faults: [{ kind: "crash", node: "@follower", mode: "lose", atUs: 4 * S, durationUs: 2 * S }],
    timeline: { healUs: 8 * S, trafficEndUs: 11 * S, livenessBoundUs: 10 * S },
  };
}
