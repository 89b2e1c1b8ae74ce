/**
 * The host's bookkeeping for one plugin directory. Private helper of the host.
 * @module
 */

import type { PluginError } from "../errors.ts";
import type { Manifest } from "../manifest.ts";
import type { Plugin, PluginRecord } from "../plugin.ts";
import type { PluginState } from "../lifecycle.ts";

/** States in which a plugin is loaded. */
export const LOADED: readonly PluginState[] = ["active", "inactive"];

/** One known plugin directory. */
export interface Entry {
  dir: string;
  manifest: Manifest | undefined;
  manifestError: PluginError | undefined;
  record: PluginRecord | undefined;
  plugin: Plugin | undefined;
  cleanup: (() => Promise<void>) | undefined;
  /** One registration per hook name: registering a hook again replaces it (new priority). */
  hookUnregister: Map<string, () => void>;
  hookPriorities: Map<string, number>;
  reloading: Promise<void> | undefined;
  reloadAgain: boolean;
  fingerprint: string | undefined;
  /** Restarts after failures in a row (backoff), and when the last one happened. */
  restarts: number;
  restartedAt: number;
}

/** An entry whose directory held a valid manifest when first seen: the host keeps its record. */
export interface PluginEntry extends Entry {
  record: PluginRecord;
}

/**
 * Whether the entry has a record (only entries of invalid directories lack one).
 *
 * @param entry an entry, or undefined
 * @returns true when `entry.record` is set
 */
export function hasRecord(entry: Entry | undefined): entry is PluginEntry {
  return entry?.record !== undefined;
}

/**
 * A fresh entry for a directory.
 *
 * @param dir plugin directory
 * @param manifest parsed manifest, if valid
 * @param manifestError why the manifest is invalid, if it is
 * @returns the entry
 */
export function newEntry(
  dir: string,
  manifest: Manifest | undefined,
  manifestError: PluginError | undefined,
): Entry {
  return {
    dir,
    manifest,
    manifestError,
    record: undefined,
    plugin: undefined,
    cleanup: undefined,
    hookUnregister: new Map(),
    hookPriorities: new Map(),
    reloading: undefined,
    reloadAgain: false,
    fingerprint: undefined,
    restarts: 0,
    restartedAt: 0,
  };
}
