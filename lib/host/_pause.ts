/**
 * Pausing and resuming a loaded plugin: its hooks are held while its worker stays up. Private
 * helper of the host.
 * @module
 */

import { PluginError } from "../errors.ts";
import type { HookRegistry } from "../hooks.ts";
import type { PluginEntry } from "./_entry.ts";

/**
 * Pauses a plugin: its hooks are held, then its `pause()` runs.
 *
 * @param entry the plugin's entry
 * @param hooks the host's hook registry
 * @returns once paused
 * @throws {PluginError} ERR_STATE when the plugin is not active
 */
export async function pauseEntry(entry: PluginEntry, hooks: HookRegistry): Promise<void> {
  const { record } = entry;
  record.lifecycle.transition("inactive", "paused");
  hooks.pausePlugin(record.manifest.name);
  await entry.plugin?.lifecycle("pause", record.manifest.limits.cpuTimeMs).catch(() => {});
}

/**
 * Resumes a paused plugin: its `resume()` runs, then its hooks are delivered again.
 *
 * @param entry the plugin's entry
 * @param hooks the host's hook registry
 * @returns once active again
 * @throws {PluginError} ERR_STATE when the plugin is not paused
 */
export async function resumeEntry(entry: PluginEntry, hooks: HookRegistry): Promise<void> {
  const { record } = entry;
  const name = record.manifest.name;
  if (record.lifecycle.state !== "inactive") {
    throw new PluginError(
      "ERR_STATE",
      `Cannot resume plugin "${name}": it is ${record.lifecycle.state}`,
      { hint: "Only a paused plugin can resume", plugin: name },
    );
  }
  await entry.plugin?.lifecycle("resume", record.manifest.limits.cpuTimeMs).catch(() => {});
  hooks.resumePlugin(name);
  record.lifecycle.transition("active", "resumed");
}
