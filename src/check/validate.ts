// Every checker on a run's artifacts. A pure function: a saved run can be validated
// again. Every checker that applies runs; one failing never hides another. Violations
// come ordered by checker id (../shared/CLI.md).
import type { Operation } from "../../models/client/history.js";
import { checkAgreement } from "./agreement.js";
import type { RunArtifacts, Violation } from "./artifacts.js";
import { checkEpochs, checkServes, checkStaleUploads } from "./backup.js";
import { checkDurability } from "./durability.js";
import { checkRestores, epochsOf, type LossWindow, lossWindow } from "./epochs.js";
import type { EtcdState } from "./etcd.js";
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
  /** One-member backup runs: acknowledged writes lost with the data (outside etcd's assumptions). */
  readonly loss?: LossWindow;
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
  const epochs = epochsOf(artifacts);
  const parts: ReturnType<typeof validateEpoch>[] = [];
  if (!epochs) parts.push(validateEpoch(artifacts, options));
  else for (const e of epochs) parts.push(validateEpoch(e.artifacts, options, e.initial, parts.at(-1)?.ref));
  const violations = parts.flatMap((p) => p.violations);
  for (const r of artifacts.reports)
    violations.push({
      checker: r.checker,
      message: r.message,
      atUs: r.virtualUs,
      ...(r.node ? { members: [r.node] } : {}),
    });
  let loss: LossWindow | undefined;
  if (epochs && artifacts.restores?.length) {
    const refs = parts.map((p) => p.ref);
    violations.push(...checkRestores(epochs, refs));
    loss = lossWindow(epochs, refs);
  }
  if (artifacts.backup) {
    violations.push(...checkStaleUploads(artifacts.backup), ...checkServes(artifacts.backup));
    if (epochs) {
      const e = checkEpochs(
        epochs,
        parts.map((p) => p.ref),
      );
      violations.push(...e.violations);
      loss = e.loss;
    }
  }
  violations.sort((a, b) => (a.checker < b.checker ? -1 : a.checker > b.checker ? 1 : 0));
  const lins = parts.map((p) => p.linearizability);
  const linVerdict = lins.some((l) => l.verdict === "not-linearizable")
    ? "not-linearizable"
    : lins.some((l) => l.verdict === "unknown")
      ? "unknown"
      : "linearizable";
  const verdict: RunVerdict =
    violations.length > 0 ? "violation" : linVerdict === "unknown" ? "unknown" : "ok";
  return {
    verdict,
    violations,
    observations: parts.flatMap((p) => p.observations),
    linearizability: {
      verdict: linVerdict,
      steps: lins.reduce((n, l) => n + l.steps, 0),
      ops: lins.reduce((n, l) => n + l.ops, 0),
      order: lins.flatMap((l) => l.order),
      stuck: lins.flatMap((l) => l.stuck),
    },
    ...(loss ? { loss } : {}),
  };
}

/** Every checker of the history on one stretch of a run (its store at first: `initial`). */
function validateEpoch(
  artifacts: RunArtifacts,
  options: ValidateOptions,
  initial?: EtcdState,
  prior?: Reference,
): Omit<Validation, "verdict"> & { readonly ref: Reference } {
  const ref = new Reference(artifacts.members, initial, prior);
  const history = artifacts.history;
  const violations: Violation[] = [];
  const { ops, sources } = settleByReference(artifacts, ref);
  const lin = checkEtcdOps(ops, sources, {
    ...(options.budgetSteps === undefined ? {} : { budgetSteps: options.budgetSteps }),
    ...(initial ? { initial } : {}),
  });
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
  return {
    violations,
    observations: locks.observations,
    linearizability: { verdict: lin.verdict, steps: lin.steps, ops: lin.ops.length, order, stuck },
    ref,
  };
}
