#!/usr/bin/env -S node --max-semi-space-size=64
// The etcd-dst binary (../shared/CLI.md). Unexpected errors still end with one line and
// exit 2 rather than a stack trace; set ETCD_DST_DEBUG=1 to see the trace.
import { processIo } from "./cli/common.js";
import { main } from "./cli/main.js";

try {
  process.exitCode = await main(process.argv.slice(2), processIo);
} catch (e) {
  if (process.env.ETCD_DST_DEBUG) console.error(e);
  process.stderr.write(`etcd-dst: internal error: ${(e as Error).message ?? String(e)}\n`);
  process.exitCode = 2;
}
