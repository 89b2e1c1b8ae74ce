/**
 * Reading what a plugin replies, as untrusted data: ready reports and serialized errors are
 * rebuilt field by field, bounded, and never throw. Private to lib/tiers.
 * @module
 */

import {
  deserializeError,
  isErrorCode,
  type Issue,
  MAX_CAUSE_DEPTH,
  plainFields,
  PluginError,
  type SerializedError,
} from "../errors.ts";
import type { ReadyInfo } from "../protocol/messages.ts";

/** Most names a ready report may list per kind (a plugin cannot make the host hold more). */
const MAX_READY_NAMES = 10_000;

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.length <= MAX_READY_NAMES && v.every((s) => typeof s === "string");
}

/** A ready report with the right shape, copied, or null. */
export function readyFrom(value: unknown): ReadyInfo | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!isStringList(v.methods)) return null;
  const hooks = v.hooks ?? [];
  const lifecycle = v.lifecycle ?? [];
  if (!isStringList(hooks) || !isStringList(lifecycle)) return null;
  return { methods: [...v.methods], hooks: [...hooks], lifecycle: [...lifecycle] };
}

const MAX_TEXT = 16 * 1024;

function text(v: unknown): string | undefined {
  return typeof v === "string" ? v.slice(0, MAX_TEXT) : undefined;
}

/**
 * Rebuilds an error a plugin reported, from untrusted data: string fields bounded, its own
 * plain-data `fields` (bounded by {@link plainFields}) as own data properties that never replace
 * a property the error already has or inherits, and its `cause` chain, each cause rebuilt the
 * same way, at most {@link MAX_CAUSE_DEPTH} deep.
 * A plugin's words never pass for a host decision: an error carrying one of bulkhead's codes
 * becomes `ERR_PLUGIN_THREW` with that code in `pluginCode`; any other error comes back as a plain
 * `Error` (its own `code` kept). Null when the value is not an error object. Never throws.
 *
 * @param value the plugin's serialized error
 * @param plugin the plugin's name (errors always name the plugin that reported them)
 * @returns the error, or null
 */
export function errorFrom(value: unknown, plugin: string): Error | null {
  try {
    return rebuild(value, plugin, 0);
  } catch {
    return null;
  }
}

function rebuild(value: unknown, plugin: string, depth: number): Error | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  const message = text(v.message);
  if (message === undefined) return null;
  const bounded: SerializedError = { name: text(v.name) ?? "Error", message, plugin };
  for (const key of ["code", "hint", "stack"] as const) {
    const field = text(v[key]);
    if (field !== undefined) bounded[key] = field;
  }
  if (Array.isArray(v.issues)) {
    bounded.issues = v.issues.slice(0, 1000).filter((i): i is Issue =>
      typeof i === "object" && i !== null && typeof (i as Issue).path === "string" &&
      typeof (i as Issue).message === "string"
    ).map((i) => ({ path: i.path.slice(0, 1000), message: i.message.slice(0, MAX_TEXT) }));
  }
  const code = bounded.code;
  let error: Error;
  if (code === undefined || !isErrorCode(code)) {
    error = deserializeError(bounded);
  } else {
    error = new PluginError("ERR_PLUGIN_THREW", message, {
      plugin,
      ...(bounded.hint !== undefined ? { hint: bounded.hint } : {}),
      ...(bounded.issues !== undefined ? { issues: bounded.issues } : {}),
      ...(code !== "ERR_PLUGIN_THREW" ? { pluginCode: code } : {}),
    });
    if (bounded.stack !== undefined) error.stack = bounded.stack;
  }
  const fields = plainFields(v.fields) ?? {};
  for (const key of Object.keys(fields)) {
    // `in`: neither an own property (code, pluginCode, issues...) nor an inherited one (toString).
    if (key in error) continue;
    Object.defineProperty(error, key, {
      value: fields[key],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const cause = depth < MAX_CAUSE_DEPTH ? rebuild(v.cause, plugin, depth + 1) : null;
  if (cause !== null) {
    Object.defineProperty(error, "cause", { value: cause, writable: true, configurable: true });
  }
  return error;
}
