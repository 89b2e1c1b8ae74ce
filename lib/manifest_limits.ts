/**
 * The resource limits a manifest may declare: the range each one must fall in, and the value a
 * plugin gets for one it leaves out.
 *
 * @example
 * ```ts
 * import { DEFAULT_MANIFEST_LIMITS, LIMIT_RANGES } from "./manifest_limits.ts";
 * LIMIT_RANGES.heapMb; // [8, 16384]
 * DEFAULT_MANIFEST_LIMITS.heapMb; // 50
 * ```
 * @module
 */

import type { Limits } from "./limits.ts";

/** Resource limits of one plugin: the one {@link Limits} type, under its manifest name. */
export type ManifestLimits = Limits;

/** Defaults for absent limits. */
export const DEFAULT_MANIFEST_LIMITS: Readonly<ManifestLimits> = Object.freeze({
  heapMb: 50,
  cpuTimeMs: 1000,
  threads: 4,
  fileDescriptors: 32,
  connections: 10,
});

/** Accepted ranges for each limit (inclusive). */
export const LIMIT_RANGES: Readonly<Record<keyof ManifestLimits, readonly [number, number]>> =
  Object.freeze({
    heapMb: [8, 16384],
    cpuTimeMs: [1, 3_600_000],
    threads: [1, 1024],
    fileDescriptors: [4, 65536],
    connections: [0, 65536],
  });
