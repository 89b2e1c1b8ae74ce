/**
 * What the host does when a plugin misbehaves: a refused permission, a crossed limit (counted
 * toward auto-unmount), a crashed or timed-out instance (the plugin fails, and restarts when
 * `restartOnFailure` says so). Private helper of the host.
 * @module
 */

import type { PluginError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { HostOptions, UnloadOptions } from "./options.ts";
import type { Denial } from "../broker/context.ts";
import type { InstanceFailure, PluginInstance } from "../tiers/types.ts";
import type { Emitter, HostEvents } from "../events.ts";
import type { ViolationType } from "../violations.ts";
import type { AuditLog } from "../audit.ts";
import { LOADED, type PluginEntry } from "./_entry.ts";

/** What failure handling reads from the host. */
export interface FailureDeps {
  options: HostOptions;
  logger: Logger;
  audit: AuditLog | undefined;
  events: Emitter<HostEvents>;
  isClosed(): boolean;
}

/** What failure handling asks of the service that brings plugins into service. */
export interface FailureHost {
  removeHooks(entry: PluginEntry): void;
  load(entry: PluginEntry): Promise<unknown>;
  unload(name: string, options: UnloadOptions): Promise<void>;
}

/** Handles denials, violations and failed instances for the host. */
export class Failures {
  #deps: FailureDeps;
  #host: FailureHost;
  #sleepers = new Set<() => void>();
  #handling = new Set<Promise<void>>();

  /**
   * @param deps host options, logger, audit log, events
   * @param host how to stop, restart and unload a plugin
   */
  constructor(deps: FailureDeps, host: FailureHost) {
    this.#deps = deps;
    this.#host = host;
  }

  /**
   * Audits an error of a plugin and emits it as an `error` event.
   *
   * @param action the audit action (`load` or `crash`)
   * @param name plugin name
   * @param error the error
   * @param details the audit details
   */
  report(
    action: "load" | "crash",
    name: string,
    error: PluginError,
    details: Record<string, unknown>,
  ): void {
    this.#deps.audit?.write(action, name, details);
    this.#deps.events.emit("error", { plugin: name, error });
  }

  /**
   * Reports a refused permission: log, audit, `violation` event, `onDenied`.
   *
   * @param d the denial
   */
  onDenied(denial: Denial): void {
    // The target comes from the plugin (a URL, a key): bounded before the host keeps or logs it.
    const t = denial.target;
    const d = t.length > 1024
      ? { ...denial, target: `${t.slice(0, 1024)}…[${t.length} chars]` }
      : denial;
    this.#deps.logger.warn(`Permission denied for plugin "${d.plugin}": ${d.what} ${d.target}`, {
      ...d,
    });
    this.#deps.audit?.write("permission_denied", d.plugin, { what: d.what, target: d.target });
    this.#deps.events.emit("violation", {
      plugin: d.plugin,
      kind: `permission:${d.what}`,
      detail: d.target,
    });
    this.#deps.options.onDenied?.(d);
  }

  /**
   * Records a violation; unmounts the plugin when it crosses the threshold.
   *
   * @param entry the plugin's entry
   * @param v the limit crossed
   * @returns true when the plugin is being unmounted
   */
  violation(entry: PluginEntry, v: { type: ViolationType; used: number; limit: number }): boolean {
    const { record } = entry;
    const name = record.manifest.name;
    const crossed = record.violations.record(v);
    this.#deps.audit?.write("violation", name, { type: v.type, used: v.used, limit: v.limit });
    this.#deps.events.emit("violation", {
      plugin: name,
      kind: v.type,
      detail: `${v.used} > ${v.limit}`,
    });
    if (crossed && record.violations.behavior.autoUnmount) {
      void this.#unmount(entry);
      return true;
    }
    return false;
  }

  async #unmount(entry: PluginEntry): Promise<void> {
    const { record } = entry;
    const name = record.manifest.name;
    const reason =
      `auto-unmount: ${record.violations.count} violations (threshold ${record.violations.behavior.threshold})`;
    this.#deps.audit?.write("unmount", name, { violations: record.violations.count });
    this.#deps.logger.error(`Unmounting plugin "${name}": ${reason}`, { plugin: name });
    const state = record.lifecycle.state;
    if (state === "active" || state === "inactive" || state === "failed") {
      await this.#host.unload(name, { reason, cascade: true }).catch(() => {});
    }
  }

  /** Ends every restart backoff now (the host is closing: the restarts then do not happen). */
  cancelRestarts(): void {
    for (const wake of this.#sleepers) wake();
    this.#sleepers.clear();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }

  /**
   * Handles a failed instance: the plugin fails, its instance stops, the failure counts as a
   * violation, and the plugin restarts when `restartOnFailure` says so.
   *
   * @param entry the plugin's entry
   * @param instance the instance that failed
   * @param failure what happened
   * @returns once handled
   */
  onFailure(entry: PluginEntry, instance: PluginInstance, failure: InstanceFailure): Promise<void> {
    const handling: Promise<void> = this.#onFailure(entry, instance, failure)
      .finally(() => this.#handling.delete(handling));
    this.#handling.add(handling);
    return handling;
  }

  /** @returns once every failure being handled now is handled (the host is closing) */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#handling]);
  }

  async #onFailure(
    entry: PluginEntry,
    instance: PluginInstance,
    failure: InstanceFailure,
  ): Promise<void> {
    const plugin = entry.plugin;
    const { record } = entry;
    if (plugin === undefined || plugin.instance !== instance) {
      // An instance being started or replaced: its caller handles the error.
      await instance.terminate(failure.error);
      return;
    }
    const name = record.manifest.name;
    record.lastError = failure.error;
    this.#host.removeHooks(entry);
    if (LOADED.includes(record.lifecycle.state)) {
      record.lifecycle.transition("failed", failure.error.message);
    }
    plugin.attach(undefined);
    this.#deps.logger.error(`Plugin "${name}" failed: ${failure.error.message}`, {
      plugin: name,
      code: failure.error.code,
    });
    this.report("crash", name, failure.error, { kind: failure.kind, code: failure.error.code });
    await instance.terminate(failure.error);
    const limits = record.manifest.limits;
    const unmounted = this.violation(entry, {
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
    if (!unmounted && this.#deps.options.restartOnFailure === true && !this.#deps.isClosed()) {
      // Exponential backoff: 100 ms, 200 ms, ... up to 10 s; a minute without failure resets it.
      if (Date.now() - entry.restartedAt > 60_000) entry.restarts = 0;
      await this.#sleep(Math.min(10_000, 100 * 2 ** entry.restarts++));
      entry.restartedAt = Date.now();
      if (this.#deps.isClosed() || record.lifecycle.state !== "failed") return;
      await this.#host.load(entry).catch((e) =>
        this.#deps.logger.error(`Restart of "${name}" failed: ${(e as Error).message}`, {})
      );
    }
  }
}
