/**
 * The plugin host: discovers plugins, verifies and loads each into its own worker with
 * permissions derived from its manifest, brokers its context, runs hooks, tracks lifecycle,
 * dependencies, limits and metrics, hot-reloads, and keeps serving when a plugin fails.
 *
 * @example
 * ```ts
 * import { PluginHost } from "./host.ts";
 * const host = new PluginHost({ pluginDirs: ["./plugins"], context: { config: { greeting: "hi" } } });
 * await host.discover();
 * const p = await host.load("hello");
 * console.log(await p.call("greet", "Ada"));
 * await host.close();
 * ```
 * @module
 */

import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PluginError } from "./errors.ts";
import type { Manifest } from "./manifest.ts";
import { type Logger, SILENT_LOGGER } from "./logger.ts";
import type { HostOptions, UnloadOptions } from "./host_options.ts";
import { Plugin, type PluginInfo, type PluginRecord } from "./plugin.ts";
import type { Denial } from "./context.ts";
import type { InstanceFailure, PluginInstance } from "./tiers/types.ts";
import { Lifecycle, type PluginState } from "./lifecycle.ts";
import { Emitter, type HostEvents } from "./events.ts";
import { HookPriority, HookRegistry } from "./hooks.ts";
import { dependentsOf, resolveLoadOrder, unloadOrder } from "./dependencies.ts";
import { PluginMetrics, type PluginMetricsSnapshot, renderPrometheus } from "./metrics.ts";
import { ViolationTracker, type ViolationType } from "./violations.ts";
import { AuditLog } from "./audit.ts";
import type { PreparedPackage } from "./_package.ts";
import { watchEntries } from "./_watch.ts";
import { sampleEntries } from "./_monitor.ts";
import { type Entry, LOADED } from "./_entry.ts";
import { buildCatalog, countStates, entryInfo, registerDir } from "./_registry.ts";
import { type ReloadDeps, reloadEntry } from "./_reload.ts";
import { Starter } from "./_starter.ts";
import { resolvePolicy, type TrustPolicy } from "./trust/policy.ts";
import { detectRuntime, runtimeVersion } from "./runtime/detect.ts";
import { KIND_LIFECYCLE } from "./worker/protocol.ts";

export { HOST_API_VERSION } from "./host_options.ts";
export type { HostOptions, TrustOptions, UnloadOptions } from "./host_options.ts";

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
  #entries = new Map<string, Entry>();
  #store: Map<string, unknown>;
  #logger: Logger;
  #closed = false;
  #policy: TrustPolicy;
  #starter: Starter;
  #audit: AuditLog | undefined;
  #timers = new Set<ReturnType<typeof setInterval>>();
  #watchers = new Set<{ stop(): void }>();
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
   */
  constructor(options: HostOptions = {}) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#store = new Map(Object.entries(options.context ?? {}));
    this.#policy = resolvePolicy(options.policy ?? (options.trust ? "standard" : "development"));
    this.#audit = options.audit === undefined ? undefined : new AuditLog(options.audit);
    this.events = new Emitter<HostEvents>({
      onListenerError: (error, event) =>
        this.#logger.error(`A "${event}" listener threw: ${(error as Error)?.message}`, {}),
    });
    this.hooks = new HookRegistry({
      timeoutMs: options.hookTimeoutMs ?? 5000,
      onHandlerError: (error) =>
        this.#logger.warn(`Hook handler failed: ${(error as Error).message}`, {}),
    });
    this.#starter = new Starter(
      {
        options,
        policy: this.#policy,
        store: this.#store,
        logger: this.#logger,
        audit: this.#audit,
      },
      {
        onDenied: (d) => this.#onDenied(d),
        violation: (entry, v) => this.#violation(entry, v),
        registerHook: (entry, hook) => this.#registerHook(entry, hook),
        onFailure: (entry, inst, failure) => this.#onFailure(entry, inst, failure),
      },
    );
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
   * @example
   * ```ts
   * for (const info of await host.discover()) console.log(info.name, info.status);
   * ```
   */
  async discover(): Promise<PluginInfo[]> {
    this.#assertOpen();
    const found = new Map<string, string>();
    for (const root of this.#options.pluginDirs ?? []) {
      const abs = resolve(root);
      let names: string[];
      try {
        names = (await readdir(abs)).sort();
      } catch (cause) {
        throw new PluginError(
          "ERR_PLUGIN_NOT_FOUND",
          `Cannot discover plugins: directory "${abs}" is unreadable`,
          {
            hint: "Fix pluginDirs",
            cause,
          },
        );
      }
      for (const n of names) {
        const dir = join(abs, n);
        try {
          if (!(await stat(join(dir, "plugin.json"))).isFile()) continue;
        } catch {
          continue;
        }
        await registerDir(this.#entries, dir, found, (m) => this.#newRecord(m));
      }
    }
    return this.list();
  }

  #newRecord(manifest: Manifest): PluginRecord {
    const name = manifest.name;
    return {
      manifest,
      lifecycle: new Lifecycle(name, {
        onStateChange: (change) => this.events.emit("state_change", change),
      }),
      metrics: new PluginMetrics(name),
      violations: new ViolationTracker(name, {
        ...this.#options.unmount,
        logger: { warn: (m: string, d: unknown) => this.#logger.warn(m, { details: d }) },
      }),
      enforcement: undefined,
      trust: undefined,
      digest: undefined,
      size: undefined,
      modifiedAt: undefined,
      lastError: undefined,
    };
  }

  /**
   * Every known plugin.
   *
   * @returns a snapshot of each plugin's info
   * @example
   * ```ts
   * host.list().filter((p) => p.status === "active");
   * ```
   */
  list(): PluginInfo[] {
    return [...this.#entries.values()].map((e) => entryInfo(e));
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

  /**
   * Info about one plugin.
   *
   * @param name plugin name
   * @returns its info, or undefined when unknown
   */
  info(name: string): PluginInfo | undefined {
    const e = this.#entries.get(name);
    return e === undefined ? undefined : entryInfo(e);
  }

  /**
   * Whether the plugin is loaded (active or paused).
   *
   * @param name plugin name
   * @returns true when loaded
   */
  isLoaded(name: string): boolean {
    const s = this.#entries.get(name)?.record?.lifecycle.state;
    return s !== undefined && LOADED.includes(s);
  }

  /**
   * How many plugins are in each state.
   *
   * @returns counts by state, plus `total`
   */
  counts(): Record<PluginState | "total", number> {
    return countStates(this.list());
  }

  /**
   * The loaded (active or paused) plugin with that name.
   *
   * @param name plugin name
   * @returns the plugin handle or undefined
   * @example
   * ```ts
   * await host.get("hello")?.call("greet");
   * ```
   */
  get(name: string): Plugin | undefined {
    const e = this.#entries.get(name);
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
   * ERR_PLUGIN_INIT, ERR_CALL_TIMEOUT
   * @example
   * ```ts
   * const p = await host.load("hello");
   * ```
   */
  async load(nameOrDir: string): Promise<Plugin> {
    this.#assertOpen();
    let entry = this.#entries.get(nameOrDir);
    if (entry === undefined && /[\\/]|^\./.test(nameOrDir)) {
      entry = await registerDir(
        this.#entries,
        resolve(nameOrDir),
        new Map(),
        (m) => this.#newRecord(m),
      );
    }
    if (entry === undefined) {
      throw new PluginError(
        "ERR_PLUGIN_NOT_FOUND",
        `Cannot load plugin "${nameOrDir}": it was not discovered`,
        {
          hint: "Call discover() first, check pluginDirs, or pass the plugin's directory",
        },
      );
    }
    if (entry.manifest === undefined) {
      throw entry.manifestError ??
        new PluginError("ERR_MANIFEST_INVALID", `Cannot load plugin in "${entry.dir}"`);
    }
    const name = entry.manifest.name;
    if (entry.plugin !== undefined && LOADED.includes(entry.plugin.status)) {
      throw new PluginError(
        "ERR_DUPLICATE",
        `Cannot load plugin "${name}": it is already ${entry.plugin.status}`,
        {
          hint: "Unload it first, or use reload()",
          plugin: name,
        },
      );
    }
    const order = resolveLoadOrder([name], buildCatalog(this.#entries.values()));
    for (const dep of order) {
      if (dep === name || this.isLoaded(dep)) continue;
      await this.#loadOne(this.#entries.get(dep) as Entry);
    }
    return this.#loadOne(entry);
  }

  async #loadOne(entry: Entry): Promise<Plugin> {
    const record = entry.record as PluginRecord;
    const name = record.manifest.name;
    const t0 = performance.now();
    record.lifecycle.transition("loading", "load requested");
    this.events.emit("before_load", { plugin: name });
    let prepared: PreparedPackage | undefined;
    try {
      prepared = await this.#starter.prepare(entry);
      record.manifest = this.#starter.effectiveLimits(prepared.manifest);
      entry.manifest = prepared.manifest;
      const instance = await this.#starter.startInstance(entry, prepared);
      entry.plugin ??= new Plugin(record);
      entry.plugin.attach(instance);
      await entry.cleanup?.();
      entry.cleanup = prepared.cleanup;
      if (instance.ready?.lifecycle.includes("start")) {
        await instance.send(KIND_LIFECYCLE, "start", undefined, record.manifest.limits.cpuTimeMs);
      }
    } catch (error) {
      await prepared?.cleanup();
      const e = error instanceof PluginError ? error : new PluginError(
        "ERR_PLUGIN_INIT",
        `Cannot load plugin "${name}": ${(error as Error).message}`,
        {
          cause: error,
          plugin: name,
        },
      );
      record.lastError = e;
      const trustFailure = ["ERR_UNTRUSTED", "ERR_SIGNATURE_INVALID", "ERR_DOWNGRADE"].includes(
        e.code,
      );
      record.lifecycle.transition(trustFailure ? "untrusted" : "failed", e.message);
      entry.plugin?.attach(undefined);
      this.#audit?.write("load", name, { ok: false, code: e.code, message: e.message });
      this.events.emit("error", { plugin: name, error: e });
      throw e;
    }
    record.lastError = undefined;
    for (const hook of entry.plugin.instance?.ready?.hooks ?? []) this.#registerHook(entry, hook);
    record.lifecycle.transition("active", "loaded");
    entry.fingerprint = undefined;
    await this.#starter.recordTrustedVersion(record);
    this.#audit?.write("load", name, {
      ok: true,
      version: record.manifest.version,
      digest: record.digest,
    });
    this.events.emit("after_load", { plugin: name, durationMs: performance.now() - t0 });
    this.#logger.info(`Loaded plugin "${name}" ${record.manifest.version}`, { plugin: name });
    void this.hooks.runParallel("on_plugin_load", { plugin: name }).catch(() => {});
    return entry.plugin;
  }

  #registerHook(entry: Entry, hook: string): void {
    const plugin = entry.plugin;
    const record = entry.record;
    if (plugin === undefined || record === undefined) return;
    const name = record.manifest.name;
    const priority = entry.hookPriorities.get(hook) ?? record.manifest.hooks[hook] ??
      HookPriority.NORMAL;
    const timeoutMs = this.#options.hookTimeoutMs ?? 5000;
    entry.hookUnregister.push(
      this.hooks.register(hook, {
        plugin: name,
        priority,
        handler: (data: unknown) => plugin.runHook(hook, data, timeoutMs),
      }),
    );
  }

  #removeHooks(entry: Entry): void {
    for (const u of entry.hookUnregister.splice(0)) u();
    if (entry.record) this.hooks.removePlugin(entry.record.manifest.name);
  }

  #onDenied(d: Denial): void {
    this.#logger.warn(`Permission denied for plugin "${d.plugin}": ${d.what} ${d.target}`, {
      ...d,
    });
    this.#audit?.write("permission_denied", d.plugin, { what: d.what, target: d.target });
    this.events.emit("violation", {
      plugin: d.plugin,
      kind: `permission:${d.what}`,
      detail: d.target,
    });
    this.#options.onDenied?.(d);
  }

  #violation(entry: Entry, v: { type: ViolationType; used: number; limit: number }): boolean {
    const record = entry.record as PluginRecord;
    const name = record.manifest.name;
    const crossed = record.violations.record(v);
    this.#audit?.write("violation", name, { type: v.type, used: v.used, limit: v.limit });
    this.events.emit("violation", { plugin: name, kind: v.type, detail: `${v.used} > ${v.limit}` });
    if (crossed && record.violations.behavior.autoUnmount) {
      void this.#unmount(entry);
      return true;
    }
    return false;
  }

  async #unmount(entry: Entry): Promise<void> {
    const record = entry.record as PluginRecord;
    const name = record.manifest.name;
    const reason =
      `auto-unmount: ${record.violations.count} violations (threshold ${record.violations.behavior.threshold})`;
    this.#audit?.write("unmount", name, { violations: record.violations.count });
    this.#logger.error(`Unmounting plugin "${name}": ${reason}`, { plugin: name });
    const state = record.lifecycle.state;
    if (state === "active" || state === "inactive" || state === "failed") {
      await this.unload(name, { reason, cascade: true }).catch(() => {});
    }
  }

  async #onFailure(
    entry: Entry,
    instance: PluginInstance,
    failure: InstanceFailure,
  ): Promise<void> {
    const plugin = entry.plugin;
    const record = entry.record as PluginRecord;
    if (plugin === undefined || plugin.instance !== instance) {
      // An instance being started or replaced: its caller handles the error.
      await instance.terminate(failure.error);
      return;
    }
    const name = record.manifest.name;
    record.lastError = failure.error;
    this.#removeHooks(entry);
    if (LOADED.includes(record.lifecycle.state)) {
      record.lifecycle.transition("failed", failure.error.message);
    }
    plugin.attach(undefined);
    this.#logger.error(`Plugin "${name}" failed: ${failure.error.message}`, {
      plugin: name,
      code: failure.error.code,
    });
    this.#audit?.write("crash", name, { kind: failure.kind, code: failure.error.code });
    this.events.emit("error", { plugin: name, error: failure.error });
    await instance.terminate(failure.error);
    const limits = record.manifest.limits;
    const unmounted = this.#violation(entry, {
      type: failure.kind,
      used: failure.kind === "heap"
        ? limits.heapMb
        : failure.kind === "timeout"
        ? limits.cpuTimeMs + 1
        : 1,
      limit: failure.kind === "heap"
        ? limits.heapMb
        : failure.kind === "timeout"
        ? limits.cpuTimeMs
        : 0,
    });
    if (!unmounted && this.#options.restartOnFailure === true && !this.#closed) {
      await this.#loadOne(entry).catch((e) =>
        this.#logger.error(`Restart of "${name}" failed: ${(e as Error).message}`, {})
      );
    }
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
    const entry = this.#loadedEntry(name, "pause");
    const record = entry.record as PluginRecord;
    record.lifecycle.transition("inactive", "paused");
    this.hooks.pausePlugin(name);
    await entry.plugin?.lifecycle("pause", record.manifest.limits.cpuTimeMs).catch(() => {});
  }

  /**
   * Resumes a paused plugin.
   *
   * @param name plugin name
   * @returns once active again
   * @throws {PluginError} ERR_STATE when the plugin is not paused
   */
  async resume(name: string): Promise<void> {
    const entry = this.#loadedEntry(name, "resume");
    const record = entry.record as PluginRecord;
    if (record.lifecycle.state !== "inactive") {
      throw new PluginError(
        "ERR_STATE",
        `Cannot resume plugin "${name}": it is ${record.lifecycle.state}`,
        { hint: "Only a paused plugin can resume", plugin: name },
      );
    }
    await entry.plugin?.lifecycle("resume", record.manifest.limits.cpuTimeMs).catch(() => {});
    this.hooks.resumePlugin(name);
    record.lifecycle.transition("active", "resumed");
  }

  #loadedEntry(name: string, action: string): Entry {
    const entry = this.#entries.get(name);
    if (entry?.record === undefined) {
      throw new PluginError(
        "ERR_PLUGIN_NOT_FOUND",
        `Cannot ${action} plugin "${name}": it is unknown`,
        { hint: "Check host.list()" },
      );
    }
    return entry;
  }

  /**
   * Unloads a plugin: runs its `stop()` and `shutdown()` (with a deadline), then stops its worker.
   * A plugin other loaded plugins depend on needs `{ cascade: true }`.
   *
   * @param name plugin name
   * @param options cascade and reason
   * @returns once the worker is stopped
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND; ERR_DEPENDENCY when loaded plugins depend on it
   * @example
   * ```ts
   * await host.unload("hello");
   * ```
   */
  async unload(name: string, options: UnloadOptions = {}): Promise<void> {
    const entry = this.#loadedEntry(name, "unload");
    const record = entry.record as PluginRecord;
    const reason = options.reason ?? "unload requested";
    const state = record.lifecycle.state;
    if (state === "unloaded" || state === "available" || state === "untrusted") return;
    const dependents = dependentsOf(name, buildCatalog(this.#entries.values())).filter((d) =>
      this.isLoaded(d)
    );
    if (dependents.length > 0) {
      if (options.cascade !== true) {
        throw new PluginError(
          "ERR_DEPENDENCY",
          `Cannot unload plugin "${name}": ${
            dependents.map((d) => `"${d}"`).join(", ")
          } depend on it`,
          {
            hint: "Unload them first, or pass { cascade: true }",
            plugin: name,
          },
        );
      }
      for (const d of dependents) await this.unload(d, { reason: `cascade from "${name}"` });
    }
    this.events.emit("before_unload", { plugin: name, reason });
    const wasLoaded = LOADED.includes(record.lifecycle.state);
    record.lifecycle.transition("unloading", reason);
    this.#removeHooks(entry);
    const instance = entry.plugin?.instance;
    if (wasLoaded && instance !== undefined) {
      const deadline = this.#options.shutdownTimeoutMs ?? 2000;
      for (const step of ["stop", "shutdown"]) {
        if (!instance.ready?.lifecycle.includes(step)) continue;
        try {
          await instance.send(KIND_LIFECYCLE, step, undefined, deadline);
        } catch (error) {
          this.#logger.warn(
            `Plugin "${name}" ${step} did not finish cleanly: ${(error as Error).message}`,
            { plugin: name },
          );
          break;
        }
      }
    }
    entry.plugin?.attach(undefined);
    await instance?.terminate(
      new PluginError(
        "ERR_PLUGIN_NOT_ACTIVE",
        `Cannot finish call: plugin "${name}" was unloaded`,
        { plugin: name },
      ),
    );
    await entry.cleanup?.();
    entry.cleanup = undefined;
    record.lifecycle.transition("unloaded", reason);
    this.#audit?.write("unload", name, { reason });
    this.events.emit("after_unload", { plugin: name, reason });
    void this.hooks.runParallel("on_plugin_unload", { plugin: name }).catch(() => {});
  }

  /**
   * Unloads every loaded plugin, dependents before their dependencies.
   *
   * @returns once all are unloaded
   */
  async unloadAll(): Promise<void> {
    const names = [...this.#entries.values()]
      .filter((e) =>
        e.record !== undefined &&
        !["unloaded", "available", "untrusted"].includes(e.record.lifecycle.state)
      )
      .map((e) => (e.record as PluginRecord).manifest.name);
    for (const name of unloadOrder(names, buildCatalog(this.#entries.values()))) {
      await this.unload(name, { reason: "unload all", cascade: true }).catch((e) =>
        this.#logger.error(`Unload of "${name}" failed: ${(e as Error).message}`, {})
      );
    }
  }

  #reloadDeps(): ReloadDeps {
    return {
      prepare: (e) => this.#starter.prepare(e),
      startInstance: (e, p) => this.#starter.startInstance(e, p),
      removeHooks: (e) => this.#removeHooks(e),
      registerHook: (e, h) => this.#registerHook(e, h),
      effectiveLimits: (m) => this.#starter.effectiveLimits(m),
      recordTrustedVersion: (r) => this.#starter.recordTrustedVersion(r),
      audit: this.#audit,
      logger: this.#logger,
      events: this.events,
      hooks: this.hooks,
      shutdownTimeoutMs: this.#options.shutdownTimeoutMs ?? 2000,
    };
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
    const entry = this.#loadedEntry(name, "reload");
    if (entry.reloading !== undefined) {
      entry.reloadAgain = true;
      return entry.reloading;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          entry.reloadAgain = false;
          await reloadEntry(entry, this.#reloadDeps());
        } while (entry.reloadAgain);
      } finally {
        entry.reloading = undefined;
      }
    };
    entry.reloading = run();
    return entry.reloading;
  }

  /**
   * Watches loaded plugins' directories and hot-reloads a plugin when its files change. Polls
   * file sizes and modification times (portable across Deno, Bun and Node); a change must be
   * stable for one interval before the reload starts (debounce).
   *
   * @param options poll interval (default 500 ms)
   * @returns a function that stops watching
   */
  watch(options: { intervalMs?: number } = {}): () => void {
    const stop = watchEntries({
      entries: () => this.#entries.values(),
      reload: (name) => this.reload(name),
      isClosed: () => this.#closed,
      intervalMs: options.intervalMs ?? 500,
    });
    const timer = { stop };
    this.#watchers.add(timer);
    return () => {
      stop();
      this.#watchers.delete(timer);
    };
  }

  /**
   * Clears a plugin's violations (the count toward auto-unmount).
   *
   * @param name plugin name
   */
  resetViolations(name: string): void {
    this.#loadedEntry(name, "reset violations of").record?.violations.reset();
  }

  /**
   * Samples every loaded plugin periodically: worker heap (self-reported by the plugin thread)
   * feeds the metrics, and a heap above the limit is a violation.
   *
   * @param options sampling interval (default 1,000 ms)
   * @returns a handle with `stop()`
   */
  startMonitor(options: { intervalMs?: number } = {}): { stop(): void; sample(): Promise<void> } {
    const sample = () =>
      sampleEntries(this.#entries.values(), (entry, v) => void this.#violation(entry, v));
    const timer = setInterval(() => void sample(), options.intervalMs ?? 1000);
    this.#timers.add(timer);
    return {
      stop: () => {
        clearInterval(timer);
        this.#timers.delete(timer);
      },
      sample,
    };
  }

  /**
   * Metrics of every known plugin.
   *
   * @returns one snapshot per plugin
   */
  metrics(): PluginMetricsSnapshot[] {
    return [...this.#entries.values()].flatMap((e) => {
      if (e.record === undefined) return [];
      e.record.metrics.setViolationCount(e.record.violations.total);
      return [e.record.metrics.snapshot()];
    });
  }

  /**
   * Prometheus text exposition (format 0.0.4) of every plugin's metrics and the host's.
   *
   * @returns the exposition text
   */
  metricsText(): string {
    const mem = process.memoryUsage();
    return renderPrometheus(this.metrics(), {
      plugins: this.loaded().length,
      uptimeSeconds: (Date.now() - this.#started) / 1000,
      residentBytes: mem.rss,
      heapBytes: mem.heapUsed,
      runtime: { name: detectRuntime(), version: runtimeVersion() },
    });
  }

  /**
   * Unloads every plugin, stops watchers and monitors, and refuses further use.
   *
   * @returns once every worker is stopped
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
    for (const w of this.#watchers) w.stop();
    this.#watchers.clear();
    await this.unloadAll();
    this.#closed = true;
    this.#audit?.close();
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new PluginError("ERR_HOST_CLOSED", "Cannot use the plugin host: it was closed", {
        hint: "Create a new PluginHost",
      });
    }
  }
}
