// backup.restore-loss across epochs (src/check/backup.ts, epochs.ts): a lone member that
// serves again must serve a store the cluster committed, holding every write up to the
// newest backup. Stores and references are built by hand here; the runs that found each
// rule are in seeds/ (regression-*).
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { KeyValue } from "../../models/client/history.js";
import type { AppliedRecord, ServeRecord, StoreState } from "../../models/etcd/cluster.js";
import type { RunArtifacts } from "../../src/check/artifacts.js";
import { checkEpochs } from "../../src/check/backup.js";
import { type Epoch, epochsOf } from "../../src/check/epochs.js";
import { type EtcdState, etcdStateOf } from "../../src/check/etcd.js";
import type { Reference } from "../../src/check/reference.js";

const kv = (key: string, value: string, rev: number): KeyValue => ({
  key,
  value,
  createRevision: rev,
  modRevision: rev,
  version: 1,
  lease: 0,
});
const store = (revision: number, kvs: KeyValue[]): StoreState => ({
  revision,
  compactRevision: -1,
  kvs,
  leases: [],
});

/** A life of the cluster that committed `writes` (one key per revision) from `initial`. */
function life(initial: StoreState, writes: [string, string][]): { states: EtcdState[]; last: StoreState } {
  const states: EtcdState[] = [];
  let kvs = [...initial.kvs];
  states[initial.revision] = etcdStateOf(initial);
  let rev = initial.revision;
  for (const [key, value] of writes) {
    rev++;
    kvs = [...kvs.filter((x) => x.key !== key), kv(key, value, rev)];
    states[rev] = etcdStateOf(store(rev, kvs));
  }
  return { states, last: store(rev, kvs) };
}

const ref = (states: EtcdState[]) =>
  ({ stateAt: (r: number) => states[r] ?? null, entries: [] }) as unknown as Reference;

function epoch(
  startUs: number,
  initial: StoreState,
  newestBackup: number,
  uploads: [number, number][],
): Epoch {
  const artifacts = {
    history: { operations: [], watches: [] },
    backup: { uploads: uploads.map(([atUs, revision]) => ({ atUs, revision })) },
  } as unknown as RunArtifacts;
  return {
    artifacts,
    initial: etcdStateOf(initial),
    start: { atUs: startUs, member: "m1", newestBackup, state: initial },
  };
}

// life 0 writes a..: revisions 2..7; a backup of it at revision 4 (uploaded at 1 s);
// life 1 is restored from that backup and writes other values at 5..7
const l0 = life(store(1, []), [
  ["a", "0a"],
  ["b", "0b"],
  ["a", "0a2"],
  ["c", "0c"],
  ["b", "0b2"],
  ["d", "0d"],
]);
const backup4 = store(4, [kv("a", "0a2", 4), kv("b", "0b", 3)]);
const l1 = life(backup4, [
  ["x", "1x"],
  ["y", "1y"],
  ["z", "1z"],
]);

test("a stale volume's store from an older life is committed: only writes after the newest backup are lost", () => {
  // life 2 starts on life 0's volume at revision 7: life 0 committed exactly that store
  const epochs = [
    epoch(0, store(1, []), 0, [[1_000_000, 4]]),
    epoch(2_000_000, backup4, 4, [[1_000_000, 4]]),
    epoch(3_000_000, l0.last, 4, [[1_000_000, 4]]),
  ];
  const refs = [ref(l0.states), ref(l1.states), ref([])];
  assert.equal(checkEpochs(epochs, refs).violations, []);
});

test("a store nobody committed, or one that lacks writes the newest backup held, is a restore loss", () => {
  // a store at revision 7 that neither life committed
  const forged = store(7, [kv("a", "0a2", 4), kv("b", "0b", 3), kv("q", "never", 7)]);
  const epochs = [
    epoch(0, store(1, []), 0, [[1_000_000, 4]]),
    epoch(2_000_000, backup4, 4, [[1_000_000, 4]]),
    epoch(3_000_000, forged, 4, [[1_000_000, 4]]),
  ];
  const refs = [ref(l0.states), ref(l1.states), ref([])];
  const v = checkEpochs(epochs, refs).violations;
  assert.is(v.length, 1);
  assert.is(v[0]?.checker, "backup.restore-loss");
  // life 1 uploaded a backup at revision 6 (its x, y); life 0's store at 7 lacks them
  const epochs2 = [
    epoch(0, store(1, []), 0, [[1_000_000, 4]]),
    epoch(2_000_000, backup4, 4, [[1_000_000, 4]]),
    epoch(3_000_000, l0.last, 6, [
      [1_000_000, 4],
      [2_500_000, 6],
    ]),
  ];
  const v2 = checkEpochs(epochs2, refs).violations;
  assert.is(v2.length, 1);
  assert.match(v2[0]?.message ?? "", "at the backup's revision 6");
  // behind the newest backup
  const epochs3 = [
    epoch(0, store(1, []), 0, [[1_000_000, 4]]),
    epoch(2_000_000, l0.last, 7, [[1_500_000, 7]]),
    epoch(3_000_000, backup4, 7, [[1_500_000, 7]]),
  ];
  const v3 = checkEpochs(epochs3, [ref(l0.states), ref(l0.states), ref([])]).violations;
  assert.is(v3.length, 1);
  assert.match(v3[0]?.message ?? "", "revisions 5..7 are gone");
});

/** What a process of member 1 applied: `[atUs, index, requestId]`, a put of key k<index> each. */
const applied = (xs: [number, number, string][]): AppliedRecord[] =>
  xs.map(([atUs, index, requestId]) => ({
    atUs,
    index,
    term: 1,
    requestId,
    origin: 1,
    request: { type: "put", key: `k${index}`, value: requestId },
    response: { type: "put", revision: index + 1 },
    revision: index + 1,
    expiry: false,
    callId: undefined,
  }));

test("an epoch's log holds the entries it committed that a later start replayed, and only those", () => {
  // process 1.1 serves from 1 s and applies 1..2, then dies with 3 committed in its WAL; a
  // start at 3 s (1.2) replays 3 and applies an entry of its own fork at 4, then dies
  // unserving; 1.3 replays 3 again at 5 s, serves from 6 s, applies 5; 1.4 serves from 7 s
  // and dies before applying its first entry, 6, which 1.5 replays at 8.1 s
  const serve = (atUs: number, revision: number, proposer: string): ServeRecord => ({
    atUs,
    member: "m1",
    revision,
    newestBackup: 0,
    corrupted: [],
    state: store(revision, []),
    proposer,
  });
  const a = {
    history: { operations: [], watches: [] },
    members: [
      {
        name: "m1",
        memberId: 1,
        applied: applied([
          [1_100_000, 1, "1.1.1"],
          [1_200_000, 2, "1.1.2"],
          [3_100_000, 3, "1.1.3"],
          [3_200_000, 4, "1.2.1"],
          [5_100_000, 3, "1.1.3"],
          [6_100_000, 5, "1.3.1"],
          [8_100_000, 6, "1.4.1"],
          [9_100_000, 7, "1.5.1"],
        ]),
      },
    ],
    end: [],
    liveness: null,
    reports: [],
    endUs: 10_000_000,
    params: { electionTimeoutUs: 1_000_000, maxClockDriftPpm: 0 },
    backup: {
      uploads: [],
      validations: [0, 3_000_000, 5_000_000, 6_900_000, 8_000_000].map((atUs) => ({ atUs })),
      serves: [
        serve(1_000_000, 1, "1.1"),
        serve(6_000_000, 4, "1.3"),
        serve(7_000_000, 5, "1.4"),
        serve(9_000_000, 6, "1.5"),
      ],
      restores: [],
    },
  } as unknown as RunArtifacts;
  const epochs = epochsOf(a) as Epoch[];
  assert.is(epochs.length, 4);
  const ids = (k: number) => epochs[k]?.artifacts.members[0]?.applied.map((e) => `${e.index}:${e.requestId}`);
  assert.equal(ids(0), ["1:1.1.1", "2:1.1.2", "3:1.1.3", "3:1.1.3"]);
  assert.equal(ids(1), ["5:1.3.1"]);
  // it applied nothing itself: its serve record names the process
  assert.equal(ids(2), ["6:1.4.1"]);
  assert.equal(ids(3), ["7:1.5.1"]);
});

test.run();
