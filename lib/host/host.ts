/**
 * The plugin host: discovers plugins, verifies and loads each into its own worker or sandboxed
 * child with permissions derived from its manifest, brokers its context, runs hooks, tracks
 * lifecycle, dependencies, limits and metrics, hot-reloads, and keeps serving when a plugin fails.
 * The steps live in the private helpers of this folder; this file is the public facade.
 * @module
 */

import { PluginError } from "../errors.ts";
import { DEFAULT_LOGGER } from "../logger.ts";
import type { HostOptions, UnloadOptions } from "./options.ts";
import type { Plugin, PluginInfo } from "../plugin.ts";
import type { PluginState } from "../lifecycle.ts";
import { Emitter, type HostEvents } from "../events.ts";
import { HookRegistry } from "../hooks.ts";
import type { PluginMetricsSnapshot } from "../metrics.ts";
import { AuditLog } from "../audit.ts";
import { watchEntries } from "./_watch.ts";
import { hostMetricsText, monitorEntries } from "./_monitor.ts";
import { LOADED } from "./_entry.ts";
import { countStates, Registry } from "./_registry.ts";
import { reloadEntry } from "./_reload.ts";
import { Service } from "./_service.ts";
import { pauseEntry, resumeEntry } from "./_pause.ts";
import { resolvePinnedKeys, resolvePolicy, type TrustPolicy } from "../trust/policy.ts";

export { HOST_API_VERSION } from "./options.ts";
export type { HostOptions, TrustOptions, UnloadOptions } from "./options.ts";

/**
 * Hosts plugins, each in its own worker.
 *
 * @example
 * ```ts
 * const host = new PluginHost({ pluginDirs: ["./plugins"] });
 * ```
 */
export class PluginHost {
  #options: HostOptions;
  #registry: Registry;
  #store: Map<string, unknown>;
  #closed = false;
  #closing: Promise<void> | undefined;
  #policy: TrustPolicy;
  #service: Service;
  #audit: AuditLog | undefined;
  /** Stops the watchers and monitors still running. */
  #stops = new Set<() => void>();
  #started = Date.now();
  /** Lifecycle and security events. */
  readonly events: Emitter<HostEvents>;
  /** Hook registry: `run` (waterfall), `runParallel`, `runUntil`, `stats`. */
  readonly hooks: HookRegistry;

  /**
   * Creates a host. Nothing is discovered or loaded yet, and no runtime adapter is imported until
   * the first load. The policy defaults to `"standard"` with `trust` options, else `"development"`.
   *
   * @param options host options
   * @throws {TypeError} when `options.policy` names an unknown preset or has a field of the wrong
   * type
   * @throws {RangeError} when a policy limit is not a positive number
   * @throws {TypeError} when a `trust.pinnedKeys` entry is not a public key line or 64 hex
   */
  constructor(options: HostOptions = {}) {
    this.#options = options;
    const logger = options.logger ?? DEFAULT_LOGGER;
    this.#store = new Map(Object.entries(options.context ?? {}));
    this.#policy = resolvePolicy(options.policy ?? (options.trust ? "standard" : "development"));
    resolvePinnedKeys(options.trust?.pinnedKeys); // a malformed key fails here, not at every load
    this.#audit = options.audit === undefined ? undefined : new AuditLog(options.audit, {
      logger, // an unwritable audit log is reported (ERR_IO), never thrown into the host
      onError: (error) => this.events.emit("error", { plugin: undefined, error }),
    });
    this.events = new Emitter<HostEvents>({
      onListenerError: (error, event) =>
        logger.error(`A "${event}" listener threw: ${(error as Error)?.message}`, {}),
    });
    this.hooks = new HookRegistry({
      timeoutMs: options.hookTimeoutMs ?? 5000,
      onHandlerError: (error) =>
        logger.warn(`Hook handler failed: ${(error as Error).message}`, {}),
    });
    this.#registry = new Registry({ events: this.events, unmount: options.unmount, logger });
    this.#service = new Service({
      registry: this.#registry,
      options,
      policy: this.#policy,
      store: this.#store,
      logger,
      audit: this.#audit,
      events: this.events,
      hooks: this.hooks,
      isClosed: () => this.#closed,
    });
  }

  /** The shared context store (what `ctx.get`/`ctx.set` reach, subject to each plugin's ACL). */
  get context(): Map<string, unknown> {
    return this.#store;
  }

  /** The resolved security policy. */
  get policy(): TrustPolicy {
    return this.#policy;
  }

  /**
   * Scans the plugin directories and registers every plugin found. Invalid manifests are listed
   * with status `failed` and their error.
   *
   * @returns info for every known plugin
   * @throws {PluginError} ERR_DUPLICATE when two directories hold plugins with the same name
   */
  async discover(): Promise<PluginInfo[]> {
    this.#assertOpen();
    await this.#registry.scan(this.#options.pluginDirs ?? []);
    return this.list();
  }

  /** Every known plugin. @returns a snapshot of each plugin's info */
  list(): PluginInfo[] {
    return this.#registry.infos();
  }

  /** Plugins currently loaded (active or paused). @returns their info */
  loaded(): PluginInfo[] {
    return this.list().filter((i) => LOADED.includes(i.status));
  }

  /** Plugins known but not loaded. @returns their info */
  available(): PluginInfo[] {
    return this.list().filter((i) => i.status === "available" || i.status === "unloaded");
  }

  /** Plugins that failed to load or crashed. @returns their info */
  failed(): PluginInfo[] {
    return this.list().filter((i) => i.status === "failed");
  }

  /** Plugins refused by the trust policy. @returns their info */
  untrusted(): PluginInfo[] {
    return this.list().filter((i) => i.status === "untrusted");
  }

  /** Info about one plugin. @param name plugin name @returns its info, or undefined */
  info(name: string): PluginInfo | undefined {
    return this.#registry.info(name);
  }

  /** Whether the plugin is loaded (active or paused). @param name plugin name @returns it is */
  isLoaded(name: string): boolean {
    return this.#registry.isLoaded(name);
  }

  /** How many plugins are in each state. @returns counts by state, plus `total` */
  counts(): Record<PluginState | "total", number> {
    return countStates(this.list());
  }

  /**
   * The loaded (active or paused) plugin with that name.
   *
   * @param name plugin name
   * @returns the plugin handle or undefined
   */
  get(name: string): Plugin | undefined {
    const e = this.#registry.get(name);
    return e?.plugin !== undefined && LOADED.includes(e.plugin.status) ? e.plugin : undefined;
  }

  /**
   * Loads a plugin and, first, the plugins it depends on: verifies the package under the policy,
   * derives its grants, starts its worker and runs `init`/`start`.
   *
   * @param nameOrDir a discovered plugin's name, or a path to a plugin directory
   * @returns the running plugin
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND, ERR_MANIFEST_INVALID, ERR_DUPLICATE (already
   * loaded), ERR_DEPENDENCY, ERR_ENGINE, ERR_LIMITS, ERR_UNTRUSTED, ERR_SIGNATURE_INVALID,
   * ERR_DOWNGRADE, ERR_PERMISSION_DENIED (symlink escaping its grants), ERR_RUNTIME_UNSUPPORTED,
   * ERR_PLUGIN_INIT, ERR_CALL_TIMEOUT, ERR_HOST_CLOSED (closed during the load). Concurrent loads
   * of one plugin share one load; at most `loadConcurrency` plugins start at once.
   */
  async load(nameOrDir: string): Promise<Plugin> {
    this.#assertOpen();
    const entry = await this.#registry.toLoad(nameOrDir);
    for (const dep of this.#registry.dependenciesToLoad(entry)) await this.#service.load(dep);
    return this.#service.load(entry);
  }

  /**
   * Pauses a plugin: its `pause()` runs, then calls and hook deliveries are refused until
   * `resume()`. The worker stays up.
   *
   * @param name plugin name
   * @returns once paused
   * @throws {PluginError} ERR_STATE when the plugin is not active
   */
  async pause(name: string): Promise<void> {
    await pauseEntry(this.#registry.known(name, "pause"), this.hooks);
  }

  /**
   * Resumes a paused plugin.
   *
   * @param name plugin name
   * @returns once active again
   * @throws {PluginError} ERR_STATE when the plugin is not paused
   */
  async resume(name: string): Promise<void> {
    await resumeEntry(this.#registry.known(name, "resume"), this.hooks);
  }

  /**
   * Unloads a plugin: runs its `stop()` and `shutdown()` (with a deadline), then stops its worker.
   * A plugin other loaded plugins depend on needs `{ cascade: true }`.
   *
   * @param name plugin name
   * @param options cascade and reason
   * @returns once the worker is stopped
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND; ERR_DEPENDENCY when loaded plugins depend on it
   */
  async unload(name: string, options: UnloadOptions = {}): Promise<void> {
    await this.#service.unload(name, options);
  }

  /**
   * Unloads every loaded plugin, dependents before their dependencies.
   *
   * @returns once all are unloaded
   */
  async unloadAll(): Promise<void> {
    await this.#service.unloadAll();
  }

  /**
   * Reloads a loaded plugin from its directory without dropping calls: the new version is
   * verified and started, traffic switches to it, then the old worker finishes its in-flight
   * calls and stops. If anything fails, the old version keeps serving (rollback). If the plugin
   * defines `snapshot()`/`restore(state)`, the state is handed over (new calls wait meanwhile).
   *
   * @param name plugin name
   * @returns once the switch is done
   * @throws {PluginError} why the new version was refused (the old one still serves)
   */
  reload(name: string): Promise<void> {
    return reloadEntry(this.#registry.known(name, "reload"), this.#service);
  }

  /**
   * Watches loaded plugins' directories and hot-reloads a plugin when its files change. Polls
   * file sizes and modification times (portable across Deno, Bun and Node); a change must be
   * stable for one interval before the reload starts (debounce).
   *
   * @param options poll interval (default 500 ms)
   * @returns a function that stops watching; it also has `stop()`, like `startMonitor()`'s handle
   */
  watch(options: { intervalMs?: number } = {}): (() => void) & { stop(): void } {
    const stop = watchEntries({
      entries: () => this.#registry.entries(),
      reload: (name) => this.reload(name),
      isClosed: () => this.#closed,
      intervalMs: options.intervalMs ?? 500,
    });
    const done = this.#keep(stop);
    return Object.assign(() => done(), { stop: done });
  }

  /**
   * Clears a plugin's violations (the count toward auto-unmount).
   *
   * @param name plugin name
   */
  resetViolations(name: string): void {
    this.#registry.known(name, "reset violations of").record.violations.reset();
  }

  /**
   * Samples every loaded plugin periodically: worker heap (self-reported by the plugin thread)
   * feeds the metrics, and a heap above the limit is a violation.
   *
   * @param options sampling interval (default 1,000 ms)
   * @returns a handle with `stop()`
   */
  startMonitor(options: { intervalMs?: number } = {}): { stop(): void; sample(): Promise<void> } {
    const failures = this.#service.failures;
    const monitor = monitorEntries(
      () => this.#registry.entries(),
      (entry, v) => void failures.violation(entry, v),
      options.intervalMs ?? 1000,
    );
    return { stop: this.#keep(monitor.stop), sample: monitor.sample };
  }

  /**
   * Metrics of every known plugin.
   *
   * @returns one snapshot per plugin
   */
  metrics(): PluginMetricsSnapshot[] {
    return this.#registry.metrics();
  }

  /**
   * Prometheus text exposition (format 0.0.4) of every plugin's metrics and the host's.
   *
   * @returns the exposition text
   */
  metricsText(): string {
    return hostMetricsText(this.metrics(), this.loaded().length, this.#started);
  }

  /**
   * Unloads every plugin, stops watchers and monitors, and refuses further use.
   *
   * @returns once every worker is stopped
   */
  close(): Promise<void> {
    // Closed from the first moment: loads and reloads in progress stop at their next step and
    // stop what they started; then everything still loaded is unloaded.
    this.#closing ??= (async () => {
      this.#closed = true;
      for (const stop of this.#stops) stop();
      this.#stops.clear();
      await this.#service.settle();
      await this.#service.unloadAll();
      await this.#service.settle(); // failures handled while unloading, before the audit closes
      this.#audit?.close();
    })();
    return this.#closing;
  }

  /** Keeps `stop` until it is called or the host closes; returns the function that calls it. */
  #keep(stop: () => void): () => void {
    this.#stops.add(stop);
    return () => {
      stop();
      this.#stops.delete(stop);
    };
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new PluginError("ERR_HOST_CLOSED", "Cannot use the plugin host: it was closed", {
        hint: "Create a new PluginHost",
      });
    }
  }
}
