/**
 * Engine checks and dependency ordering between plugins, by name and semver range.
 *
 * Pure functions over a catalog (`Map` of plugin name to version and dependency ranges); no I/O.
 * Range semantics are npm's (the `semver` package, without `includePrerelease`): a prerelease
 * version satisfies a range only if the range names a prerelease of the same `major.minor.patch`.
 *
 * Optional dependencies: when the named plugin is in the catalog and its version is in range, it
 * is loaded, and loaded first; when it is absent, it is ignored; when it is present but out of
 * range, that is an `ERR_DEPENDENCY` error, as for a required one. Why an error and not "ignore":
 * the dependent will find the plugin and call into it, and it was written against another version.
 *
 * @example
 * ```ts
 * import { resolveLoadOrder } from "./dependencies.ts";
 * const catalog = new Map([
 *   ["app", { version: "1.0.0", dependencies: { db: "^2.0.0" } }],
 *   ["db", { version: "2.3.1" }],
 * ]);
 * resolveLoadOrder(["app"], catalog); // ["db", "app"]
 * ```
 * @module
 */

import semver from "semver";
import type { Range, SemVer } from "semver";
import { type Issue, PluginError } from "./errors.ts";

/** What the dependency functions need to know about one plugin. */
export interface CatalogEntry {
  /** The plugin's semver version. */
  version: string;
  /** Required plugins: name to semver range. */
  dependencies?: Readonly<Record<string, string>>;
  /** Plugins used when present: name to semver range. */
  optionalDependencies?: Readonly<Record<string, string>>;
}

/** Known plugins by name. */
export type Catalog = ReadonlyMap<string, CatalogEntry>;

/** Options for {@link checkEngine}. */
export interface CheckEngineOptions {
  /** Plugin name for the error message and `error.plugin`. */
  plugin?: string;
}

/**
 * Checks that a plugin's engine range includes the host's API version.
 *
 * @param range the plugin's engine range, e.g. `"^1.2.0"`
 * @param hostVersion the host's API version, e.g. `"1.4.0"`
 * @param options plugin name for the message
 * @throws {PluginError} ERR_ENGINE when `hostVersion` is not in `range`
 * @throws {PluginError} ERR_MANIFEST_INVALID when `range` is not a semver range
 * @throws {TypeError} when `hostVersion` is not a semver version
 * @example
 * ```ts
 * checkEngine("^1.0.0", "1.4.0"); // ok
 * checkEngine("^2.0.0", "1.4.0", { plugin: "x" }); // throws ERR_ENGINE
 * ```
 */
export function checkEngine(
  range: string,
  hostVersion: string,
  options: CheckEngineOptions = {},
): void {
  const host = typeof hostVersion === "string" ? semver.parse(hostVersion) : null;
  if (host === null) {
    throw new TypeError(
      `Cannot check engine: host version ${JSON.stringify(hostVersion)} is not semver`,
    );
  }
  const who = options.plugin === undefined ? "plugin" : `plugin "${options.plugin}"`;
  const parsed = parseRange(range, options.plugin, "engine");
  if (!parsed.test(host)) {
    throw new PluginError(
      "ERR_ENGINE",
      `Cannot load ${who}: it requires host API "${range}" but this host provides "${hostVersion}"`,
      withPlugin(options.plugin, {
        hint: "Install a plugin version built for this host, or upgrade the host",
      }),
    );
  }
}

/**
 * Orders plugins for loading: every plugin after all it depends on. Includes the targets, their
 * transitive required dependencies, and present optional ones. Deterministic: targets in the
 * given order, each plugin's dependencies in declaration order (required, then optional).
 *
 * @param targets plugins to load
 * @param catalog every known plugin
 * @returns names in load order, each once
 * @throws {PluginError} ERR_PLUGIN_NOT_FOUND when a target is not in the catalog
 * @throws {PluginError} ERR_DEPENDENCY when a required dependency is missing, any dependency is
 *   out of range (all such problems are listed in `issues`), or dependencies form a cycle (the
 *   message contains the path, e.g. `a -> b -> a`)
 * @throws {PluginError} ERR_MANIFEST_INVALID when a version or range is not valid semver
 * @example
 * ```ts
 * const catalog = new Map([["a", { version: "1.0.0", dependencies: { b: "1.x" } }], ["b", { version: "1.2.0" }]]);
 * resolveLoadOrder(["a"], catalog); // ["b", "a"]
 * ```
 */
export function resolveLoadOrder(targets: Iterable<string>, catalog: Catalog): string[] {
  const ranges = new Map<string, Range>();
  const versions = new Map<string, SemVer>();
  const issues: Issue[] = [];
  const order: string[] = [];
  // 1: on the DFS stack, 2: done. The stack index of a gray node gives the cycle path.
  const color = new Map<string, number>();
  const stackNames: string[] = [];
  const stackEdges: string[][] = [];
  const stackNext: number[] = [];

  const edgesOf = (name: string, entry: CatalogEntry): string[] => {
    const edges: string[] = [];
    const required = entry.dependencies;
    if (required !== undefined) {
      for (const dep in required) {
        const range = required[dep] as string;
        const target = catalog.get(dep);
        if (target === undefined) {
          issues.push({
            path: `${name}.dependencies.${dep}`,
            message:
              `Cannot load plugin "${name}": it requires "${dep}" in range "${range}", which is not available`,
          });
        } else if (satisfied(name, dep, range, target, "dependencies")) edges.push(dep);
      }
    }
    const optional = entry.optionalDependencies;
    if (optional !== undefined) {
      for (const dep in optional) {
        if (required !== undefined && Object.hasOwn(required, dep)) continue;
        const target = catalog.get(dep);
        if (target === undefined) continue;
        if (satisfied(name, dep, optional[dep] as string, target, "optionalDependencies")) {
          edges.push(dep);
        }
      }
    }
    return edges;
  };

  const satisfied = (
    name: string,
    dep: string,
    range: string,
    target: CatalogEntry,
    field: string,
  ): boolean => {
    let parsed = ranges.get(range);
    if (parsed === undefined) {
      parsed = parseRange(range, name, `${field}.${dep}`);
      ranges.set(range, parsed);
    }
    let version = versions.get(dep);
    if (version === undefined) {
      version = parseVersion(dep, target.version);
      versions.set(dep, version);
    }
    if (parsed.test(version)) return true;
    const kind = field === "dependencies" ? "requires" : "optionally uses";
    issues.push({
      path: `${name}.${field}.${dep}`,
      message:
        `Cannot load plugin "${name}": it ${kind} "${dep}" in range "${range}" but version ` +
        `"${target.version}" is available`,
    });
    return false;
  };

  const push = (name: string): void => {
    color.set(name, 1);
    stackNames.push(name);
    stackEdges.push(edgesOf(name, catalog.get(name) as CatalogEntry));
    stackNext.push(0);
  };

  for (const target of targets) {
    if (color.has(target)) continue;
    if (!catalog.has(target)) {
      throw new PluginError(
        "ERR_PLUGIN_NOT_FOUND",
        `Cannot resolve load order: no plugin named "${target}"`,
        {
          plugin: target,
          hint: "Check the plugin name, or that its directory was discovered",
        },
      );
    }
    push(target);
    while (stackNames.length > 0) {
      const top = stackNames.length - 1;
      const edges = stackEdges[top] as string[];
      const i = stackNext[top] as number;
      if (i === edges.length) {
        const done = stackNames.pop() as string;
        stackEdges.pop();
        stackNext.pop();
        color.set(done, 2);
        order.push(done);
        continue;
      }
      stackNext[top] = i + 1;
      const dep = edges[i] as string;
      const c = color.get(dep);
      if (c === undefined) push(dep);
      else if (c === 1) {
        const path = [...stackNames.slice(stackNames.indexOf(dep)), dep].join(" -> ");
        throw new PluginError(
          "ERR_DEPENDENCY",
          `Cannot resolve load order: dependency cycle ${path}`,
          {
            plugin: dep,
            hint: "Break the cycle: one of these plugins must not depend on the next",
          },
        );
      }
    }
  }

  if (issues.length > 0) {
    const first = issues[0] as Issue;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
    throw new PluginError("ERR_DEPENDENCY", first.message + more, {
      plugin: first.path.slice(0, first.path.indexOf(".")),
      hint: "Install or upgrade the plugins listed in issues, or relax the ranges",
      issues,
    });
  }
  return order;
}

/**
 * Every plugin that depends on `name`, directly or transitively (required or optional), in the
 * order they must be unloaded before it: dependents before what they depend on. Pass the catalog
 * of loaded plugins to cascade an unload.
 *
 * @param name plugin about to be unloaded
 * @param catalog plugins to consider
 * @returns dependents in unload order, without `name` itself
 * @example
 * ```ts
 * const catalog = new Map([
 *   ["a", { version: "1.0.0", dependencies: { b: "*" } }],
 *   ["b", { version: "1.0.0", dependencies: { c: "*" } }],
 *   ["c", { version: "1.0.0" }],
 * ]);
 * dependentsOf("c", catalog); // ["a", "b"]
 * ```
 */
export function dependentsOf(name: string, catalog: Catalog): string[] {
  const reverse = new Map<string, string[]>();
  for (const [plugin, entry] of catalog) {
    for (const dep of depNames(entry)) {
      const list = reverse.get(dep);
      if (list === undefined) reverse.set(dep, [plugin]);
      else list.push(plugin);
    }
  }
  const found = new Set<string>();
  const queue = [name];
  for (let i = 0; i < queue.length; i++) {
    for (const dependent of reverse.get(queue[i] as string) ?? []) {
      if (dependent === name || found.has(dependent)) continue;
      found.add(dependent);
      queue.push(dependent);
    }
  }
  return unloadOrder(found, catalog);
}

/**
 * Orders plugins for unloading: every plugin before those it depends on (the reverse of load
 * order). Only the given names are ordered; dependencies outside them, versions and ranges are
 * ignored, and a cycle does not throw (it is broken deterministically), so that closing a host
 * always has an order.
 *
 * @param names plugins to unload
 * @param catalog plugins and their dependencies
 * @returns the names in unload order, each once
 * @example
 * ```ts
 * const catalog = new Map([["a", { version: "1.0.0", dependencies: { b: "*" } }], ["b", { version: "1.0.0" }]]);
 * unloadOrder(["b", "a"], catalog); // ["a", "b"]
 * ```
 */
export function unloadOrder(names: Iterable<string>, catalog: Catalog): string[] {
  const wanted = new Set(names);
  const seen = new Set<string>();
  const order: string[] = [];
  const stackNames: string[] = [];
  const stackEdges: string[][] = [];
  const stackNext: number[] = [];
  const push = (name: string): void => {
    seen.add(name);
    stackNames.push(name);
    const entry = catalog.get(name);
    stackEdges.push(entry === undefined ? [] : depNames(entry).filter((d) => wanted.has(d)));
    stackNext.push(0);
  };
  for (const root of wanted) {
    if (seen.has(root)) continue;
    push(root);
    while (stackNames.length > 0) {
      const top = stackNames.length - 1;
      const edges = stackEdges[top] as string[];
      const i = stackNext[top] as number;
      if (i === edges.length) {
        order.push(stackNames.pop() as string);
        stackEdges.pop();
        stackNext.pop();
        continue;
      }
      stackNext[top] = i + 1;
      const dep = edges[i] as string;
      if (!seen.has(dep)) push(dep);
    }
  }
  return order.reverse();
}

function depNames(entry: CatalogEntry): string[] {
  const names = entry.dependencies === undefined ? [] : Object.keys(entry.dependencies);
  if (entry.optionalDependencies !== undefined) {
    for (const dep of Object.keys(entry.optionalDependencies)) {
      if (!names.includes(dep)) names.push(dep);
    }
  }
  return names;
}

function parseRange(range: string, plugin: string | undefined, field: string): Range {
  let cause: unknown;
  if (typeof range === "string") {
    try {
      return new semver.Range(range);
    } catch (error) {
      cause = error;
    }
  }
  const who = plugin === undefined ? "plugin" : `plugin "${plugin}"`;
  throw new PluginError(
    "ERR_MANIFEST_INVALID",
    `Cannot load ${who}: ${field} range ${JSON.stringify(range)} is not a semver range`,
    { ...withPlugin(plugin, { hint: 'Use a semver range such as "^1.2.0"' }), cause },
  );
}

function parseVersion(plugin: string, version: string): SemVer {
  const parsed = typeof version === "string" ? semver.parse(version) : null;
  if (parsed === null) {
    throw new PluginError(
      "ERR_MANIFEST_INVALID",
      `Cannot load plugin "${plugin}": version ${JSON.stringify(version)} is not semver`,
      { plugin, hint: 'Use a semver version such as "1.2.0"' },
    );
  }
  return parsed;
}

function withPlugin(
  plugin: string | undefined,
  options: { hint: string },
): { hint: string; plugin?: string } {
  return plugin === undefined ? options : { ...options, plugin };
}
