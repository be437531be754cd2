// Runs CLI commands in-process and captures their output.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Io } from "../../src/cli/common.js";
import { main } from "../../src/cli/main.js";

export interface Captured {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

export async function cli(...argv: string[]): Promise<Captured> {
  let out = "";
  let err = "";
  const io: Io = {
    out: (t) => {
      out += t.endsWith("\n") ? t : `${t}\n`;
    },
    err: (t) => {
      err += t.endsWith("\n") ? t : `${t}\n`;
    },
    progress: false,
    color: false,
  };
  const code = await main(argv, io);
  return { code, out, err };
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), "etcd-dst-test-"));
}
