/**
 * The plugin manifest (`plugin.json`): validation, normalisation and loading. The schema lives in
 * `manifest_schema.ts` and the limit ranges and defaults in `manifest_limits.ts`; this module
 * re-exports what the rest of bulkhead uses, so it is the one to import.
 *
 * Every problem is reported at once, each with its field path, in one {@link PluginError} with code
 * `ERR_MANIFEST_INVALID`. The result has absolute paths and every default filled in.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
 * const m = parseManifest({ name: "hello", version: "1.0.0", entry: "./mod.ts" }, "/srv/plugins/hello");
 * m.entry; // "/srv/plugins/hello/mod.ts"
 * ```
 * @module
 */

import { readFile } from "node:fs/promises";
import { isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import { type Issue, PluginError } from "./errors.ts";
import { DEFAULT_MANIFEST_LIMITS, type ManifestLimits } from "./manifest_limits.ts";
import { checkManifestSchema, type RawManifest } from "./manifest_schema.ts";

export { DEFAULT_MANIFEST_LIMITS, LIMIT_RANGES, type ManifestLimits } from "./manifest_limits.ts";

/** A validated manifest with absolute paths and defaults filled in. */
export interface Manifest {
  /** Plugin name: lowercase letters, digits, `.`, `_` or `-`, at most 64 characters. */
  name: string;
  /** Semver version, e.g. `1.2.0`. */
  version: string;
  /** Free-text description (at most 1000 characters), when declared. */
  description: string | undefined;
  /** Author (at most 200 characters), when declared. */
  author: string | undefined;
  /** Absolute path of the JS/TS entry module (worker plugins). */
  entry: string | undefined;
  /** Absolute path of the native library per platform key, e.g. `linux-x64` (native plugins). */
  native: Record<string, string> | undefined;
  /** Host API range the plugin works with. */
  engine: string | undefined;
  /** Requested isolation tier. */
  isolation: "worker" | "process" | undefined;
  /** Absolute path of the plugin's directory. */
  dir: string;
  /** Declared permissions; anything absent is denied. */
  permissions: {
    /** `"none"` (the default), `"full"`, or a list of host patterns reached through the broker. */
    network: "none" | "full" | string[];
    /** Absolute paths the plugin may read and write (`"none"` in the file becomes empty lists). */
    filesystem: { read: string[]; write: string[] };
    /** Environment variable names the plugin may read. */
    env: string[];
    /** Shared context keys the plugin may `ctx.get` and `ctx.set`. */
    context: { read: string[]; write: string[] };
  };
  /** Resource limits, with {@link DEFAULT_MANIFEST_LIMITS} filled in for absent ones. */
  limits: ManifestLimits;
  /** Required plugins: name to semver range; loaded first, and a missing one fails the load. */
  dependencies: Record<string, string>;
  /** Plugins loaded first when present: name to semver range; absent is fine, off-range is not. */
  optionalDependencies: Record<string, string>;
  /** Hook name to priority. */
  hooks: Record<string, number>;
}

function resolveInside(
  dir: string,
  p: string,
  field: string,
  issues: Issue[],
  allowAbsolute: boolean,
): string {
  if (isAbsolute(p)) {
    if (!allowAbsolute) {
      issues.push({ path: field, message: `path "${p}" must be relative to the plugin directory` });
    }
    const n = normalize(p);
    if (p.split(/[\\/]/).includes("..")) {
      issues.push({ path: field, message: `path "${p}" must not contain ".." segments` });
    }
    return n.length > 1 && n.endsWith(sep) ? n.slice(0, -1) : n;
  }
  const abs = resolve(dir, p);
  const rel = relative(dir, abs);
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    issues.push({ path: field, message: `path "${p}" escapes the plugin directory` });
  }
  return abs;
}

/**
 * Validates a parsed `plugin.json` and normalises it.
 *
 * @param input the parsed JSON value
 * @param dir absolute path of the plugin's directory (relative paths resolve against it)
 * @returns the manifest with absolute paths and defaults
 * @throws {PluginError} ERR_MANIFEST_INVALID with every problem in `issues`, each with its path
 * @example
 * ```ts
 * parseManifest({ name: "x", version: "1.0.0", entry: "./mod.ts" }, "/p").limits.heapMb; // 50
 * ```
 */
export function parseManifest(input: unknown, dir: string): Manifest {
  if (!isAbsolute(dir)) throw new TypeError(`Cannot parse manifest: dir "${dir}" is not absolute`);
  if (!isRecord(input)) {
    throw invalid(undefined, dir, [{ path: "", message: "must be a JSON object" }]);
  }
  const { output, issues } = checkManifestSchema(input);
  // Path rules depend on the directory, so they run on the input even when the schema failed:
  // the user sees every problem in one pass.
  const obj = isRecord(input) ? input : {};
  const paths = checkPaths(obj, dir, issues);
  if (output === undefined) throw invalid(obj.name, dir, issues);
  const raw: RawManifest = output;
  if (raw.entry === undefined && raw.native === undefined) {
    issues.push({ path: "entry", message: 'is required (or "native" for a native plugin)' });
  }
  if (raw.entry !== undefined && raw.native !== undefined) {
    issues.push({ path: "native", message: 'cannot be combined with "entry"; pick one' });
  }
  const deps = raw.dependencies ?? {};
  if (Object.hasOwn(deps, raw.name)) {
    issues.push({ path: `dependencies.${raw.name}`, message: "a plugin cannot depend on itself" });
  }
  if (issues.length > 0) throw invalid(raw.name, dir, issues);
  const limits: ManifestLimits = { ...DEFAULT_MANIFEST_LIMITS };
  for (const [k, value] of Object.entries(raw.limits ?? {})) {
    if (value !== undefined) limits[k as keyof ManifestLimits] = value;
  }
  const perms = raw.permissions ?? {};
  return {
    name: raw.name,
    version: raw.version,
    description: raw.description,
    author: raw.author,
    entry: paths.entry,
    native: paths.native,
    engine: raw.engine,
    isolation: raw.isolation,
    dir,
    permissions: {
      network: perms.network === undefined ? "none" : perms.network,
      filesystem: { read: paths.read, write: paths.write },
      env: [...(perms.env ?? [])],
      context: { read: [...(perms.context?.read ?? [])], write: [...(perms.context?.write ?? [])] },
    },
    limits,
    dependencies: { ...deps },
    optionalDependencies: { ...(raw.optionalDependencies ?? {}) },
    hooks: { ...(raw.hooks ?? {}) },
  };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

interface ResolvedPaths {
  entry: string | undefined;
  native: Record<string, string> | undefined;
  read: string[];
  write: string[];
}

function checkPaths(obj: Record<string, unknown>, dir: string, issues: Issue[]): ResolvedPaths {
  const out: ResolvedPaths = { entry: undefined, native: undefined, read: [], write: [] };
  if (typeof obj.entry === "string" && obj.entry.length > 0) {
    out.entry = resolveInside(dir, obj.entry, "entry", issues, false);
  }
  if (isRecord(obj.native)) {
    out.native = {};
    for (const [k, p] of Object.entries(obj.native)) {
      if (typeof p === "string" && p.length > 0) {
        out.native[k] = resolveInside(dir, p, `native.${k}`, issues, false);
      }
    }
  }
  const perms = isRecord(obj.permissions) ? obj.permissions : {};
  const fs = isRecord(perms.filesystem) ? perms.filesystem : {};
  for (const mode of ["read", "write"] as const) {
    const list = fs[mode];
    if (!Array.isArray(list)) continue;
    list.forEach((p: unknown, i) => {
      if (typeof p === "string" && p.length > 0) {
        out[mode].push(resolveInside(dir, p, `permissions.filesystem.${mode}.${i}`, issues, true));
      }
    });
  }
  return out;
}

function invalid(name: unknown, dir: string, issues: Issue[]): PluginError {
  const who = typeof name === "string" && name.length > 0 ? `"${name}"` : `in "${dir}"`;
  const list = issues.map((i) => `field "${i.path || "(root)"}" ${i.message}`).join("; ");
  return new PluginError("ERR_MANIFEST_INVALID", `Cannot load plugin ${who}: manifest ${list}`, {
    hint: `Fix ${join(dir, "plugin.json")}; every problem is listed in error.issues with its path`,
    issues,
    ...(typeof name === "string" ? { plugin: name } : {}),
  });
}

/**
 * Parses and validates the text of a `plugin.json`.
 *
 * @param text the file's contents
 * @param dir absolute path of the plugin's directory
 * @returns the manifest
 * @throws {PluginError} ERR_MANIFEST_INVALID when the text is not JSON or is invalid
 * @example
 * ```ts
 * parseManifestText('{"name":"x","version":"1.0.0","entry":"./m.ts"}', "/p").name; // "x"
 * ```
 */
export function parseManifestText(text: string, dir: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    const file = join(dir, "plugin.json");
    throw new PluginError("ERR_MANIFEST_INVALID", `Cannot parse manifest: "${file}" is not JSON`, {
      hint: `Fix the JSON syntax: ${(cause as Error).message}`,
      cause,
      issues: [{ path: "", message: "is not valid JSON" }],
    });
  }
  return parseManifest(json, dir);
}

/**
 * Reads and validates `<dir>/plugin.json`.
 *
 * @param dir the plugin's directory (made absolute)
 * @returns the manifest
 * @throws {PluginError} ERR_MANIFEST_INVALID when the file is missing, not JSON, or invalid
 * @example
 * ```ts
 * const m = await loadManifest("./plugins/hello");
 * ```
 */
export async function loadManifest(dir: string): Promise<Manifest> {
  const abs = resolve(dir);
  const file = join(abs, "plugin.json");
  let textValue: string;
  try {
    textValue = await readFile(file, "utf8");
  } catch (cause) {
    throw new PluginError("ERR_MANIFEST_INVALID", `Cannot read manifest: "${file}" is unreadable`, {
      hint: "Create plugin.json in the plugin directory",
      cause,
      issues: [{ path: "", message: "file is missing or unreadable" }],
    });
  }
  return parseManifestText(textValue, abs);
}
