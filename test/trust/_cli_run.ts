// Runs lib/cli.ts in a child process of the current runtime, as a user would. Private to
// test/trust.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runtimeCommand } from "../fixtures/trust/make_package.ts";

export const CLI = fileURLToPath(new URL("../../lib/cli.ts", import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI with only PATH, HOME and the given variables in its environment.
 *
 * @param args CLI arguments
 * @param options HOME for the child and extra environment
 * @returns exit code and output
 */
export function runCli(
  args: string[],
  options: { home: string; env?: Record<string, string> },
): Promise<Run> {
  const [cmd, argv] = runtimeCommand(CLI, args);
  const child = spawn(cmd, argv, {
    env: { PATH: process.env.PATH ?? "", HOME: options.home, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => stdout += d);
  child.stderr!.on("data", (d) => stderr += d);
  return new Promise((ok) => child.on("close", (code) => ok({ code, stdout, stderr })));
}

/** The `error` object a `--json` run printed. */
export function jsonError(r: Run): { code?: string; message: string; hint?: string } {
  return JSON.parse(r.stdout).error;
}
