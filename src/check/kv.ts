// Independent string registers with get, put and append (Porcupine's KV model),
// partitioned by key. States are interned strings, so hashing and comparing are O(1).
import type { CheckOp, Model } from "./linearizability.js";

export interface KvInput {
  readonly f: "get" | "put" | "append";
  readonly key: string;
  readonly value: string;
}

export interface KvOutput {
  readonly value: string;
}

/**
 * Builds the model. States are ids in a trie of values: a put starts a node, an append
 * extends one, looked up by a numeric (state, value) key, so a step allocates nothing
 * after its first visit. Equal strings reached by different paths get different ids;
 * that only costs the memo some hits, since gets compare the actual strings.
 */
export function kvModel(): Model<number, KvInput, KvOutput> {
  const strings: string[] = [""];
  /** per state: appended value id -> child state (created on the first append from it) */
  const children: (Map<number, number> | undefined)[] = [];
  const putIds = new Map<string, number>([["", 0]]);
  const valueIds = new Map<string, number>();
  const valueId = (v: string): number => {
    let id = valueIds.get(v);
    if (id === undefined) {
      id = valueIds.size + 1;
      valueIds.set(v, id);
    }
    return id;
  };
  const node = (s: string): number => {
    strings.push(s);
    return strings.length - 1;
  };
  return {
    init: () => 0,
    step(state, input, output) {
      switch (input.f) {
        case "get":
          return strings[state] === output.value ? state : undefined;
        case "put": {
          let id = putIds.get(input.value);
          if (id === undefined) {
            id = node(input.value);
            putIds.set(input.value, id);
          }
          return id;
        }
        case "append": {
          let kids = children[state];
          if (kids === undefined) {
            kids = new Map();
            children[state] = kids;
          }
          const v = valueId(input.value);
          let id = kids.get(v);
          if (id === undefined) {
            id = node((strings[state] as string) + input.value);
            kids.set(v, id);
          }
          return id;
        }
      }
    },
    hash: (s) => s,
    equal: (a, b) => a === b,
    partition(ops: readonly CheckOp<KvInput, KvOutput>[]) {
      const byKey = new Map<string, number[]>();
      ops.forEach((op, i) => {
        const list = byKey.get(op.input.key);
        if (list) list.push(i);
        else byKey.set(op.input.key, [i]);
      });
      return [...byKey.values()];
    },
    describeOperation: (input, output) =>
      input.f === "get"
        ? `get(${input.key}) -> "${output.value}"`
        : `${input.f}(${input.key}, "${input.value}")`,
    describeState: (s) => JSON.stringify(strings[s]),
  };
}
