// Runs one example under the runtime running the tests, as the README documents it. Private to
// test/examples.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runtime } from "../_helpers.ts";

/** The repository root (examples run from there). */
const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * @param file the example, relative to the repository root
 * @returns its exit status and its stdout and stderr together
 */
export function runExample(file: string): { status: number | null; out: string } {
  const args = runtime === "deno"
    ? ["run", "-A", "--unstable-worker-options", "--no-prompt", file]
    : [file];
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8", timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}
