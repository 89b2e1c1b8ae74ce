/**
 * The host's registry bookkeeping: registering plugin directories, info for entries, the
 * dependency catalog, state counts. Private helper of the host.
 * @module
 */

import { PluginError } from "./errors.ts";
import { loadManifest, type Manifest } from "./manifest.ts";
import { type PluginInfo, type PluginRecord, recordInfo } from "./plugin.ts";
import type { PluginState } from "./lifecycle.ts";
import type { Catalog } from "./dependencies.ts";
import { type Entry, LOADED, newEntry } from "./_entry.ts";

/**
 * Reads a plugin directory's manifest and registers it (or refreshes an entry not loaded now).
 *
 * @param entries the host's entries by plugin name
 * @param dir plugin directory
 * @param found names seen in this discovery pass, to report duplicates
 * @param newRecord creates the record of a newly seen plugin
 * @returns the entry
 * @throws {PluginError} ERR_DUPLICATE when another directory declares the same name
 */
export async function registerDir(
  entries: Map<string, Entry>,
  dir: string,
  found: Map<string, string>,
  newRecord: (manifest: Manifest) => PluginRecord,
): Promise<Entry> {
  let manifest: Manifest | undefined;
  let manifestError: PluginError | undefined;
  try {
    manifest = await loadManifest(dir);
  } catch (e) {
    if (!(e instanceof PluginError)) throw e;
    manifestError = e;
  }
  const key = manifest?.name ?? `invalid:${dir}`;
  const other = found.get(key) ?? entries.get(key)?.dir;
  if (other !== undefined && other !== dir) {
    throw new PluginError(
      "ERR_DUPLICATE",
      `Cannot register plugin "${key}": both "${other}" and "${dir}" declare it`,
      { hint: "Rename one of them or remove one directory from pluginDirs", plugin: key },
    );
  }
  found.set(key, dir);
  const existing = entries.get(key);
  if (existing !== undefined) {
    if (existing.plugin === undefined || !LOADED.includes(existing.plugin.status)) {
      existing.manifest = manifest;
      existing.manifestError = manifestError;
      if (existing.record && manifest) existing.record.manifest = manifest;
    }
    return existing;
  }
  const entry = newEntry(dir, manifest, manifestError);
  if (manifest !== undefined) entry.record = newRecord(manifest);
  entries.set(key, entry);
  return entry;
}

/**
 * Info about an entry; entries whose manifest is invalid are reported as failed.
 *
 * @param e the entry
 * @returns its info
 */
export function entryInfo(e: Entry): PluginInfo {
  if (e.record !== undefined) return recordInfo(e.record);
  return {
    name: e.dir,
    version: "0.0.0",
    description: undefined,
    author: undefined,
    path: e.dir,
    status: "failed",
    trust: undefined,
    digest: undefined,
    size: undefined,
    modifiedAt: undefined,
    enforcement: undefined,
    limits: { heapMb: 0, cpuTimeMs: 0, threads: 0, fileDescriptors: 0, connections: 0 },
    permissions: {
      network: "none",
      filesystem: { read: [], write: [] },
      env: [],
      context: { read: [], write: [] },
    },
    lastError: e.manifestError === undefined
      ? undefined
      : { code: e.manifestError.code, message: e.manifestError.message },
  };
}

/**
 * The dependency catalog of every entry with a valid manifest.
 *
 * @param entries the host's entries
 * @returns name to version and dependency ranges
 */
export function buildCatalog(entries: Iterable<Entry>): Catalog {
  const c = new Map<
    string,
    {
      version: string;
      dependencies: Record<string, string>;
      optionalDependencies: Record<string, string>;
    }
  >();
  for (const e of entries) {
    if (e.manifest === undefined) continue;
    c.set(e.manifest.name, {
      version: e.manifest.version,
      dependencies: e.manifest.dependencies,
      optionalDependencies: e.manifest.optionalDependencies,
    });
  }
  return c;
}

/**
 * How many plugins are in each state.
 *
 * @param infos plugin infos
 * @returns counts by state, plus `total`
 */
export function countStates(infos: readonly PluginInfo[]): Record<PluginState | "total", number> {
  const out = {
    total: 0,
    available: 0,
    loading: 0,
    active: 0,
    inactive: 0,
    failed: 0,
    untrusted: 0,
    unloading: 0,
    unloaded: 0,
  };
  for (const i of infos) {
    out.total++;
    out[i.status]++;
  }
  return out;
}
