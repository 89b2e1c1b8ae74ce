/**
 * bulkhead: a plugin host for Deno, Bun and Node 26. Every JS/TS plugin runs in its own worker
 * with permissions derived from its manifest; the host brokers its context and network access
 * and reports exactly what the runtime enforces.
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

export { type HostOptions, PluginHost } from "./lib/host.ts";
export { Plugin, type PluginInfo, type PluginStatus } from "./lib/plugin.ts";
export {
  ERROR_CODES,
  type ErrorCode,
  type Issue,
  PluginError,
  type PluginErrorOptions,
} from "./lib/errors.ts";
export {
  DEFAULT_MANIFEST_LIMITS,
  loadManifest,
  type Manifest,
  type ManifestLimits,
  parseManifest,
} from "./lib/manifest.ts";
export { type LogFields, type Logger, SILENT_LOGGER } from "./lib/logger.ts";
export { type Denial, PREDEFINED_CONTEXT_KEYS } from "./lib/context.ts";
export type { Enforcement, EnforcementEntry } from "./permissions/enforcement.ts";
