// Every checker on a run's artifacts. A pure function: a saved run can be validated
// again. Every checker that applies runs; one failing never hides another. Violations
// come ordered by checker id (../shared/CLI.md).
import type { Operation } from "../../models/client/history.js";
import { checkAgreement } from "./agreement.js";
import type { RunArtifacts, Violation } from "./artifacts.js";
import { checkDurability } from "./durability.js";
import {
  checkEtcdOps,
  type EtcdCheckOp,
  type EtcdCheckResult,
  explainEtcdFailure,
  toCheckOps,
} from "./etcd-history.js";
import { checkLeases } from "./lease.js";
import { checkLiveness } from "./liveness.js";
import { checkLocks, type Observation } from "./lock.js";
import { Reference } from "./reference.js";
import { checkRevisionRollback } from "./revision.js";
import { checkStaleReads } from "./stale-read.js";
import { checkWatches } from "./watch.js";

export type RunVerdict = "ok" | "violation" | "unknown";

export interface Validation {
  readonly verdict: RunVerdict;
  readonly violations: readonly Violation[];
  readonly observations: readonly Observation[];
  readonly linearizability: {
    readonly verdict: EtcdCheckResult["verdict"];
    readonly steps: number;
    readonly ops: number;
    /**
     * History operation ids in linearization order: the whole witness when the history
     * is linearizable, the longest linearizable prefix when it is not.
     */
    readonly order: readonly number[];
    /** History operation ids that could not be placed after the prefix. */
    readonly stuck: readonly number[];
  };
}

export interface ValidateOptions {
  /** Model steps the linearizability search may take. */
  readonly budgetSteps?: number;
}

/**
 * The client operations for the linearizability check, with unknown outcomes settled by
 * the reference: a write the cluster committed took effect, with the answer the replay
 * gives it at its place in the log; one it never committed did not happen (or happened
 * after the run: the same).
 */
export function settleByReference(
  artifacts: RunArtifacts,
  ref: Reference,
): { ops: EtcdCheckOp[]; sources: Operation[] } {
  const { ops, sources } = toCheckOps(artifacts.history);
  if (!ref.tracksCalls) return { ops, sources };
  const keptOps: EtcdCheckOp[] = [];
  const keptSources: Operation[] = [];
  ops.forEach((op, i) => {
    const src = sources[i] as Operation;
    if (op.optional && src.client >= 0) {
      const entry = ref.entryOf(src.id);
      if (!entry) return;
      // the answer it would have had: the specification's, at its place in the log
      keptOps.push({ ...op, optional: false, output: entry.response });
    } else keptOps.push(op);
    keptSources.push(src);
  });
  return { ops: keptOps, sources: keptSources };
}

export function validateRun(artifacts: RunArtifacts, options: ValidateOptions = {}): Validation {
  const ref = new Reference(artifacts.members);
  const history = artifacts.history;
  const violations: Violation[] = [];
  const { ops, sources } = settleByReference(artifacts, ref);
  const lin = checkEtcdOps(
    ops,
    sources,
    options.budgetSteps === undefined ? {} : { budgetSteps: options.budgetSteps },
  );
  const ids = (xs: readonly number[] | undefined) =>
    (xs ?? []).map((i) => lin.sources[i]?.id).filter((id): id is number => id !== undefined);
  const stuck = ids(lin.failure?.stuck);
  const order = lin.verdict === "linearizable" ? ids(lin.witness?.flat()) : ids(lin.failure?.prefix);
  if (lin.verdict === "not-linearizable") {
    violations.push({
      checker: "linearizability",
      message: `the history has no linearization: ${explainEtcdFailure(lin).join("\n")}`,
      operations: stuck,
    });
  }
  violations.push(...checkStaleReads(history, ref));
  violations.push(...checkRevisionRollback(history));
  violations.push(...checkDurability(history, ref));
  violations.push(...checkAgreement(artifacts.members, artifacts.end));
  violations.push(...checkWatches(history, ref));
  violations.push(
    ...checkLeases(history, ref, artifacts.params, artifacts.endUs, artifacts.liveness?.healedUs ?? null),
  );
  const locks = checkLocks(history, ref, artifacts.endUs);
  violations.push(...locks.violations);
  violations.push(...checkLiveness(artifacts.liveness));
  for (const r of artifacts.reports)
    violations.push({
      checker: r.checker,
      message: r.message,
      atUs: r.virtualUs,
      ...(r.node ? { members: [r.node] } : {}),
    });
  violations.sort((a, b) => (a.checker < b.checker ? -1 : a.checker > b.checker ? 1 : 0));
  const verdict: RunVerdict =
    violations.length > 0 ? "violation" : lin.verdict === "unknown" ? "unknown" : "ok";
  return {
    verdict,
    violations,
    observations: locks.observations,
    linearizability: { verdict: lin.verdict, steps: lin.steps, ops: lin.ops.length, order, stuck },
  };
}
