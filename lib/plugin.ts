/**
 * The handle `host.load()` returns. It stays valid across hot reloads: calls go to whichever
 * worker instance currently serves the plugin, and calls made while the host swaps instances wait
 * for the new one instead of failing.
 * @module
 */

import { PluginError } from "./errors.ts";
import type { Enforcement } from "../permissions/enforcement.ts";
import type { Manifest, ManifestLimits } from "./manifest.ts";
import type { Lifecycle, PluginState, Transition } from "./lifecycle.ts";
import type { PluginMetrics, PluginMetricsSnapshot } from "./metrics.ts";
import type { Violation, ViolationTracker } from "./violations.ts";
import type { PluginInstance } from "./tiers/types.ts";
import { KIND_CALL, KIND_HOOK, KIND_LIFECYCLE } from "./protocol/messages.ts";

/** Lifecycle states of a plugin. */
export type PluginStatus = PluginState;

/** The trust decision recorded for a plugin. */
export interface TrustInfo {
  /** `trusted`, `unsigned`, `untrusted`, `invalid`, `revoked` or `downgrade`. */
  state: string;
  /** Why, in a sentence. */
  reason: string;
  /** Id of the key that signed it, when signed. */
  keyId: string | undefined;
}

/** What the host knows about a plugin, loaded or not. */
export interface PluginInfo {
  /** Plugin name from `plugin.json`. */
  name: string;
  /** Semver version from `plugin.json` (of the instance loaded, once loaded). */
  version: string;
  /** The manifest's `description`, when declared. */
  description: string | undefined;
  /** The manifest's `author`, when declared. */
  author: string | undefined;
  /** Absolute path of the plugin directory. */
  path: string;
  /** Current lifecycle state (`available` until a load is attempted). */
  status: PluginStatus;
  /** Trust decision of the last load attempt. */
  trust: TrustInfo | undefined;
  /** SHA3-512 package digest (hex) of the last load attempt. */
  digest: string | undefined;
  /** Package size in bytes. */
  size: number | undefined;
  /** Newest modification time of plugin.json (epoch ms). */
  modifiedAt: number | undefined;
  /** What enforces each restriction (set once loaded). */
  enforcement: Enforcement | undefined;
  /** Resource limits from the manifest, defaults filled in. */
  limits: ManifestLimits;
  /** Permissions declared in the manifest, with absolute paths. */
  permissions: Manifest["permissions"];
  /** The last error, if the plugin failed or was refused. */
  lastError: { code: string; message: string } | undefined;
}

/** Mutable facts the host keeps for a plugin. */
export interface PluginRecord {
  manifest: Manifest;
  lifecycle: Lifecycle;
  metrics: PluginMetrics;
  violations: ViolationTracker;
  enforcement: Enforcement | undefined;
  trust: TrustInfo | undefined;
  digest: string | undefined;
  size: number | undefined;
  modifiedAt: number | undefined;
  lastError: PluginError | undefined;
}

/**
 * A loaded plugin.
 *
 * @example
 * ```ts
 * const p = await host.load("resizer");
 * const out = await p.call("resize", { width: 100 });
 * ```
 */
export class Plugin {
  #r: PluginRecord;
  #instance: PluginInstance | undefined;
  #gate: Promise<void> | undefined;

  /**
   * Wraps a host record. Internal: obtain plugins from `host.load()` rather than constructing them.
   *
   * @param record internal; created by the host
   */
  constructor(record: PluginRecord) {
    this.#r = record;
  }

  /** The plugin's name. */
  get name(): string {
    return this.#r.manifest.name;
  }

  /** The plugin's version (changes on hot reload). */
  get version(): string {
    return this.#r.manifest.version;
  }

  /** Current lifecycle state. */
  get status(): PluginStatus {
    return this.#r.lifecycle.state;
  }

  /** Method names the plugin exports. */
  get methods(): readonly string[] {
    return this.#instance?.ready?.methods ?? [];
  }

  /** Bounded history of state transitions, oldest first. */
  get history(): Transition[] {
    return this.#r.lifecycle.history;
  }

  /** Snapshot of what the host knows about this plugin. */
  get info(): PluginInfo {
    return recordInfo(this.#r);
  }

  /**
   * Calls one of the plugin's methods. Arguments and result are structured-cloned.
   *
   * @param method method name
   * @param args arguments
   * @returns the method's result
   * @throws {PluginError} ERR_CALL_TIMEOUT past the manifest's `cpuTimeMs`; ERR_PLUGIN_CRASHED when
   * the worker dies; ERR_METHOD_NOT_FOUND; ERR_PLUGIN_FAILED / ERR_PLUGIN_NOT_ACTIVE when the
   * plugin cannot take calls. Errors the plugin throws keep their `code`.
   * @example
   * ```ts
   * await plugin.call("add", 1, 2);
   * ```
   */
  call(method: string, ...args: unknown[]): Promise<unknown> {
    if (this.#gate !== undefined) return this.#gate.then(() => this.call(method, ...args));
    const instance = this.#instance;
    if (this.#r.lifecycle.state !== "active" || instance === undefined) {
      return Promise.reject(this.#notActive(`call "${method}"`));
    }
    const metrics = this.#r.metrics;
    const t0 = performance.now();
    return instance.send(KIND_CALL, method, args, this.#r.manifest.limits.cpuTimeMs).then(
      (value) => {
        metrics.recordCall(performance.now() - t0, "ok");
        return value;
      },
      (error: unknown) => {
        metrics.recordCall(performance.now() - t0, "error");
        throw error;
      },
    );
  }

  /**
   * Call and latency metrics, plus the last resource sample.
   *
   * @returns the plugin's metrics
   * @example
   * ```ts
   * plugin.metrics().p99Ms;
   * ```
   */
  metrics(): PluginMetricsSnapshot {
    this.#r.metrics.setViolationCount(this.#r.violations.total);
    return this.#r.metrics.snapshot();
  }

  /**
   * Violations recorded since the last reset (bounded list, oldest first).
   *
   * @returns the violations
   * @example
   * ```ts
   * plugin.violations().length;
   * ```
   */
  violations(): Violation[] {
    return this.#r.violations.list();
  }

  /** @internal The instance serving calls. */
  get instance(): PluginInstance | undefined {
    return this.#instance;
  }

  /** @internal */
  get record(): PluginRecord {
    return this.#r;
  }

  /** @internal Points the handle at a new instance. */
  attach(instance: PluginInstance | undefined): void {
    this.#instance = instance;
  }

  /** @internal Holds new calls until `release()` (used while swapping instances). */
  hold(): () => void {
    let release: () => void = () => {};
    this.#gate = new Promise<void>((resolve) => {
      release = () => {
        this.#gate = undefined;
        resolve();
      };
    });
    return release;
  }

  /** @internal Runs one of the plugin's hook handlers. */
  runHook(name: string, data: unknown, timeoutMs: number): Promise<unknown> {
    const instance = this.#instance;
    if (this.#r.lifecycle.state !== "active" || instance === undefined) {
      return Promise.reject(this.#notActive(`run hook "${name}"`));
    }
    return instance.send(KIND_HOOK, name, data, timeoutMs);
  }

  /** @internal Runs a lifecycle callback on the current instance. */
  lifecycle(name: string, timeoutMs: number, payload?: unknown): Promise<unknown> {
    const instance = this.#instance;
    if (instance === undefined) return Promise.resolve(undefined);
    return instance.send(KIND_LIFECYCLE, name, payload, timeoutMs);
  }

  #notActive(action: string): PluginError {
    const state = this.#r.lifecycle.state;
    if (state === "failed") {
      return new PluginError(
        "ERR_PLUGIN_FAILED",
        `Cannot ${action} on plugin "${this.name}": it failed (${
          this.#r.lastError?.code ?? "unknown"
        })`,
        { hint: "Load it again once the cause is fixed", plugin: this.name },
      );
    }
    return new PluginError(
      "ERR_PLUGIN_NOT_ACTIVE",
      `Cannot ${action} on plugin "${this.name}": it is ${state}`,
      { hint: state === "inactive" ? "Resume it first" : "Load it first", plugin: this.name },
    );
  }
}

/**
 * Builds the public info object from a record.
 *
 * @param r the host's record of a plugin
 * @returns the info snapshot
 */
export function recordInfo(r: PluginRecord): PluginInfo {
  const m = r.manifest;
  return {
    name: m.name,
    version: m.version,
    description: m.description,
    author: m.author,
    path: m.dir,
    status: r.lifecycle.state,
    trust: r.trust,
    digest: r.digest,
    size: r.size,
    modifiedAt: r.modifiedAt,
    enforcement: r.enforcement,
    limits: { ...m.limits },
    permissions: m.permissions,
    lastError: r.lastError === undefined
      ? undefined
      : { code: r.lastError.code, message: r.lastError.message },
  };
}
