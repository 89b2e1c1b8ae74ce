/**
 * Hot reload of one plugin: verify and start the new version while the old one serves, hand over
 * state, switch, then drain and stop the old instance. Private helper of the host.
 * @module
 */

import { PluginError } from "../errors.ts";
import type { PluginInstance } from "../tiers/types.ts";
import type { PreparedPackage } from "./_package.ts";
import { LOADED, type PluginEntry } from "./_entry.ts";
import { retiredError, type Service } from "./_service.ts";
import { KIND_LIFECYCLE } from "../protocol/messages.ts";
import { fingerprint } from "./_fingerprint.ts";

/**
 * Reloads one plugin. A reload requested while one runs is coalesced: the running one goes again
 * once more when it is done, and both callers wait for that.
 *
 * @param entry the host's entry for the plugin
 * @param service how the host brings plugins into service
 * @returns once the switch is done
 * @throws {PluginError} why the new version was refused (the old one still serves)
 */
export function reloadEntry(entry: PluginEntry, service: Service): Promise<void> {
  if (entry.reloading !== undefined) {
    entry.reloadAgain = true;
    return entry.reloading;
  }
  const run = async (): Promise<void> => {
    try {
      do {
        entry.reloadAgain = false;
        await reloadOnce(entry, service);
      } while (entry.reloadAgain);
    } finally {
      entry.reloading = undefined;
    }
  };
  entry.reloading = run();
  return entry.reloading;
}

async function reloadOnce(entry: PluginEntry, service: Service): Promise<void> {
  const { record } = entry;
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
  const fp = await fingerprint(entry.dir).catch(() => undefined);
  try {
    prepared = await service.starter.prepare(entry);
    if (prepared.manifest.name !== name) {
      throw new PluginError(
        "ERR_MANIFEST_INVALID",
        `Cannot reload plugin "${name}": the new manifest names "${prepared.manifest.name}"`,
        { plugin: name },
      );
    }
    next = await service.starter.startInstance(entry, prepared);
    service.assertOpen(name);
  } catch (error) {
    await next?.terminate(
      error instanceof PluginError ? error : retiredError(name, "replaced"),
    );
    Object.assign(record, before);
    await prepared?.cleanup();
    const e = error instanceof PluginError
      ? error
      : new PluginError("ERR_PLUGIN_INIT", `Cannot reload plugin "${name}"`, {
        cause: error,
        plugin: name,
      });
    service.logger.error(
      `Reload of "${name}" failed, keeping ${before.manifest.version}: ${e.message}`,
      { plugin: name },
    );
    service.failures.report("load", name, e, { ok: false, reload: true, code: e.code });
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
    await service.start(next, record);
    service.assertOpen(name);
  } catch (error) {
    release?.();
    Object.assign(record, before);
    await next.terminate(
      error instanceof PluginError
        ? error
        : new PluginError("ERR_PLUGIN_INIT", "Cannot reload plugin: state handover failed", {
          cause: error,
        }),
    );
    await prepared.cleanup();
    throw error;
  }
  // Switch: new calls go to the new instance from here on.
  service.removeHooks(entry);
  service.adopt(entry, prepared);
  plugin.attach(next);
  service.registerHooks(entry, next);
  if (record.lifecycle.state === "inactive") service.hooks.pausePlugin(name);
  release?.();
  entry.fingerprint = fp;
  const oldCleanup = entry.cleanup;
  entry.cleanup = prepared.cleanup;
  await service.recordLoad(record, true);
  service.events.emit("reload", {
    plugin: name,
    reason: "reload requested",
    from: before.manifest.version,
    to: record.manifest.version,
  });
  service.logger.info(
    `Reloaded plugin "${name}": ${before.manifest.version} -> ${record.manifest.version}`,
    { plugin: name },
  );
  // The old instance finishes what it was doing, then stops.
  await old.drain(before.manifest.limits.cpuTimeMs);
  // A shutdown that fails or times out does not fail the reload: the new version already serves.
  await service.stopSteps(old, ["shutdown"]);
  await old.terminate(retiredError(name, "replaced"));
  await oldCleanup?.();
}
