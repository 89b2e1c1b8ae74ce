/**
 * `npm test`: static checks, then the one node:test suite under Deno, Bun and Node 26, then one
 * summary line `N passed, N failed` over all three. Exits non-zero if anything failed.
 *
 * Usage: node test/_run.ts [test|check|demo|bench] [--only=deno,bun,node] [paths...]
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const tmp = join(root, ".tmp", "junit");
const args = process.argv.slice(2);
const mode = args[0] ?? "test";
const only = args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
const paths = args.slice(1).filter((a) => !a.startsWith("--"));

function run(label: string, cmd: string, argv: string[], env: Record<string, string> = {}): number {
  process.stdout.write(`\n=== ${label}: ${[cmd.replace(root + "/", ""), ...argv].join(" ")}\n`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  return r.status ?? 1;
}

function countJunit(file: string): { passed: number; failed: number; skipped: number } {
  let xml: string;
  try {
    xml = readFileSync(file, "utf8");
  } catch {
    return { passed: 0, failed: 1, skipped: 0 };
  }
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  const cases = [...xml.matchAll(re)].map((m) => ({
    name: /\bname="([^"]*)"/.exec(m[1] ?? "")?.[1] ?? "",
    body: m[3] ?? "",
  }));
  // Deno reports a describe() block as a test case and its it() cases as "block > case" steps:
  // count leaves only, so every runtime counts the same it() cases.
  const names = cases.map((c) => c.name);
  for (const { name, body } of cases) {
    if (names.some((n) => n.startsWith(`${name} &gt; `))) continue;
    if (/<(failure|error)\b/.test(body)) failed++;
    else if (/<skipped\b/.test(body)) skipped++;
    else passed++;
  }
  return { passed, failed, skipped };
}

function check(): number {
  let rc = 0;
  rc ||= run("fmt", bin("deno"), ["fmt", "--check"]);
  rc ||= run("lint", bin("deno"), ["lint"]);
  rc ||= run("types", bin("tsc"), ["--noEmit", "-p", "tsconfig.json"]);
  return rc;
}

if (mode === "check") process.exit(check());
if (mode === "demo") {
  process.exit(run("demo", bin("node"), ["examples/demo.ts"]));
}
if (mode === "bench") {
  let rc = 0;
  for (const f of paths.length > 0 ? paths : ["bench/call.bench.ts"]) {
    rc ||= run(`bench node ${f}`, bin("node"), [f]);
    rc ||= run(`bench bun ${f}`, bin("bun"), [f]);
    rc ||= run(`bench deno ${f}`, bin("deno"), [
      "run",
      "-A",
      "--unstable-worker-options",
      "--no-prompt",
      f,
    ]);
  }
  process.exit(rc);
}

rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
const started = Date.now();
const checkRc = only === undefined ? check() : 0;
const targets = paths.length > 0 ? paths : ["test/"];
const runtimes = [
  {
    name: "deno",
    argv: () =>
      [bin("deno"), [
        "test",
        "-A",
        "--unstable-worker-options",
        "--no-prompt",
        "--no-check",
        `--junit-path=${tmp}/deno.xml`,
        ...targets,
      ]] as const,
  },
  {
    name: "bun",
    argv: () =>
      [bin("bun"), [
        "test",
        "--timeout=60000",
        "--reporter=junit",
        `--reporter-outfile=${tmp}/bun.xml`,
        ...targets.map((t) => t.startsWith(".") || t.startsWith("/") ? t : `./${t}`),
      ]] as const,
  },
  {
    name: "node",
    argv: () =>
      [bin("node"), [
        "--test",
        "--test-timeout=120000",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        "--test-reporter=junit",
        `--test-reporter-destination=${tmp}/node.xml`,
        ...targets.map((t) => t.endsWith("/") ? `${t}**/*.test.ts` : t),
      ]] as const,
  },
].filter((r) => only === undefined || only.includes(r.name));

let passed = 0;
let failed = 0;
const lines: string[] = [];
for (const r of runtimes) {
  const [cmd, argv] = r.argv();
  const t0 = Date.now();
  const rc = run(r.name, cmd, [...argv]);
  const c = countJunit(join(tmp, `${r.name}.xml`));
  // A runner that crashed or reported failure without a failing case still counts as a failure.
  if (rc !== 0 && c.failed === 0) c.failed = 1;
  passed += c.passed;
  failed += c.failed;
  lines.push(
    `${r.name}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped (exit ${rc}, ${
      ((Date.now() - t0) / 1000).toFixed(1)
    } s)`,
  );
}
if (checkRc !== 0) {
  failed += 1;
  lines.push("static checks (fmt, lint, types): failed");
}
process.stdout.write(
  `\n${lines.join("\n")}\ntotal time ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
