// liveness: once the faults heal, the cluster serves a write and a linearizable read
// again within a bound of virtual time (robustness: "final write succeeds").
import { type LivenessProbe, secs, type Violation } from "./artifacts.js";

export function checkLiveness(probe: LivenessProbe | null): Violation[] {
  if (!probe) return [];
  const late = (okUs: number | null) => okUs === null || okUs - probe.healedUs > probe.boundUs;
  if (!late(probe.writeOkUs) && !late(probe.readOkUs)) return [];
  const what = (name: string, okUs: number | null) =>
    okUs === null
      ? `no ${name} succeeded`
      : `the first ${name} succeeded only after ${secs(okUs - probe.healedUs)}`;
  return [
    {
      checker: "liveness",
      message: `the faults healed at ${secs(probe.healedUs)}, but ${what("write", probe.writeOkUs)} and ${what("linearizable read", probe.readOkUs)} (bound ${secs(probe.boundUs)})`,
      atUs: probe.healedUs + probe.boundUs,
    },
  ];
}
