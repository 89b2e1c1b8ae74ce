/**
 * The host's registry: the entries of known plugin directories and their records, discovery,
 * lookup, the read-only queries (info, metrics, state counts), the dependency catalog and the
 * dependencies to load first. Private helper of the host.
 * @module
 */

import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PluginError } from "../errors.ts";
import { loadManifest, type Manifest } from "../manifest.ts";
import type { Logger } from "../logger.ts";
import { type PluginInfo, type PluginRecord, recordInfo } from "../plugin.ts";
import { Lifecycle, type PluginState } from "../lifecycle.ts";
import type { Emitter, HostEvents } from "../events.ts";
import { PluginMetrics, type PluginMetricsSnapshot } from "../metrics.ts";
import { type UnmountBehavior, ViolationTracker } from "../violations.ts";
import { type Catalog, dependentsOf, resolveLoadOrder } from "../dependencies.ts";
import { type Entry, hasRecord, LOADED, newEntry, type PluginEntry } from "./_entry.ts";

/** What the records of new entries report to and read from the host. */
export interface RecordDeps {
  events: Emitter<HostEvents>;
  unmount: Partial<UnmountBehavior> | undefined;
  logger: Logger;
}

/** The host's entries by plugin name (invalid directories by `invalid:<dir>`). */
export class Registry {
  #entries = new Map<string, Entry>();
  #deps: RecordDeps;

  /** @param deps where new records report state changes and violations */
  constructor(deps: RecordDeps) {
    this.#deps = deps;
  }

  /** @returns every entry, in registration order */
  entries(): IterableIterator<Entry> {
    return this.#entries.values();
  }

  /**
   * Registers every plugin directory (a subdirectory with a plugin.json) of the given roots.
   *
   * @param roots the host's `pluginDirs`
   * @returns once every directory is registered
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND when a root is unreadable; ERR_DUPLICATE when two
   * directories declare the same name
   */
  async scan(roots: readonly string[]): Promise<void> {
    const found = new Map<string, string>();
    for (const root of roots) {
      const abs = resolve(root);
      // A root that is itself a plugin directory is that plugin (not a folder of plugins).
      if (await stat(join(abs, "plugin.json")).then((s) => s.isFile(), () => false)) {
        await registerDir(this.#entries, abs, found, (m) => this.#newRecord(m));
        continue;
      }
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
  }

  /**
   * The entry to load: a discovered plugin's, or that of a directory given by path (registered
   * now), not loaded yet.
   *
   * @param nameOrDir plugin name or directory path
   * @returns the entry, with a valid manifest
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND when unknown; ERR_MANIFEST_INVALID (or why the
   * manifest was refused); ERR_DUPLICATE when it is loaded already or another directory declares
   * the same name
   */
  async toLoad(nameOrDir: string): Promise<PluginEntry> {
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
    // An entry has a record exactly when its manifest is valid.
    if (entry.manifest === undefined || !hasRecord(entry)) {
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
    return entry;
  }

  /**
   * The plugins to load before `entry`, in load order: its dependencies, transitively, that are
   * not loaded when their turn comes.
   *
   * @param entry the entry about to be loaded
   * @returns their entries, one at a time
   * @throws {PluginError} ERR_DEPENDENCY when a required dependency is missing or does not match
   * its range; ERR_MANIFEST_INVALID when a version or range is not valid semver
   */
  *dependenciesToLoad(entry: PluginEntry): Generator<PluginEntry> {
    const name = entry.record.manifest.name;
    for (const dep of resolveLoadOrder([name], this.catalog())) {
      if (dep === name || this.isLoaded(dep)) continue;
      yield this.known(dep, "load");
    }
  }

  /**
   * The entry of a known plugin.
   *
   * @param name plugin name
   * @param action what the caller is about to do, for the error message
   * @returns the entry
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND when no valid plugin has that name
   */
  known(name: string, action: string): PluginEntry {
    const entry = this.#entries.get(name);
    if (!hasRecord(entry)) {
      throw new PluginError(
        "ERR_PLUGIN_NOT_FOUND",
        `Cannot ${action} plugin "${name}": it is unknown`,
        { hint: "Check host.list()" },
      );
    }
    return entry;
  }

  /**
   * @param name plugin name
   * @returns its entry, or undefined when unknown
   */
  get(name: string): Entry | undefined {
    return this.#entries.get(name);
  }

  /**
   * @param name plugin name
   * @returns its info, or undefined when unknown
   */
  info(name: string): PluginInfo | undefined {
    const e = this.#entries.get(name);
    return e === undefined ? undefined : entryInfo(e);
  }

  /** @returns info for every entry */
  infos(): PluginInfo[] {
    return [...this.#entries.values()].map((e) => entryInfo(e));
  }

  /**
   * @param name plugin name
   * @returns whether the plugin is loaded (active or paused)
   */
  isLoaded(name: string): boolean {
    const s = this.#entries.get(name)?.record?.lifecycle.state;
    return s !== undefined && LOADED.includes(s);
  }

  /** @returns the metrics of every plugin with a record, violation counts brought up to date */
  metrics(): PluginMetricsSnapshot[] {
    return [...this.#entries.values()].flatMap((e) => {
      if (e.record === undefined) return [];
      e.record.metrics.setViolationCount(e.record.violations.total);
      return [e.record.metrics.snapshot()];
    });
  }

  /** @returns the dependency catalog of every entry */
  catalog(): Catalog {
    return buildCatalog(this.#entries.values());
  }

  /**
   * @param name plugin name
   * @returns the loaded plugins that depend on it
   */
  loadedDependents(name: string): string[] {
    return dependentsOf(name, this.catalog()).filter((d) => this.isLoaded(d));
  }

  #newRecord(manifest: Manifest): PluginRecord {
    const name = manifest.name;
    const { events, logger } = this.#deps;
    return {
      manifest,
      lifecycle: new Lifecycle(name, {
        onStateChange: (change) => events.emit("state_change", change),
      }),
      metrics: new PluginMetrics(name),
      violations: new ViolationTracker(name, {
        ...this.#deps.unmount,
        logger: { warn: (m: string, d: unknown) => logger.warn(m, { details: d }) },
      }),
      enforcement: undefined,
      trust: undefined,
      digest: undefined,
      size: undefined,
      modifiedAt: undefined,
      lastError: undefined,
    };
  }
}

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
/** States in which no instance exists or is being made: a rescan may refresh the manifest. */
const IDLE: readonly string[] = ["available", "unloaded", "failed", "untrusted"];

async function registerDir(
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
    // A plugin being loaded, serving or stopping keeps the manifest it was loaded with (and the
    // limits the policy tightened): a rescan must not swap them under it.
    const state = existing.record?.lifecycle.state;
    if (state === undefined || IDLE.includes(state)) {
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
