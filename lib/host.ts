/**
 * The plugin host: discovers plugins, loads each into its own worker with permissions derived
 * from its manifest, brokers its context, and keeps serving when a plugin fails.
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
import { pathToFileURL } from "node:url";
import { PluginError } from "./errors.ts";
import { loadManifest, type Manifest } from "./manifest.ts";
import { type Logger, SILENT_LOGGER } from "./logger.ts";
import { Plugin, type PluginInfo } from "./plugin.ts";
import { createContextApi, type Denial } from "./context.ts";
import { exposeGuarded } from "./guarded_endpoint.ts";
import { findEscapingSymlinks, realOrSelf } from "./symlinks.ts";
import { deriveGrants } from "../permissions/grants.ts";
import {
  describeEnforcement,
  type EnforcementArea,
  unenforcedAreas,
} from "../permissions/enforcement.ts";

const PERMISSION_AREAS: readonly EnforcementArea[] = [
  "filesystem",
  "network",
  "env",
  "subprocess",
  "ffi",
];
import { loadAdapter } from "./runtime/detect.ts";
import type { RuntimeAdapter } from "./runtime/types.ts";

/** Options for {@link PluginHost}. */
export interface HostOptions {
  /** Directories scanned by `discover()`; each subdirectory with a plugin.json is a plugin. */
  pluginDirs?: string[];
  /** Initial context values (`config`, `logger`, `http`, `cache`, `database`, or custom keys). */
  context?: Record<string, unknown>;
  /** Where host and plugin logs go (default: discard). */
  logger?: Logger;
  /**
   * Refuse plugins whose restrictions this runtime cannot enforce (ERR_RUNTIME_UNSUPPORTED).
   * `true` checks the permission areas (filesystem, network, env, subprocess, ffi); a list checks
   * exactly those areas (add "memory" and "cpu" to require enforced limits too).
   */
  requireEnforcement?: boolean | EnforcementArea[];
  /** Deadline for import + `init()` (default 10,000 ms). */
  loadTimeoutMs?: number;
  /** Deadline for `shutdown()` at unload (default 2,000 ms). */
  shutdownTimeoutMs?: number;
  /** Called with every permission the host refused. */
  onDenied?: (denial: Denial) => void;
}

interface Entry {
  manifest: Manifest | undefined;
  dir: string;
  plugin: Plugin | undefined;
  /** Why the manifest is unusable (the plugin cannot be loaded until it is fixed). */
  error: PluginError | undefined;
  /** Why the last load failed (a new load may succeed). */
  loadError?: PluginError | undefined;
}

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
  #adapter: Promise<RuntimeAdapter> | undefined;
  #closed = false;

  /**
   * @param options host options
   */
  constructor(options: HostOptions = {}) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#store = new Map(Object.entries(options.context ?? {}));
  }

  #getAdapter(): Promise<RuntimeAdapter> {
    this.#adapter ??= loadAdapter();
    return this.#adapter;
  }

  /** The shared context store (what `ctx.get`/`ctx.set` reach, subject to each plugin's ACL). */
  get context(): Map<string, unknown> {
    return this.#store;
  }

  /**
   * Scans the plugin directories and registers every plugin found. Invalid manifests are listed
   * with status `failed` and their error; two plugins with one name are an error.
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
          { hint: "Fix pluginDirs", cause },
        );
      }
      for (const n of names) {
        const dir = join(abs, n);
        try {
          if (!(await stat(join(dir, "plugin.json"))).isFile()) continue;
        } catch {
          continue;
        }
        await this.#register(dir, found);
      }
    }
    return this.list();
  }

  async #register(dir: string, found: Map<string, string>): Promise<Entry> {
    let manifest: Manifest | undefined;
    let error: PluginError | undefined;
    try {
      manifest = await loadManifest(dir);
    } catch (e) {
      if (!(e instanceof PluginError)) throw e;
      error = e;
    }
    const key = manifest?.name ?? `invalid:${dir}`;
    const other = found.get(key) ?? this.#entries.get(key)?.dir;
    if (other !== undefined && other !== dir) {
      throw new PluginError(
        "ERR_DUPLICATE",
        `Cannot register plugin "${key}": both "${other}" and "${dir}" declare it`,
        { hint: "Rename one of them or remove one directory from pluginDirs", plugin: key },
      );
    }
    found.set(key, dir);
    const existing = this.#entries.get(key);
    if (existing !== undefined) {
      if (existing.plugin === undefined) {
        existing.manifest = manifest;
        existing.error = error;
      }
      return existing;
    }
    const entry: Entry = { manifest, dir, plugin: undefined, error };
    this.#entries.set(key, entry);
    return entry;
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
    return [...this.#entries.values()].map((e) => this.#info(e));
  }

  #info(e: Entry): PluginInfo {
    if (e.plugin !== undefined) return e.plugin.info;
    const m = e.manifest;
    return {
      name: m?.name ?? e.dir,
      version: m?.version ?? "0.0.0",
      description: m?.description,
      author: m?.author,
      path: e.dir,
      status: e.error !== undefined || e.loadError !== undefined ? "failed" : "available",
      enforcement: undefined,
      limits: m?.limits ??
        { heapMb: 0, cpuTimeMs: 0, threads: 0, fileDescriptors: 0, connections: 0 },
      permissions: m?.permissions ??
        {
          network: "none",
          filesystem: { read: [], write: [] },
          env: [],
          context: { read: [], write: [] },
        },
      lastError: (e.error ?? e.loadError) === undefined
        ? undefined
        : { code: (e.error ?? e.loadError)!.code, message: (e.error ?? e.loadError)!.message },
    };
  }

  /**
   * The loaded plugin with that name, if any.
   *
   * @param name plugin name
   * @returns the plugin handle or undefined
   * @example
   * ```ts
   * host.get("hello")?.call("greet");
   * ```
   */
  get(name: string): Plugin | undefined {
    return this.#entries.get(name)?.plugin;
  }

  /**
   * Loads a plugin: validates its manifest, derives its grants, starts its worker and runs `init`.
   *
   * @param nameOrDir a discovered plugin's name, or a path to a plugin directory
   * @returns the running plugin
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND, ERR_MANIFEST_INVALID, ERR_DUPLICATE (already
   * loaded), ERR_PERMISSION_DENIED (symlink escaping its grants), ERR_RUNTIME_UNSUPPORTED (policy
   * requires enforcement this runtime lacks), ERR_PLUGIN_INIT, ERR_CALL_TIMEOUT
   * @example
   * ```ts
   * const p = await host.load("hello");
   * ```
   */
  async load(nameOrDir: string): Promise<Plugin> {
    this.#assertOpen();
    let entry = this.#entries.get(nameOrDir);
    if (
      entry === undefined &&
      (nameOrDir.includes("/") || nameOrDir.includes("\\") || nameOrDir.startsWith("."))
    ) {
      entry = await this.#register(resolve(nameOrDir), new Map());
    }
    if (entry === undefined) {
      throw new PluginError(
        "ERR_PLUGIN_NOT_FOUND",
        `Cannot load plugin "${nameOrDir}": it was not discovered`,
        { hint: "Call discover() first, check pluginDirs, or pass the plugin's directory" },
      );
    }
    if (entry.error !== undefined || entry.manifest === undefined) {
      throw entry.error ??
        new PluginError(
          "ERR_MANIFEST_INVALID",
          `Cannot load plugin in "${entry.dir}": no manifest`,
        );
    }
    if (
      entry.plugin !== undefined && entry.plugin.status !== "failed" &&
      entry.plugin.status !== "unloaded"
    ) {
      throw new PluginError(
        "ERR_DUPLICATE",
        `Cannot load plugin "${entry.manifest.name}": it is already ${entry.plugin.status}`,
        { hint: "Unload it first", plugin: entry.manifest.name },
      );
    }
    const manifest = entry.manifest;
    if (manifest.entry === undefined) {
      throw new PluginError(
        "ERR_RUNTIME_UNSUPPORTED",
        `Cannot load plugin "${manifest.name}": native plugins are not available in this build`,
        { plugin: manifest.name },
      );
    }
    const adapter = await this.#getAdapter();
    let plugin: Plugin;
    try {
      plugin = await this.#start(manifest, adapter);
    } catch (error) {
      if (error instanceof PluginError) {
        entry.loadError = error;
        entry.plugin = undefined;
      }
      throw error;
    }
    entry.plugin = plugin;
    entry.loadError = undefined;
    return plugin;
  }

  async #start(manifest: Manifest, adapter: RuntimeAdapter): Promise<Plugin> {
    const name = manifest.name;
    const pluginDir = await realOrSelf(manifest.dir);
    const read = await Promise.all(manifest.permissions.filesystem.read.map(realOrSelf));
    const write = await Promise.all(manifest.permissions.filesystem.write.map(realOrSelf));
    const escapes = await findEscapingSymlinks([pluginDir, ...read, ...write], [
      pluginDir,
      ...read,
      ...write,
    ]);
    if (escapes.length > 0) {
      throw new PluginError(
        "ERR_PERMISSION_DENIED",
        `Cannot load plugin "${name}": symbolic link ${escapes[0]} leads outside its grants`,
        { hint: "Remove the link, or declare its target in permissions.filesystem", plugin: name },
      );
    }
    const frameworkRead = adapter.frameworkRead();
    const grants = deriveGrants(
      {
        pluginDir,
        network: manifest.permissions.network,
        filesystem: { read, write },
        env: manifest.permissions.env,
      },
      { frameworkRead },
    );
    const enforcement = describeEnforcement(adapter.name, {
      network: manifest.permissions.network,
    });
    const required = this.#options.requireEnforcement;
    if (required !== undefined && required !== false) {
      const areas: EnforcementArea[] = required === true ? [...PERMISSION_AREAS] : required;
      const missing = unenforcedAreas(enforcement).filter((a) => areas.includes(a));
      if (missing.length > 0) {
        throw new PluginError(
          "ERR_RUNTIME_UNSUPPORTED",
          `Cannot load plugin "${name}": ${adapter.name} does not enforce ${
            missing.join(", ")
          } in the worker tier`,
          { hint: "Run the host on Deno or Node, or drop requireEnforcement", plugin: name },
        );
      }
    }
    const env: Record<string, string> = {};
    for (const k of grants.env) {
      const value = process.env[k];
      if (value !== undefined) env[k] = value;
    }
    const call = new MessageChannel();
    const ctx = new MessageChannel();
    const onDenied = (d: Denial) => {
      this.#logger.warn(`Permission denied for plugin "${d.plugin}": ${d.what} ${d.target}`, {
        ...d,
      });
      this.#options.onDenied?.(d);
    };
    const api = createContextApi({
      plugin: name,
      read: manifest.permissions.context.read,
      write: manifest.permissions.context.write,
      network: grants.network,
      connections: manifest.limits.connections,
      store: this.#store,
      logger: this.#logger,
      onDenied,
    });
    const closeContext = exposeGuarded(api, ctx.port1, {
      plugin: name,
      onRefused: (r) => onDenied({ plugin: name, what: "proxy", target: `${r.type} ${r.path}` }),
    });
    const worker = adapter.spawn({
      name,
      grants,
      heapMb: manifest.limits.heapMb,
      env,
      init: {
        name,
        version: manifest.version,
        entryUrl: pathToFileURL(manifest.entry as string).href,
        importRoots: [pluginDir, ...read, ...frameworkRead],
      },
      callPort: call.port2,
      ctxPort: ctx.port2,
    });
    const plugin = new Plugin({
      manifest,
      enforcement,
      worker,
      port: call.port1,
      closeContext,
      onFailure: (p, error) => void this.#fail(p, error),
    });
    try {
      await plugin.waitReady(this.#options.loadTimeoutMs ?? 10_000);
    } catch (error) {
      const e = error instanceof PluginError
        ? error
        : new PluginError("ERR_PLUGIN_INIT", `Cannot load plugin "${name}"`, {
          cause: error,
          plugin: name,
        });
      plugin.setStatus("failed", e);
      await plugin.terminate(e);
      throw e;
    }
    plugin.setStatus("active");
    this.#logger.info(`Loaded plugin "${name}" ${manifest.version}`, { plugin: name });
    return plugin;
  }

  async #fail(plugin: Plugin, error: PluginError): Promise<void> {
    if (plugin.status === "failed" || plugin.status === "unloaded") return;
    plugin.setStatus("failed", error);
    this.#logger.error(`Plugin "${plugin.name}" failed: ${error.message}`, {
      plugin: plugin.name,
      code: error.code,
    });
    await plugin.terminate(error);
  }

  /**
   * Unloads a plugin: runs its `shutdown()` (with a deadline), then stops its worker.
   *
   * @param name plugin name
   * @returns once the worker is stopped
   * @throws {PluginError} ERR_PLUGIN_NOT_FOUND when no such plugin is loaded
   * @example
   * ```ts
   * await host.unload("hello");
   * ```
   */
  async unload(name: string): Promise<void> {
    const entry = this.#entries.get(name);
    const plugin = entry?.plugin;
    if (plugin === undefined) {
      throw new PluginError(
        "ERR_PLUGIN_NOT_FOUND",
        `Cannot unload plugin "${name}": it is not loaded`,
        { hint: "Check host.list()" },
      );
    }
    if (plugin.status === "unloaded") return;
    const wasActive = plugin.status === "active" || plugin.status === "inactive";
    plugin.setStatus("unloading");
    if (wasActive) {
      try {
        await plugin.lifecycle("shutdown", this.#options.shutdownTimeoutMs ?? 2000);
      } catch (error) {
        this.#logger.warn(
          `Plugin "${name}" shutdown did not finish cleanly: ${(error as Error).message}`,
          { plugin: name },
        );
      }
    }
    await plugin.terminate(
      new PluginError(
        "ERR_PLUGIN_NOT_ACTIVE",
        `Cannot finish call: plugin "${name}" was unloaded`,
        { plugin: name },
      ),
    );
    plugin.setStatus("unloaded");
  }

  /**
   * Unloads every plugin and refuses further loads.
   *
   * @returns once every worker is stopped
   * @example
   * ```ts
   * await host.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    const loaded = [...this.#entries.values()].filter((e) =>
      e.plugin !== undefined && e.plugin.status !== "unloaded"
    );
    await Promise.all(loaded.map((e) => this.unload((e.plugin as Plugin).name).catch(() => {})));
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new PluginError("ERR_HOST_CLOSED", "Cannot use the plugin host: it was closed", {
        hint: "Create a new PluginHost",
      });
    }
  }
}
