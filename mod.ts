/**
 * bulkhead: a plugin host for Deno, Bun and Node 26. Every JS/TS plugin runs in its own worker
 * with permissions derived from its manifest; the host brokers its context and network access,
 * verifies signatures before it loads the same bytes, and reports exactly what the runtime
 * enforces.
 *
 * @example
 * ```ts
 * import { PluginHost } from "@bulkhead/core";
 * const host = new PluginHost({ pluginDirs: ["./plugins"], context: { config: { units: "metric" } } });
 * await host.discover();
 * const resizer = await host.load("image-resizer");
 * console.log(await resizer.call("resize", { width: 100 }));
 * console.log(resizer.info.enforcement);
 * await host.close();
 * ```
 * @module
 */

export {
  HOST_API_VERSION,
  type HostOptions,
  PluginHost,
  type TrustOptions,
  type UnloadOptions,
} from "./lib/host/host.ts";
export { Plugin, type PluginInfo, type PluginStatus, type TrustInfo } from "./lib/plugin.ts";
export {
  ERROR_CODES,
  type ErrorCode,
  type Issue,
  PluginError,
  type PluginErrorOptions,
} from "./lib/errors.ts";
export {
  DEFAULT_MANIFEST_LIMITS,
  LIMIT_RANGES,
  loadManifest,
  type Manifest,
  type ManifestLimits,
  parseManifest,
  parseManifestText,
} from "./lib/manifest.ts";
export { type LogFields, type Logger, SILENT_LOGGER } from "./lib/logger.ts";
export { type Denial, type PluginBudgets, PREDEFINED_CONTEXT_KEYS } from "./lib/broker/context.ts";
export type {
  Enforcement,
  EnforcementArea,
  EnforcementEntry,
  RuntimeName,
} from "./permissions/enforcement.ts";
export {
  PLUGIN_STATES,
  type PluginState,
  type StateChange,
  type Transition,
} from "./lib/lifecycle.ts";
export { HOST_EVENTS, type HostEventName, type HostEvents, type Listener } from "./lib/events.ts";
export {
  type HookCallInfo,
  type HookHandler,
  type HookParallelResult,
  HookPriority,
  type HookRegistration,
  type HookRunOptions,
  type HookRunResult,
  type HookStats,
  type HookUntilResult,
  type PluginHookStats,
  STANDARD_HOOKS,
} from "./lib/hooks.ts";
export type { Limits } from "./lib/limits.ts";
export {
  DEFAULT_UNMOUNT_BEHAVIOR,
  type UnmountBehavior,
  type Violation,
  type ViolationType,
} from "./lib/violations.ts";
export type { PluginMetricsSnapshot } from "./lib/metrics.ts";
export type { HostMetrics } from "./lib/prometheus.ts";
export type { AuditEvent, AuditEventName, AuditSink } from "./lib/audit.ts";
export {
  TRUST_PRESETS,
  type TrustPolicy,
  type TrustPolicyInput,
  type TrustPresetName,
} from "./lib/trust/policy.ts";
