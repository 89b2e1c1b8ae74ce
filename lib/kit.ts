/**
 * Building blocks of the bulkhead host, for code that composes its own: the lifecycle state
 * machine, the event emitter, the hook registry, dependency resolution, limit checks, the
 * violation tracker, Prometheus rendering, the audit log and trust policy resolution.
 * `PluginHost` (from the package root) uses all of these; most host authors never need them.
 *
 * @example
 * ```ts
 * import { resolveLoadOrder } from "@bulkhead/core/kit";
 * const catalog = new Map([["a", { version: "1.0.0", dependencies: { b: "1.x" } }], ["b", { version: "1.2.0" }]]);
 * console.log(resolveLoadOrder(["a"], catalog)); // ["b", "a"]
 * ```
 * @module
 */

export { isLegalTransition, Lifecycle, TRANSITIONS } from "./lifecycle.ts";
export { Emitter } from "./events.ts";
export { HookRegistry } from "./hooks.ts";
export {
  type Catalog,
  type CatalogEntry,
  checkEngine,
  type CheckEngineOptions,
  dependentsOf,
  resolveLoadOrder,
  unloadOrder,
} from "./dependencies.ts";
export { checkLimits, DEFAULT_LIMITS, tightenLimits, type TightenPolicy } from "./limits.ts";
export { type ViolationInput, ViolationTracker } from "./violations.ts";
export { renderPrometheus } from "./prometheus.ts";
export { AuditLog, redactSecrets } from "./audit.ts";
export { resolvePolicy } from "./trust/policy.ts";
