/**
 * Resource limits a plugin asks for in its manifest, the host's bounds, and the check between them.
 *
 * A plugin declares `limits` in `plugin.json`; the host declares `maxLimits`. {@link checkLimits}
 * refuses a manifest that asks for more than the host allows and names every offending field. It
 * never clamps: a plugin that silently got less than it asked for would fail later, far from the
 * cause. {@link resolveLimits} then fills the fields the plugin left out.
 *
 * @example
 * ```ts
 * import { checkLimits, resolveLimits } from "./limits.ts";
 * checkLimits({ heapMb: 64 }, { heapMb: 128 }, "resizer"); // passes
 * resolveLimits({ heapMb: 64 }, { threads: 2 }, "resizer");
 * // { heapMb: 64, cpuTimeMs: 1000, threads: 2, fileDescriptors: 32, connections: 10 }
 * ```
 * @module
 */

import { type Issue, PluginError } from "./errors.ts";

/** Resource limits of one plugin. Every field is a positive integer. */
export interface Limits {
  /** JS heap (worker `resourceLimits.maxOldGenerationSizeMb`) or native data segment, MiB. */
  heapMb: number;
  /** CPU time one call may use, in milliseconds (also the default call deadline basis). */
  cpuTimeMs: number;
  /** Threads the plugin may run (native child: counted in `/proc/<pid>/status`). */
  threads: number;
  /** Open file descriptors (native child: RLIMIT_NOFILE and `/proc/<pid>/fd`). */
  fileDescriptors: number;
  /** Open network connections. */
  connections: number;
}

/** Name of one field of {@link Limits}. */
export type LimitField = keyof Limits;

/** The fields of {@link Limits}, in declaration order. */
export const LIMIT_FIELDS: readonly LimitField[] = Object.freeze([
  "heapMb",
  "cpuTimeMs",
  "threads",
  "fileDescriptors",
  "connections",
]);

/** Limits a plugin gets for every field its manifest leaves out: 50 MiB, 1000 ms, 4, 32, 10. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  heapMb: 50,
  cpuTimeMs: 1000,
  threads: 4,
  fileDescriptors: 32,
  connections: 10,
});

/**
 * Ceiling applied by the `"strict"` preset of {@link tightenLimits}: 32 MiB, 500 ms, 2 threads,
 * 16 fds, 4 connections: about half of {@link DEFAULT_LIMITS}. The heap stays at 32 MiB rather than
 * 25 because a Node or Deno worker's own baseline heap is several MiB; lower the ceiling further
 * with an explicit {@link Limits} object if your plugins are tiny.
 */
export const STRICT_LIMITS: Readonly<Limits> = Object.freeze({
  heapMb: 32,
  cpuTimeMs: 500,
  threads: 2,
  fileDescriptors: 16,
  connections: 4,
});

/** How {@link tightenLimits} tightens: a factor in (0, 1], a preset, or a per-field ceiling. */
export type TightenPolicy = number | "strict" | Partial<Limits>;

function isLimitField(key: string): key is LimitField {
  return (LIMIT_FIELDS as readonly string[]).includes(key);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

function assertHostLimits(limits: Partial<Limits>, what: string): void {
  if (limits === null || typeof limits !== "object") {
    throw new TypeError(`Cannot check limits: ${what} is not an object`);
  }
  for (const [key, value] of Object.entries(limits)) {
    if (!isLimitField(key)) {
      throw new TypeError(`Cannot check limits: ${what} has unknown field "${key}"`);
    }
    if (value !== undefined && !isPositiveInteger(value)) {
      throw new RangeError(
        `Cannot check limits: ${what}.${key} is "${String(value)}", not a positive integer`,
      );
    }
  }
}

/**
 * Checks the limits a plugin requests against the host's bounds. Never clamps.
 *
 * A field missing from `maxLimits` is unbounded. Every problem is collected before throwing, so one
 * error names all offending fields, each as an issue with path `limits.<field>`.
 *
 * @param requested the manifest's `limits` (fields may be missing)
 * @param maxLimits the host's upper bounds (missing fields are unbounded)
 * @param plugin plugin name, for the message
 * @throws {PluginError} ERR_MANIFEST_INVALID when a requested field is unknown or not a positive
 *   integer
 * @throws {PluginError} ERR_LIMITS when a requested field exceeds the host's bound
 * @throws {TypeError|RangeError} when `maxLimits` itself is malformed (a host bug)
 * @example
 * ```ts
 * try {
 *   checkLimits({ heapMb: 512, threads: 64 }, { heapMb: 128, threads: 8 }, "resizer");
 * } catch (e) {
 *   // e.code === "ERR_LIMITS"; e.issues[0].path === "limits.heapMb"
 * }
 * ```
 */
export function checkLimits(
  requested: Partial<Limits>,
  maxLimits: Partial<Limits>,
  plugin: string,
): void {
  assertHostLimits(maxLimits, "maxLimits");
  if (requested === null || typeof requested !== "object" || Array.isArray(requested)) {
    throw new PluginError(
      "ERR_MANIFEST_INVALID",
      `Cannot load plugin "${plugin}": manifest field "limits" is not an object`,
      { plugin, issues: [{ path: "limits", message: "Expected an object" }] },
    );
  }
  const invalid: Issue[] = [];
  const exceeded: Issue[] = [];
  for (const [key, value] of Object.entries(requested)) {
    if (!isLimitField(key)) {
      invalid.push({ path: `limits.${key}`, message: `Unknown limit "${key}"` });
      continue;
    }
    if (value === undefined) continue;
    if (!isPositiveInteger(value)) {
      invalid.push({
        path: `limits.${key}`,
        message: `Limit "${key}" is "${String(value)}", not a positive integer`,
      });
      continue;
    }
    const max = maxLimits[key];
    if (max !== undefined && value > max) {
      exceeded.push({
        path: `limits.${key}`,
        message: `Requested ${key} "${value}" exceeds the host maximum "${max}"`,
      });
    }
  }
  if (invalid.length > 0) {
    throw new PluginError(
      "ERR_MANIFEST_INVALID",
      `Cannot load plugin "${plugin}": manifest field "${invalid[0]!.path}" is invalid` +
        (invalid.length > 1 ? ` (and ${invalid.length - 1} more)` : ""),
      { plugin, issues: invalid, hint: "Give each limit as a positive integer" },
    );
  }
  if (exceeded.length > 0) {
    const fields = exceeded.map((i) => `"${i.path}"`).join(", ");
    throw new PluginError(
      "ERR_LIMITS",
      `Cannot load plugin "${plugin}": ${fields} exceed${exceeded.length === 1 ? "s" : ""} ` +
        `the host limits (${exceeded.map((i) => i.message).join("; ")})`,
      {
        plugin,
        issues: exceeded,
        hint: "Lower the limits in plugin.json or raise the host's maxLimits",
      },
    );
  }
}

/**
 * Checks requested limits ({@link checkLimits}) and returns the complete set the plugin runs with.
 *
 * A field the plugin leaves out gets `min(defaults[field], maxLimits[field])`, so a host whose
 * bound is below a default still loads plugins that ask for nothing.
 *
 * @param requested the manifest's `limits`
 * @param maxLimits the host's upper bounds
 * @param plugin plugin name, for messages
 * @param defaults values for missing fields; {@link DEFAULT_LIMITS} unless given
 * @returns every field filled in
 * @throws {PluginError} ERR_LIMITS / ERR_MANIFEST_INVALID as {@link checkLimits}
 * @example
 * ```ts
 * resolveLimits({}, { heapMb: 16 }, "tiny").heapMb; // 16
 * ```
 */
export function resolveLimits(
  requested: Partial<Limits>,
  maxLimits: Partial<Limits>,
  plugin: string,
  defaults: Readonly<Limits> = DEFAULT_LIMITS,
): Limits {
  checkLimits(requested, maxLimits, plugin);
  assertHostLimits(defaults, "defaults");
  const out = { ...DEFAULT_LIMITS };
  for (const field of LIMIT_FIELDS) {
    const asked = requested[field];
    const max = maxLimits[field];
    out[field] = asked ?? Math.min(defaults[field], max ?? Infinity);
  }
  return out;
}

/**
 * Tightens limits for a strict policy. Never loosens: every result field is ≤ its input.
 *
 * - a number `f` in (0, 1]: each field becomes `max(1, floor(field * f))`;
 * - `"strict"`: each field is capped at {@link STRICT_LIMITS};
 * - a partial {@link Limits}: each given field is a ceiling.
 *
 * Apply it to the host's `maxLimits` (strict hosts refuse manifests that ask for more) or to
 * resolved limits (strict hosts run plugins with less).
 *
 * @param limits the limits to tighten
 * @param policy factor, preset or ceiling
 * @returns a new object; the input is not modified
 * @throws {RangeError} when the factor is not in (0, 1] or a ceiling is not a positive integer
 * @throws {TypeError} when the preset is unknown
 * @example
 * ```ts
 * tightenLimits(DEFAULT_LIMITS, 0.5); // { heapMb: 25, cpuTimeMs: 500, threads: 2, ... }
 * tightenLimits(DEFAULT_LIMITS, "strict").heapMb; // 32
 * ```
 */
export function tightenLimits(limits: Readonly<Limits>, policy: TightenPolicy): Limits {
  const out = { ...limits };
  if (typeof policy === "number") {
    if (!(policy > 0 && policy <= 1)) {
      throw new RangeError(`Cannot tighten limits: factor "${policy}" is not in (0, 1]`);
    }
    for (const field of LIMIT_FIELDS) {
      out[field] = Math.max(1, Math.floor(limits[field] * policy));
    }
    return out;
  }
  let ceiling: Partial<Limits>;
  if (policy === "strict") ceiling = STRICT_LIMITS;
  else if (typeof policy === "object" && policy !== null) {
    assertHostLimits(policy, "ceiling");
    ceiling = policy;
  } else throw new TypeError(`Cannot tighten limits: unknown preset "${String(policy)}"`);
  for (const field of LIMIT_FIELDS) {
    const cap = ceiling[field];
    if (cap !== undefined) out[field] = Math.min(limits[field], cap);
  }
  return out;
}
