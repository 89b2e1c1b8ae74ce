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
