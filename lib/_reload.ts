/**
 * Hot reload of one plugin: verify and start the new version while the old one serves, hand over
 * state, switch, then drain and stop the old instance. Private helper of the host.
 * @module
 */

import { PluginError } from "./errors.ts";
import type { Manifest } from "./manifest.ts";
import type { Logger } from "./logger.ts";
import type { PluginRecord } from "./plugin.ts";
import type { PluginInstance } from "./tiers/types.ts";
import type { Emitter, HostEvents } from "./events.ts";
import type { HookRegistry } from "./hooks.ts";
import type { AuditLog } from "./audit.ts";
import type { PreparedPackage } from "./_package.ts";
import { type Entry, LOADED } from "./_entry.ts";
import { KIND_LIFECYCLE } from "./worker/protocol.ts";

/** What a reload needs from the host. */
export interface ReloadDeps {
  prepare(entry: Entry): Promise<PreparedPackage>;
  startInstance(entry: Entry, prepared: PreparedPackage): Promise<PluginInstance>;
  removeHooks(entry: Entry): void;
  registerHook(entry: Entry, hook: string): void;
  effectiveLimits(manifest: Manifest): Manifest;
  recordTrustedVersion(record: PluginRecord): Promise<void>;
  audit: AuditLog | undefined;
  logger: Logger;
  events: Emitter<HostEvents>;
  hooks: HookRegistry;
  shutdownTimeoutMs: number;
}

/**
 * Reloads one plugin once.
 *
 * @param entry the host's entry for the plugin
 * @param deps host services
 * @returns once the switch is done
 * @throws {PluginError} why the new version was refused (the old one still serves)
 */
export async function reloadEntry(entry: Entry, deps: ReloadDeps): Promise<void> {
  const record = entry.record as PluginRecord;
  const plugin = entry.plugin;
  const name = record.manifest.name;
  const old = plugin?.instance;
  if (plugin === undefined || old === undefined || !LOADED.includes(record.lifecycle.state)) {
    throw new PluginError(
      "ERR_STATE",
      `Cannot reload plugin "${name}": it is ${record.lifecycle.state}`,
      { hint: "Load it instead", plugin: name },
    );
  }
  deps.events.emit("reload", { plugin: name, reason: "reload requested" });
  const before = {
    manifest: record.manifest,
    digest: record.digest,
    trust: record.trust,
    size: record.size,
    enforcement: record.enforcement,
    modifiedAt: record.modifiedAt,
  };
  let prepared: PreparedPackage | undefined;
  let next: PluginInstance | undefined;
  try {
    prepared = await deps.prepare(entry);
    if (prepared.manifest.name !== name) {
      throw new PluginError(
        "ERR_MANIFEST_INVALID",
        `Cannot reload plugin "${name}": the new manifest names "${prepared.manifest.name}"`,
        { plugin: name },
      );
    }
    next = await deps.startInstance(entry, prepared);
  } catch (error) {
    Object.assign(record, before);
    await prepared?.cleanup();
    const e = error instanceof PluginError
      ? error
      : new PluginError("ERR_PLUGIN_INIT", `Cannot reload plugin "${name}"`, {
        cause: error,
        plugin: name,
      });
    deps.logger.error(
      `Reload of "${name}" failed, keeping ${before.manifest.version}: ${e.message}`,
      { plugin: name },
    );
    deps.audit?.write("load", name, { ok: false, reload: true, code: e.code });
    deps.events.emit("error", { plugin: name, error: e });
    throw e;
  }
  const release = old.ready?.lifecycle.includes("snapshot") ? plugin.hold() : undefined;
  try {
    if (release !== undefined) {
      await old.drain(record.manifest.limits.cpuTimeMs);
      const state = await old.send(
        KIND_LIFECYCLE,
        "snapshot",
        undefined,
        record.manifest.limits.cpuTimeMs,
      );
      await next.send(KIND_LIFECYCLE, "restore", state, record.manifest.limits.cpuTimeMs);
    }
    if (next.ready?.lifecycle.includes("start")) {
      await next.send(KIND_LIFECYCLE, "start", undefined, record.manifest.limits.cpuTimeMs);
    }
  } catch (error) {
    release?.();
    Object.assign(record, before);
    await next.terminate(
      error instanceof PluginError
        ? error
        : new PluginError("ERR_PLUGIN_INIT", "state handover failed", { cause: error }),
    );
    await prepared.cleanup();
    throw error;
  }
  // Switch: new calls go to the new instance from here on.
  deps.removeHooks(entry);
  record.manifest = deps.effectiveLimits(prepared.manifest);
  entry.manifest = prepared.manifest;
  plugin.attach(next);
  for (const hook of next.ready?.hooks ?? []) deps.registerHook(entry, hook);
  if (record.lifecycle.state === "inactive") deps.hooks.pausePlugin(name);
  release?.();
  const oldCleanup = entry.cleanup;
  entry.cleanup = prepared.cleanup;
  await deps.recordTrustedVersion(record);
  deps.audit?.write("load", name, {
    ok: true,
    reload: true,
    version: record.manifest.version,
    digest: record.digest,
  });
  deps.logger.info(
    `Reloaded plugin "${name}": ${before.manifest.version} -> ${record.manifest.version}`,
    { plugin: name },
  );
  // The old instance finishes what it was doing, then stops.
  await old.drain(before.manifest.limits.cpuTimeMs);
  if (old.ready?.lifecycle.includes("shutdown")) {
    await old.send(KIND_LIFECYCLE, "shutdown", undefined, deps.shutdownTimeoutMs)
      .catch(() => {});
  }
  await old.terminate(
    new PluginError(
      "ERR_PLUGIN_NOT_ACTIVE",
      `Cannot finish call: plugin "${name}" was replaced`,
      { plugin: name },
    ),
  );
  await oldCleanup?.();
}
