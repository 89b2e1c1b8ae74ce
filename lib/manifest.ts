/**
 * The plugin manifest (`plugin.json`): schema, validation and normalisation.
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
import * as v from "valibot";
import semver from "semver";
import { type Issue, PluginError } from "./errors.ts";
import type { Limits } from "./limits.ts";
import { tryParseHostPattern } from "../permissions/host_pattern.ts";

/** Resource limits of one plugin: the one {@link Limits} type, under its manifest name. */
export type ManifestLimits = Limits;

/** Defaults for absent limits. */
export const DEFAULT_MANIFEST_LIMITS: Readonly<ManifestLimits> = Object.freeze({
  heapMb: 50,
  cpuTimeMs: 1000,
  threads: 4,
  fileDescriptors: 32,
  connections: 10,
});

/** Accepted ranges for each limit (inclusive). */
export const LIMIT_RANGES: Readonly<Record<keyof ManifestLimits, readonly [number, number]>> =
  Object.freeze({
    heapMb: [8, 16384],
    cpuTimeMs: [1, 3_600_000],
    threads: [1, 1024],
    fileDescriptors: [4, 65536],
    connections: [0, 65536],
  });

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

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ENV = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const KEY = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
const HOOK = /^[a-z][a-z0-9_.:-]{0,63}$/;
const PLATFORM = /^(linux|darwin|win32|freebsd)-(x64|arm64|ia32|arm|riscv64)$/;

const text = (max: number) =>
  v.pipe(v.string(), v.maxLength(max, `must be at most ${max} characters`));

const versionSchema = v.pipe(
  v.string("must be a string"),
  v.check((s) => semver.valid(s) === s, "must be a semver version such as 1.2.0"),
);
const rangeSchema = v.pipe(
  v.string("must be a string"),
  v.check((s) => semver.validRange(s) !== null, "must be a semver range such as ^1.0.0"),
);
const relPath = v.pipe(v.string("must be a string"), v.minLength(1, "must not be empty"));

function limit(key: keyof ManifestLimits) {
  const [min, max] = LIMIT_RANGES[key];
  return v.optional(
    v.pipe(
      v.number("must be a number"),
      v.integer("must be an integer"),
      v.minValue(min, `must be at least ${min}`),
      v.maxValue(max, `must be at most ${max}`),
    ),
  );
}

const keyList = v.array(v.pipe(v.string(), v.regex(KEY, "must be a context key name")));

const hostPattern = v.pipe(
  v.string("must be a string"),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const r = tryParseHostPattern(dataset.value);
    if (typeof r === "string") addIssue({ message: `is not a host pattern: it ${r}` });
  }),
);

const ManifestSchema = v.strictObject({
  $schema: v.optional(v.string()),
  name: v.pipe(
    v.string("must be a string"),
    v.regex(NAME, "must be lowercase letters, digits, '.', '_' or '-', at most 64 characters"),
  ),
  version: versionSchema,
  description: v.optional(text(1000)),
  author: v.optional(text(200)),
  entry: v.optional(relPath),
  native: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(PLATFORM, "must be a platform key like linux-x64")),
      relPath,
    ),
  ),
  engine: v.optional(rangeSchema),
  isolation: v.optional(v.picklist(["worker", "process"], 'must be "worker" or "process"')),
  permissions: v.optional(
    v.strictObject({
      network: v.optional(
        v.union(
          [v.literal("none"), v.literal("full"), v.array(hostPattern)],
          'must be "none", "full" or a list of host patterns',
        ),
      ),
      filesystem: v.optional(
        v.union([
          v.literal("none"),
          v.strictObject({
            read: v.optional(v.array(relPath)),
            write: v.optional(v.array(relPath)),
          }),
        ], 'must be "none" or { "read": [...], "write": [...] }'),
      ),
      env: v.optional(
        v.array(v.pipe(v.string(), v.regex(ENV, "must be an environment variable name"))),
      ),
      context: v.optional(
        v.strictObject({ read: v.optional(keyList), write: v.optional(keyList) }),
      ),
    }),
  ),
  limits: v.optional(
    v.strictObject({
      heapMb: limit("heapMb"),
      cpuTimeMs: limit("cpuTimeMs"),
      threads: limit("threads"),
      fileDescriptors: limit("fileDescriptors"),
      connections: limit("connections"),
    }),
  ),
  dependencies: v.optional(
    v.record(v.pipe(v.string(), v.regex(NAME, "must be a plugin name")), rangeSchema),
  ),
  optionalDependencies: v.optional(
    v.record(v.pipe(v.string(), v.regex(NAME, "must be a plugin name")), rangeSchema),
  ),
  hooks: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(HOOK, "must be a hook name like on_request")),
      v.pipe(v.number(), v.integer("must be an integer"), v.minValue(0), v.maxValue(10000)),
    ),
  ),
});

type RawManifest = v.InferOutput<typeof ManifestSchema>;

function issuePath(issue: v.BaseIssue<unknown>): string {
  return v.getDotPath(issue) ?? "";
}

// A union reports one issue for the whole field; when a branch got past the field itself (the
// value was an object with a bad key), report that branch's issues instead. Branch issue paths
// are relative to the union's field.
function flattenIssues(list: readonly v.BaseIssue<unknown>[], prefix: string): Issue[] {
  const out: Issue[] = [];
  for (const issue of list) {
    const own = [prefix, issuePath(issue)].filter((x) => x !== "").join(".");
    const deeper = issue.type === "union"
      ? (issue.issues ?? []).filter((s) => issuePath(s).length > 0)
      : [];
    if (deeper.length > 0) out.push(...flattenIssues(deeper, own));
    else out.push({ path: own, message: describeIssue(issue) });
  }
  return out;
}

function describeIssue(issue: v.BaseIssue<unknown>): string {
  if (
    issue.kind === "schema" && issue.received === "undefined" &&
    issue.message.startsWith("Invalid key")
  ) {
    return "is required";
  }
  // valibot's default messages for unknown keys and wrong types are terse; say what to fix.
  if (issue.expected === "never") return "is not a known field; remove it or check its spelling";
  if (issue.type === "strict_object" && issuePath(issue) === "") return "must be a JSON object";
  if (issue.type === "union" && issue.issues !== undefined && issue.message.startsWith("Invalid")) {
    return issue.issues[0]?.message ?? issue.message;
  }
  return issue.message;
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
  const result = v.safeParse(ManifestSchema, input);
  const issues: Issue[] = [];
  if (!result.success) {
    issues.push(...flattenIssues(result.issues, ""));
  }
  // Path rules depend on the directory, so they run on the input even when the schema failed:
  // the user sees every problem in one pass.
  const obj = isRecord(input) ? input : {};
  const paths = checkPaths(obj, dir, issues);
  if (!result.success) throw invalid(obj.name, dir, issues);
  const raw: RawManifest = result.output;
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
  let json: unknown;
  try {
    json = JSON.parse(textValue);
  } catch (cause) {
    throw new PluginError("ERR_MANIFEST_INVALID", `Cannot parse manifest: "${file}" is not JSON`, {
      hint: `Fix the JSON syntax: ${(cause as Error).message}`,
      cause,
      issues: [{ path: "", message: "is not valid JSON" }],
    });
  }
  return parseManifest(json, abs);
}
