// `etcd-dst bugs [--json]`, `etcd-dst profiles [--json]`, and `etcd-dst scenario`.
import { BUGS } from "../../models/bugs.js";
import { CASES } from "../cases.js";
import { profileList } from "../profiles.js";
import { scenarioToJson } from "../scenario.js";
import { Exit, type ExitCode, type Io, parseFlags, parseSeed, UsageError } from "./common.js";
import { checkBugs, checkCase, checkProfile, seedScenario } from "./runs.js";

export function bugs(argv: readonly string[], io: Io): ExitCode {
  const { values } = parseFlags(argv, { json: { type: "boolean" } });
  if (values.json) {
    io.out(
      JSON.stringify(
        BUGS.map((b) => ({
          name: b.name,
          etcdIssue: b.etcdIssue,
          summary: b.summary,
          profile: b.profile,
          detectors: b.detectors,
        })),
      ),
    );
    return Exit.Ok;
  }
  for (const b of BUGS)
    io.out(
      `${b.name}  (${b.etcdIssue}; profile ${b.profile}; found by ${b.detectors.join(", ")})\n  ${b.summary}`,
    );
  return Exit.Ok;
}

export function profiles(argv: readonly string[], io: Io): ExitCode {
  const { values } = parseFlags(argv, { json: { type: "boolean" } });
  if (values.json) {
    io.out(
      JSON.stringify({
        profiles: profileList(),
        cases: CASES.map((c) => ({ name: c.name, summary: c.summary })),
      }),
    );
    return Exit.Ok;
  }
  io.out("profiles (--profile):");
  for (const p of profileList()) io.out(`  ${p.name.padEnd(12)} ${p.summary}`);
  io.out("fault cases (--case), the etcd functional tester's:");
  for (const c of CASES) io.out(`  ${c.name}: ${c.summary}`);
  return Exit.Ok;
}

/** `etcd-dst scenario --seed N [--profile P] [--case NAME] [--bug NAME]...`: the scenario file of a seed. */
export function scenario(argv: readonly string[], io: Io): ExitCode {
  const { values } = parseFlags(argv, {
    seed: { type: "string" },
    profile: { type: "string" },
    case: { type: "string" },
    bug: { type: "string", multiple: true },
  });
  if (values.seed === undefined) throw new UsageError("scenario needs --seed N");
  const sc = seedScenario(
    parseSeed(values.seed),
    checkProfile(values.profile),
    checkCase(values.case, checkProfile(values.profile)),
    checkBugs(values.bug),
  );
  io.out(scenarioToJson(sc));
  return Exit.Ok;
}
