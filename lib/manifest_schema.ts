/**
 * The valibot schema of `plugin.json`, and its issues translated into {@link Issue}s with field
 * paths and messages that say what to fix.
 *
 * The schema checks each field's shape on its own. What needs the plugin directory or several
 * fields at once (paths, `entry` or `native`, self-dependency) is checked by `parseManifest`.
 *
 * @example
 * ```ts
 * import { checkManifestSchema } from "./manifest_schema.ts";
 * checkManifestSchema({ name: "Hello", version: "1" }).issues[0]?.path; // "name"
 * ```
 * @module
 */

import * as v from "valibot";
import semver from "semver";
import type { Issue } from "./errors.ts";
import { LIMIT_RANGES, type ManifestLimits } from "./manifest_limits.ts";
import { tryParseHostPattern } from "../permissions/host_pattern.ts";

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

/** A manifest as the schema outputs it: shapes checked, paths still relative, no defaults. */
export type RawManifest = v.InferOutput<typeof ManifestSchema>;

/** What {@link checkManifestSchema} found. */
export interface SchemaResult {
  /** The checked manifest, or `undefined` when any field is invalid. */
  output: RawManifest | undefined;
  /** Every problem, each with its field path; empty when `output` is set. */
  issues: Issue[];
}

/**
 * Checks a parsed `plugin.json` against the schema.
 *
 * @param input the parsed JSON value
 * @returns the checked manifest, or every issue with its field path
 * @example
 * ```ts
 * checkManifestSchema({ name: "x", version: "1.0.0", entry: "./mod.ts" }).issues; // []
 * ```
 */
export function checkManifestSchema(input: unknown): SchemaResult {
  const result = v.safeParse(ManifestSchema, input);
  if (result.success) return { output: result.output, issues: [] };
  return { output: undefined, issues: flattenIssues(result.issues, "") };
}
