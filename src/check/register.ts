// A single register with read, write and compare-and-set (Jepsen's etcd test): the
// sequential specification for the Jepsen logs. nil is the empty register.
import type { Model } from "./linearizability.js";

export type RegisterInput =
  | { readonly f: "read" }
  | { readonly f: "write"; readonly value: number }
  | { readonly f: "cas"; readonly from: number; readonly to: number };

/** `ok: false` on a cas means the compare failed; reads carry the value read (null: nil). */
export interface RegisterOutput {
  readonly ok: boolean;
  readonly value?: number | null;
}

const NIL = -1;

export const registerModel: Model<number, RegisterInput, RegisterOutput> = {
  init: () => NIL,
  step(state, input, output, unknown) {
    switch (input.f) {
      case "read":
        return (output.value ?? NIL) === state ? state : undefined;
      case "write":
        return input.value;
      case "cas":
        if (unknown) return state === input.from ? input.to : state;
        if (output.ok) return state === input.from ? input.to : undefined;
        return state !== input.from ? state : undefined;
    }
  },
  hash: (s) => s,
  equal: (a, b) => a === b,
  describeOperation(input, output, unknown) {
    const result = unknown
      ? " -> ?"
      : input.f === "read"
        ? ` -> ${output.value ?? "nil"}`
        : output.ok
          ? ""
          : " -> failed";
    if (input.f === "read") return `read${result}`;
    if (input.f === "write") return `write(${input.value})${result}`;
    return `cas(${input.from}, ${input.to})${result}`;
  },
  describeState: (s) => (s === NIL ? "nil" : String(s)),
  inputKey: (i) => (i.f === "read" ? "r" : i.f === "write" ? `w${i.value}` : `c${i.from},${i.to}`),
};
