/**
 * The one place that detects the current runtime and loads its adapter.
 *
 * @example
 * ```ts
 * import { detectRuntime, loadAdapter } from "./detect.ts";
 * const adapter = await loadAdapter();
 * console.log(detectRuntime(), adapter.name);
 * ```
 * @module
 */

import { PluginError } from "../errors.ts";
import type { RuntimeName } from "../../permissions/enforcement.ts";
import type { RuntimeAdapter } from "./types.ts";

/**
 * Which runtime this code runs on.
 *
 * @returns `deno`, `bun` or `node`
 * @example
 * ```ts
 * detectRuntime(); // "node"
 * ```
 */
export function detectRuntime(): RuntimeName {
  // process.versions exists on all three runtimes (and in their workers and children).
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.bun !== undefined) return "bun";
  if (versions.deno !== undefined) return "deno";
  return "node";
}

/**
 * Loads the adapter for the current runtime; other runtimes' code is never evaluated.
 *
 * @returns the adapter
 * @example
 * ```ts
 * const adapter = await loadAdapter();
 * ```
 */
export async function loadAdapter(): Promise<RuntimeAdapter> {
  const runtime = detectRuntime();
  if (runtime === "deno") return (await import("./deno.ts")).createDenoAdapter();
  if (runtime === "bun") return (await import("./bun.ts")).createBunAdapter();
  return (await import("./node.ts")).createNodeAdapter();
}

/**
 * The current runtime's version string.
 *
 * @returns e.g. `26.10.0` on Node, `1.4.5` on Bun, `2.9.6` on Deno
 * @example
 * ```ts
 * runtimeVersion();
 * ```
 */
export function runtimeVersion(): string {
  const v = process.versions as Record<string, string | undefined>;
  return v.deno ?? v.bun ?? v.node ?? "unknown";
}

/**
 * The oldest version of each runtime bulkhead runs on: the versions its suite is run with, and
 * what the worker tier needs (Node's per-worker `--permission`, Deno's worker permissions).
 */
export const MINIMUM_VERSIONS: Readonly<Record<RuntimeName, readonly [number, number]>> = Object
  .freeze({ node: [26, 0], deno: [2, 9], bun: [1, 4] });

const TITLES: Readonly<Record<RuntimeName, string>> = { node: "Node", deno: "Deno", bun: "Bun" };
const NEEDS: Readonly<Record<RuntimeName, string>> = {
  node: "per-worker permissions",
  deno: "worker permissions",
  bun: "the worker and child process features it is tested with",
};

/**
 * Refuses a runtime older than {@link MINIMUM_VERSIONS}: on one, the worker tier would start
 * plugins without the restrictions it reports. A version that cannot be read passes.
 *
 * @param runtime the runtime (default: the current one)
 * @param version its version string (default: the current one's)
 * @throws {PluginError} ERR_RUNTIME_UNSUPPORTED when the version is older than the minimum
 * @example
 * ```ts
 * assertRuntimeVersion("node", "20.11.1");
 * // throws: Cannot create the plugin host: bulkhead needs Node >= 26 for per-worker
 * // permissions; this is Node 20.11.1
 * ```
 */
export function assertRuntimeVersion(
  runtime: RuntimeName = detectRuntime(),
  version: string = runtimeVersion(),
): void {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  if (m === null) return;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const [needMajor, needMinor] = MINIMUM_VERSIONS[runtime];
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return;
  const title = TITLES[runtime];
  const need = needMinor === 0 ? `${needMajor}` : `${needMajor}.${needMinor}`;
  throw new PluginError(
    "ERR_RUNTIME_UNSUPPORTED",
    `Cannot create the plugin host: bulkhead needs ${title} >= ${need} for ${
      NEEDS[runtime]
    }; this is ${title} ${version}`,
    { hint: `Upgrade to ${title} ${need} or later` },
  );
}
