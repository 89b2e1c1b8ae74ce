/**
 * Bringing plugins into service and retiring them: the load sequence, hook registration, pause
 * and resume, the stop steps and termination of an instance that no longer serves, and unloads
 * in dependency order. Load, unload and reload share these steps. Private helper of the host.
 * @module
 */

import { PluginError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { UnloadOptions } from "./options.ts";
import { Plugin, type PluginRecord } from "../plugin.ts";
import type { PluginInstance } from "../tiers/types.ts";
import type { Emitter, HostEvents } from "../events.ts";
import { HookPriority, type HookRegistry } from "../hooks.ts";
import { unloadOrder } from "../dependencies.ts";
import type { PreparedPackage } from "./_package.ts";
import { hasRecord, LOADED, type PluginEntry } from "./_entry.ts";
import type { Registry } from "./_registry.ts";
import { Starter, type StarterState } from "./_starter.ts";
import { type FailureDeps, Failures } from "./_failures.ts";
import { KIND_LIFECYCLE } from "../protocol/messages.ts";
import { Slots } from "./_slots.ts";
import { fingerprint } from "./_fingerprint.ts";

/** What the service reads from the host. */
export interface ServiceDeps extends StarterState, FailureDeps {
  events: Emitter<HostEvents>;
  hooks: HookRegistry;
  registry: Registry;
}

/** Puts plugins into service and retires them, for the host and its reload. */
export class Service {
  #deps: ServiceDeps;
  /** Verifies packages and starts instances. */
  readonly starter: Starter;
  /** Denials, violations, failed instances. */
  readonly failures: Failures;
  /** Loads in progress: a second load of the same plugin shares the first one's promise. */
  #loading = new Map<PluginEntry, Promise<Plugin>>();
  /** Bounds how many plugins start at once (`loadConcurrency`). */
  #slots: Slots;

  /** @param deps host options, state and services */
  constructor(deps: ServiceDeps) {
    this.#deps = deps;
    this.failures = new Failures(deps, this);
    this.#slots = new Slots(deps.options.loadConcurrency ?? 8);
    this.starter = new Starter(deps, {
      onDenied: (d) => this.failures.onDenied(d),
      violation: (entry, v) => this.failures.violation(entry, v),
      registerHook: (entry, hook) => this.registerHook(entry, hook),
      onFailure: (entry, inst, failure) => this.failures.onFailure(entry, inst, failure),
    });
  }

  /** The host's logger. */
  get logger(): Logger {
    return this.#deps.logger;
  }

  /** The host's events. */
  get events(): Emitter<HostEvents> {
    return this.#deps.events;
  }

  /** The host's hook registry. */
  get hooks(): HookRegistry {
    return this.#deps.hooks;
  }

  /** Deadline of each stop step (`shutdownTimeoutMs`, default 2,000 ms). */
  get shutdownTimeoutMs(): number {
    return this.#deps.options.shutdownTimeoutMs ?? 2000;
  }

  /**
   * Loads one plugin (its dependencies already loaded): verify, start, run `start`, register its
   * hooks, go active.
   *
   * @param entry the plugin's entry
   * @returns the running plugin
   * @throws {PluginError} why it could not be loaded (the entry is then failed or untrusted)
   */
  load(entry: PluginEntry): Promise<Plugin> {
    const running = this.#loading.get(entry);
    if (running !== undefined) return running;
    const load = this.#load(entry).finally(() => this.#loading.delete(entry));
    this.#loading.set(entry, load);
    return load;
  }

  /**
   * Waits until no load or reload is in progress (the host is closing: none can start).
   *
   * @returns once every load and reload settled
   */
  async settle(): Promise<void> {
    this.failures.cancelRestarts();
    const reloads = [...this.#deps.registry.entries()].map((e) => e.reloading);
    await Promise.allSettled([...this.#loading.values(), ...reloads, this.failures.idle()]);
  }

  async #load(entry: PluginEntry): Promise<Plugin> {
    const { record } = entry;
    const name = record.manifest.name;
    const t0 = performance.now();
    record.lifecycle.transition("loading", "load requested");
    this.events.emit("before_load", { plugin: name });
    let prepared: PreparedPackage | undefined;
    let instance: PluginInstance | undefined;
    const release = await this.#slots.acquire();
    // Taken before the files are read, so that the watcher compares with what was loaded (an
    // edit during the load then reloads once, never goes unseen).
    const before = await fingerprint(entry.dir).catch(() => undefined);
    try {
      this.assertOpen(name);
      prepared = await this.starter.prepare(entry);
      this.adopt(entry, prepared);
      instance = await this.starter.startInstance(entry, prepared);
      entry.plugin ??= new Plugin(record);
      entry.plugin.attach(instance);
      await entry.cleanup?.();
      entry.cleanup = prepared.cleanup;
      await this.start(instance, record);
      this.assertOpen(name);
      // Recording the trusted version is part of the load: if it fails, nothing stays running.
      await this.recordLoad(record, false);
    } catch (error) {
      release();
      await instance?.terminate(closedOr(error, name));
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
      if (entry.cleanup === prepared?.cleanup) entry.cleanup = undefined;
      this.failures.report("load", name, e, { ok: false, code: e.code, message: e.message });
      if (e.code === "ERR_CALL_TIMEOUT") {
        const limit = this.#deps.options.loadTimeoutMs ?? 10_000;
        this.failures.violation(entry, { type: "timeout", used: limit + 1, limit });
      }
      throw e;
    }
    release();
    record.lastError = undefined;
    this.registerHooks(entry, entry.plugin.instance);
    record.lifecycle.transition("active", "loaded");
    entry.fingerprint = before;
    this.events.emit("after_load", { plugin: name, durationMs: performance.now() - t0 });
    this.logger.info(`Loaded plugin "${name}" ${record.manifest.version}`, { plugin: name });
    void this.hooks.runParallel("on_plugin_load", { plugin: name }).catch(() => {});
    return entry.plugin;
  }

  /**
   * Refuses to go on once the host is closing.
   *
   * @param name the plugin being (re)loaded
   * @throws {PluginError} ERR_HOST_CLOSED
   */
  assertOpen(name: string): void {
    if (!this.#deps.isClosed()) return;
    throw new PluginError("ERR_HOST_CLOSED", `Cannot load plugin "${name}": the host is closing`, {
      hint: "Create a new PluginHost",
      plugin: name,
    });
  }

  /**
   * Takes the verified package's manifest, with the effective limits, as the plugin's.
   *
   * @param entry the plugin's entry
   * @param prepared the verified package
   * @throws {PluginError} ERR_LIMITS when a limit exceeds the host bound
   */
  adopt(entry: PluginEntry, prepared: PreparedPackage): void {
    entry.record.manifest = this.starter.effectiveLimits(prepared.manifest);
    entry.manifest = prepared.manifest;
  }

  /**
   * Runs the instance's `start()`, when it has one.
   *
   * @param instance the new instance
   * @param record the plugin's record (for the deadline)
   * @returns once started
   */
  async start(instance: PluginInstance, record: PluginRecord): Promise<void> {
    if (instance.ready?.lifecycle.includes("start")) {
      await instance.send(KIND_LIFECYCLE, "start", undefined, record.manifest.limits.cpuTimeMs);
    }
  }

  /**
   * Records a successful (re)load: the trusted version (rollback protection) and the audit line.
   *
   * @param record the plugin's record
   * @param reload whether this was a reload
   * @returns once the trust list is saved
   */
  async recordLoad(record: PluginRecord, reload: boolean): Promise<void> {
    await this.starter.recordTrustedVersion(record);
    this.#deps.audit?.write("load", record.manifest.name, {
      ok: true,
      ...(reload ? { reload: true } : {}),
      version: record.manifest.version,
      digest: record.digest,
    });
  }

  /**
   * Registers the hooks an instance declared, for the entry's plugin.
   *
   * @param entry the plugin's entry
   * @param instance the instance serving the plugin
   */
  registerHooks(entry: PluginEntry, instance: PluginInstance | undefined): void {
    for (const hook of instance?.ready?.hooks ?? []) this.registerHook(entry, hook);
  }

  /**
   * Registers one hook of the entry's plugin.
   *
   * @param entry the plugin's entry
   * @param hook hook name
   */
  registerHook(entry: PluginEntry, hook: string): void {
    const plugin = entry.plugin;
    if (plugin === undefined) return;
    const record = entry.record;
    const name = record.manifest.name;
    const priority = entry.hookPriorities.get(hook) ?? record.manifest.hooks[hook] ??
      HookPriority.NORMAL;
    const timeoutMs = this.#deps.options.hookTimeoutMs ?? 5000;
    // One registration per hook and plugin: a hook exported in `hooks` and registered again
    // with ctx.hooks.on (or registered twice) replaces the old one, with the newest priority.
    entry.hookUnregister.get(hook)?.();
    entry.hookUnregister.set(
      hook,
      this.hooks.register(hook, {
        plugin: name,
        priority,
        handler: (data: unknown) => plugin.runHook(hook, data, timeoutMs),
      }),
    );
  }

  /**
   * Unregisters every hook of the entry's plugin.
   *
   * @param entry the plugin's entry
   */
  removeHooks(entry: PluginEntry): void {
    for (const u of entry.hookUnregister.values()) u();
    entry.hookUnregister.clear();
    this.hooks.removePlugin(entry.record.manifest.name);
  }

  /**
   * Runs the stop steps an instance declares (`stop`, `shutdown`), each under the shutdown
   * deadline, until one fails.
   *
   * @param instance the instance
   * @param steps lifecycle steps, in order
   * @returns the step that failed and why, or undefined
   */
  async stopSteps(
    instance: PluginInstance,
    steps: readonly string[],
  ): Promise<{ step: string; error: unknown } | undefined> {
    for (const step of steps) {
      if (!instance.ready?.lifecycle.includes(step)) continue;
      try {
        await instance.send(KIND_LIFECYCLE, step, undefined, this.shutdownTimeoutMs);
      } catch (error) {
        return { step, error };
      }
    }
    return undefined;
  }

  /** Unloads the entry's plugin, its dependents already unloaded. */
  async #retire(entry: PluginEntry, reason: string): Promise<void> {
    const { record } = entry;
    const name = record.manifest.name;
    this.events.emit("before_unload", { plugin: name, reason });
    const wasLoaded = LOADED.includes(record.lifecycle.state);
    record.lifecycle.transition("unloading", reason);
    this.removeHooks(entry);
    const instance = entry.plugin?.instance;
    if (wasLoaded && instance !== undefined) {
      const failed = await this.stopSteps(instance, ["stop", "shutdown"]);
      if (failed !== undefined) {
        this.logger.warn(
          `Plugin "${name}" ${failed.step} did not finish cleanly: ${
            (failed.error as Error).message
          }`,
          { plugin: name },
        );
      }
    }
    entry.plugin?.attach(undefined);
    await instance?.terminate(retiredError(name, "unloaded"));
    await entry.cleanup?.();
    entry.cleanup = undefined;
    record.lifecycle.transition("unloaded", reason);
    this.#deps.audit?.write("unload", name, { reason });
    this.events.emit("after_unload", { plugin: name, reason });
    void this.hooks.runParallel("on_plugin_unload", { plugin: name }).catch(() => {});
  }

  /**
   * Unloads a plugin (and, with `cascade`, first the loaded plugins that depend on it).
   *
   * @param name plugin name
   * @param options cascade and reason
   * @returns once its instance is stopped
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND; ERR_DEPENDENCY when loaded plugins depend on it
   */
  async unload(name: string, options: UnloadOptions): Promise<void> {
    const entry = this.#deps.registry.known(name, "unload");
    // A load or reload in progress finishes first; then what it left running is retired.
    await this.#loading.get(entry)?.catch(() => {});
    await entry.reloading?.catch(() => {});
    const reason = options.reason ?? "unload requested";
    const state = entry.record.lifecycle.state;
    if (state === "unloaded" || state === "available" || state === "untrusted") return;
    const dependents = this.#deps.registry.loadedDependents(name);
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
    await this.#retire(entry, reason);
  }

  /**
   * Unloads every loaded plugin, dependents before their dependencies; logs those that fail.
   *
   * @returns once all are unloaded
   */
  async unloadAll(): Promise<void> {
    const registry = this.#deps.registry;
    const names = [...registry.entries()]
      .filter(hasRecord)
      .filter((e) => !["unloaded", "available", "untrusted"].includes(e.record.lifecycle.state))
      .map((e) => e.record.manifest.name);
    for (const name of unloadOrder(names, registry.catalog())) {
      await this.unload(name, { reason: "unload all", cascade: true }).catch((e) =>
        this.logger.error(`Unload of "${name}" failed: ${(e as Error).message}`, {})
      );
    }
  }
}

/** The error to stop a half-started instance with. */
function closedOr(error: unknown, name: string): PluginError {
  return error instanceof PluginError
    ? error
    : new PluginError("ERR_PLUGIN_INIT", `Cannot load plugin "${name}": its start failed`, {
      plugin: name,
    });
}

/**
 * The error the pending calls of an instance that no longer serves fail with.
 *
 * @param name plugin name
 * @param how `unloaded` or `replaced` (by a reload)
 * @returns an ERR_PLUGIN_NOT_ACTIVE error
 */
export function retiredError(name: string, how: "unloaded" | "replaced"): PluginError {
  return new PluginError(
    "ERR_PLUGIN_NOT_ACTIVE",
    `Cannot finish call: plugin "${name}" was ${how}`,
    { plugin: name },
  );
}
