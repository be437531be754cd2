// `etcd-dst report FILE | --seed N [--profile P] [--bug NAME]... [--out FILE]`: runs the
// scenario and writes its self-contained HTML page (default .etcd-dst/reports/<seed>.html).
// Exit codes follow the run's verdict, as `run` does.
import { reportHtml } from "../report-page.js";
import { runScenario } from "../runner.js";
import { type ExitCode, type Io, parseFlags } from "./common.js";
import { chooseScenario, exitOf, failedCheckers, saveScenario, writeReport } from "./runs.js";

export function report(argv: readonly string[], io: Io): ExitCode {
  const { values, positionals } = parseFlags(
    argv,
    {
      seed: { type: "string" },
      profile: { type: "string" },
      bug: { type: "string", multiple: true },
      out: { type: "string" },
    },
    1,
  );
  const file = positionals[0];
  const sc = chooseScenario("report", file, values);
  const r = runScenario(sc);
  // a failing seed is kept before anything else
  const saved =
    file ??
    (r.validation.verdict === "ok"
      ? null
      : saveScenario(".etcd-dst/found", sc, failedCheckers(r.validation.violations), r.validation.verdict));
  const path = writeReport(values.out ?? `.etcd-dst/reports/${sc.seed}.html`, reportHtml(r, saved));
  io.out(path);
  return exitOf(r.validation.verdict);
}
