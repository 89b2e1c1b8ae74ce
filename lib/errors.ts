/**
 * The one error type callers handle, and the registry of its codes.
 *
 * Every condition a caller is expected to handle is a {@link PluginError} with a stable `code`
 * and a `hint` that says what to do. Codes are never reused for another meaning.
 *
 * @example
 * ```ts
 * import { PluginError } from "./errors.ts";
 * try {
 *   throw new PluginError("ERR_MANIFEST_INVALID", 'Cannot load plugin "x": bad manifest', {
 *     hint: "Fix plugin.json",
 *   });
 * } catch (e) {
 *   if (e instanceof PluginError) console.log(e.code);
 * }
 * ```
 * @module
 */

import { MAX_CAUSE_DEPTH, plainFields } from "./_plain_fields.ts";

export { MAX_CAUSE_DEPTH, plainFields };

/** Every error code bulkhead raises, with what it means. */
export const ERROR_CODES = {
  ERR_MANIFEST_INVALID: "plugin.json is missing, unreadable, or fails validation",
  ERR_PLUGIN_NOT_FOUND: "no discovered plugin has that name",
  ERR_DUPLICATE: "two plugins share a name, or a plugin is already loaded",
  ERR_PERMISSION_DENIED: "a plugin tried something its manifest does not grant",
  ERR_CALL_TIMEOUT:
    "a plugin did not answer in time: a call, hook or lifecycle step past its deadline, or not ready within loadTimeoutMs",
  ERR_PLUGIN_CRASHED: "the plugin's worker or process died",
  ERR_PLUGIN_FAILED: "the plugin is in the failed state and accepts no calls",
  ERR_PLUGIN_NOT_ACTIVE: "the plugin is not active (paused, unloading or unloaded)",
  ERR_METHOD_NOT_FOUND: "the plugin does not export the called method",
  ERR_PLUGIN_INIT: "the plugin module failed to import or its init() threw",
  ERR_PLUGIN_THREW:
    "a plugin threw or reported an error; the code it gave, if any, is in `pluginCode` (never a host decision)",
  ERR_RUNTIME_UNSUPPORTED: "the current runtime cannot enforce what the policy requires",
  ERR_SIGNATURE_INVALID: "a signature or signed statement does not verify",
  ERR_UNTRUSTED: "the plugin is not signed by a trusted key, or its key or digest is revoked",
  ERR_TRUST_LIST:
    "the trust list's key is wrong, or its file is unreadable, corrupted, missing after it existed, or locked by another writer",
  ERR_DOWNGRADE: "a plugin version lower than one already trusted was refused",
  ERR_DEPENDENCY: "a dependency is missing, out of range, or part of a cycle",
  ERR_ENGINE: "the plugin's engine range does not include this host's API version",
  ERR_LIMITS: "a manifest limit exceeds what the host allows",
  ERR_RESOURCE_LIMIT:
    "a plugin exceeded a resource limit: the request was refused (a budget), or the plugin was stopped",
  ERR_STATE: "an illegal lifecycle transition was requested",
  ERR_IPC:
    "a plugin broke the host protocol: a malformed, unexpected or oversized message or frame on any tier",
  ERR_ABI: "a native library's ABI version does not match this host",
  ERR_NATIVE_LOAD: "a native library could not be loaded",
  ERR_SANDBOX: "the sandbox launcher could not start or the kernel refused a restriction",
  ERR_HOST_CLOSED: "the host was closed",
  ERR_INVALID_INPUT: "a value a plugin or caller passed is malformed (bad URL, unclonable value)",
  ERR_BUSY: "a plugin's call queue is full (maxInFlight calls running and maxQueued waiting)",
  ERR_IO:
    "a file the host writes (the audit log) cannot be written: disk full, I/O error, no permission",
} as const;

/** A stable error code; see {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** One problem found in user input, with the field path it concerns. */
export interface Issue {
  /** Dotted path of the field, e.g. `permissions.network.1`; empty for the whole document. */
  path: string;
  /** What is wrong, in a sentence. */
  message: string;
}

/** Options for {@link PluginError}. */
export interface PluginErrorOptions {
  /** What the caller can do about it. */
  hint?: string;
  /** The underlying error. */
  cause?: unknown;
  /** Plugin the error concerns. */
  plugin?: string;
  /** Every problem found, for validation errors. */
  issues?: Issue[];
  /** The code a plugin gave its own error (only on `ERR_PLUGIN_THREW` and `ERR_PLUGIN_INIT`). */
  pluginCode?: string;
}

/**
 * An error a caller is expected to handle, identified by its stable `code`.
 *
 * @example
 * ```ts
 * const e = new PluginError("ERR_CALL_TIMEOUT", 'Cannot call "x": timed out after 1000 ms');
 * e.code; // "ERR_CALL_TIMEOUT"
 * ```
 */
export class PluginError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** What to do about it. */
  readonly hint: string;
  /** Plugin the error concerns, if any. */
  readonly plugin: string | undefined;
  /** Every problem found (validation errors), each with a field path. */
  readonly issues: Issue[];
  /**
   * The code the plugin put on its own error, kept apart from `code` so that a plugin cannot
   * pass its words off as a host decision (a thrown `{ code: "ERR_CALL_TIMEOUT" }` arrives as
   * `ERR_PLUGIN_THREW` with `pluginCode: "ERR_CALL_TIMEOUT"`).
   */
  readonly pluginCode: string | undefined;

  /**
   * Creates an error with a stable code; `hint` defaults to the code's entry in
   * {@link ERROR_CODES} and `issues` to an empty list.
   *
   * @param code stable code from {@link ERROR_CODES}
   * @param message `Cannot <action>: <state>` sentence
   * @param options hint, cause, plugin, issues
   */
  constructor(code: ErrorCode, message: string, options: PluginErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PluginError";
    this.code = code;
    this.hint = options.hint ?? ERROR_CODES[code];
    this.plugin = options.plugin;
    this.issues = options.issues ?? [];
    this.pluginCode = options.pluginCode;
  }
}

/** Plain-object form of an error, safe to structured-clone across worker and process boundaries. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  hint?: string;
  plugin?: string;
  stack?: string;
  issues?: Issue[];
  pluginCode?: string;
  /** The error's own plain-data fields (a ZodError's `issues`, custom fields), bounded. */
  fields?: Record<string, unknown>;
  /** The error's `cause`, serialized the same way, at most {@link MAX_CAUSE_DEPTH} deep. */
  cause?: SerializedError;
}

/**
 * Turns any thrown value into a structured-clone-safe object that keeps `code` and `hint`, the
 * error's own plain-data fields (see {@link plainFields}) and its `cause` chain.
 *
 * @param error anything that was thrown
 * @returns a plain object
 * @example
 * ```ts
 * serializeError(new PluginError("ERR_STATE", "Cannot pause: not active")).code; // "ERR_STATE"
 * ```
 */
export function serializeError(error: unknown): SerializedError {
  return serializeAt(error, 0);
}

function serializeAt(error: unknown, depth: number): SerializedError {
  // Total: a plugin may throw anything (a null-prototype object, a Proxy, getters that throw).
  try {
    if (error instanceof Error) {
      const e = error as Error & Record<string, unknown>;
      const out: SerializedError = {
        name: stringField(e, "name") ?? "Error",
        message: stringField(e, "message") ?? "",
      };
      for (const key of ["code", "hint", "plugin", "stack", "pluginCode"] as const) {
        const v = stringField(e, key);
        if (v !== undefined) out[key] = v;
      }
      const issues = field(e, "issues");
      if (Array.isArray(issues)) out.issues = issuesFrom(issues);
      // `issues` may be a getter (a validation library's): read it, the other fields only as data.
      const fields = plainFields(e, ["issues"]);
      if (fields !== undefined) out.fields = fields;
      const cause = depth < MAX_CAUSE_DEPTH ? field(e, "cause") : undefined;
      if (cause !== undefined) out.cause = serializeAt(cause, depth + 1);
      return out;
    }
  } catch {
    // fall through to the plain description
  }
  return { name: "Error", message: describe(error) };
}

function field(o: Record<string, unknown>, key: string): unknown {
  try {
    return o[key];
  } catch {
    return undefined;
  }
}

function stringField(o: Record<string, unknown>, key: string): string | undefined {
  const v = field(o, key);
  return typeof v === "string" ? v : undefined;
}

function issuesFrom(list: unknown[]): Issue[] {
  const out: Issue[] = [];
  for (const i of list.slice(0, 1000)) {
    if (typeof i !== "object" || i === null) continue;
    const path = stringField(i as Record<string, unknown>, "path");
    const message = stringField(i as Record<string, unknown>, "message");
    if (path !== undefined && message !== undefined) out.push({ path, message });
  }
  return out;
}

/** Text for any thrown value, never throwing. */
function describe(value: unknown): string {
  try {
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return "an error value that cannot be described";
    }
  }
}

/**
 * Rebuilds an error from {@link serializeError} output. Known codes come back as
 * {@link PluginError}; anything else as a plain `Error` with its name and `code` kept.
 *
 * @param data serialized error
 * @returns the error
 * @example
 * ```ts
 * deserializeError({ name: "PluginError", message: "x", code: "ERR_STATE" }) instanceof PluginError;
 * ```
 */
export function deserializeError(data: SerializedError): Error {
  // The data may come from a plugin: read only string fields, never throw.
  const d = (typeof data === "object" && data !== null ? data : {}) as Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
  const message = str(d.message) ?? String(d.message ?? "unknown error");
  const code = str(d.code);
  const stack = str(d.stack);
  if (code !== undefined && isErrorCode(code)) {
    const opts: PluginErrorOptions = {};
    const hint = str(d.hint);
    const plugin = str(d.plugin);
    if (hint !== undefined) opts.hint = hint;
    if (plugin !== undefined) opts.plugin = plugin;
    if (Array.isArray(d.issues)) opts.issues = d.issues as Issue[];
    const err = new PluginError(code, message, opts);
    if (stack !== undefined) err.stack = stack;
    return err;
  }
  const err = new Error(message) as Error & { code?: string };
  err.name = str(d.name) ?? "Error";
  if (code !== undefined) err.code = code;
  if (stack !== undefined) err.stack = stack;
  return err;
}

/**
 * Whether a string is one of bulkhead's error codes.
 *
 * @param code candidate
 * @returns true for a key of {@link ERROR_CODES}
 * @example
 * ```ts
 * isErrorCode("ERR_STATE"); // true
 * ```
 */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
