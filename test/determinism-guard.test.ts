// The guard: code under sim/ and models/ must not reach real time, real randomness or
// real I/O, or a seed would no longer decide the run. This scans the sources.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";

const FORBIDDEN: readonly { readonly what: string; readonly pattern: RegExp }[] = [
  { what: "Math.random", pattern: /\bMath\s*\.\s*random\b/ },
  { what: "Date", pattern: /\bDate\b/ },
  { what: "timers", pattern: /\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/ },
  { what: "performance.now", pattern: /\bperformance\s*\.\s*now\b/ },
  { what: "process.hrtime", pattern: /\bprocess\s*\.\s*hrtime\b/ },
  {
    what: "real I/O module",
    pattern:
      /(from\s+|import\s*\(\s*|require\s*\(\s*)["'](node:)?(fs|fs\/promises|net|dgram|http|https|http2|tls|child_process|worker_threads|cluster)["']/,
  },
];

/** Source with comments blanked out, so that a comment may name what the code must not use. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, " ")).replace(/\/\/.*$/gm, "");
}

export function findLeaks(source: string): string[] {
  const leaks: string[] = [];
  const lines = stripComments(source).split("\n");
  lines.forEach((line, i) => {
    for (const f of FORBIDDEN) if (f.pattern.test(line)) leaks.push(`line ${i + 1}: ${f.what}`);
  });
  return leaks;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|js|mjs|cjs)$/.test(name)) out.push(p);
  }
  return out;
}

test("the scanner flags each forbidden use, and ignores comments", () => {
  const bad = [
    "const x = Math.random();",
    "const t = Date.now();",
    "const d = new Date();",
    "setTimeout(() => {}, 1);",
    "setImmediate(f);",
    "const n = performance.now();",
    "const h = process.hrtime.bigint();",
    'import { readFileSync } from "node:fs";',
    'import * as net from "net";',
    'const w = await import("node:worker_threads");',
    'import { spawn } from "node:child_process";',
  ];
  for (const line of bad) assert.is(findLeaks(line).length, 1, line);
  assert.equal(findLeaks("// Math.random is banned\n/* Date.now() too */\nconst ok = 1;"), []);
  assert.equal(findLeaks('import { Random } from "./random.js";\nconst fsync = 1;'), []);
});

test("nothing under sim/ or models/ uses real time, randomness or I/O", () => {
  const root = join(import.meta.dirname, "..");
  const files = [...sources(join(root, "sim")), ...sources(join(root, "models"))];
  assert.ok(files.length >= 8, "the guard sees the sources");
  const leaks = files.flatMap((f) =>
    findLeaks(readFileSync(f, "utf8")).map((l) => `${relative(root, f)} ${l}`),
  );
  assert.equal(leaks, []);
});

test.run();
