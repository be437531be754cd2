// The sample script of the exec tests, shared with the real-etcd suite (test/real).

/** A script covering each request kind; its answers are etcd 3.4's (test/real checks). */
export const SAMPLE = [
  { watch: { key: "a", range_end: "b", prev_kv: true } },
  { put: { key: "a", value: "1" } },
  { put: { key: "a", value: "2", prev_kv: true } },
  { range: { key: "a", revision: 2 } },
  { range: { key: "a", revision: 99 } },
  { put: { key: "a1", value: "x" } },
  { range: { key: "a", range_end: "b", limit: 1 } },
  {
    txn: {
      compare: [{ key: "a", target: "VERSION", result: "EQUAL", version: 2 }],
      success: [{ request_put: { key: "a", value: "3" } }],
      failure: [{ request_range: { key: "a1" } }],
    },
  },
  { lease_grant: { TTL: 60, ID: 7 } },
  { lease_revoke: { ID: 7 } },
  { compact: { revision: 3 } },
  { range: { key: "a", revision: 2 } },
  { delete_range: { key: "a", range_end: "b", prev_kv: true } },
  { put: { key: "x", value: "y", lease: 12345 } },
]
  .map((x) => JSON.stringify(x))
  .join("\n");
