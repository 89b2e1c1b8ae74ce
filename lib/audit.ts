/**
 * Security audit log: one JSON line per security-relevant event, secrets redacted.
 *
 * The application chooses the sink: a function that receives each line (without the trailing
 * newline), or a file path that is opened once with `O_APPEND | O_CREAT` (mode 0600) and written
 * with one `write(2)` per line, so concurrent writers never interleave inside a line. Writes are
 * synchronous: an event is on its way to the kernel before the action it records proceeds.
 *
 * Details pass through {@link redactSecrets}: values under keys that look like credentials
 * (`/pass|secret|token|key(?!Id)|authorization/i`) become `"[REDACTED]"`, and an `env` object
 * keeps its variable names but never its values.
 *
 * @example
 * ```ts
 * import { AuditLog } from "./audit.ts";
 * const lines: string[] = [];
 * const audit = new AuditLog((line) => lines.push(line));
 * audit.write("load", "resizer", { version: "1.2.0", apiKey: "abc" });
 * // {"ts":"2025-…","event":"load","plugin":"resizer","version":"1.2.0","apiKey":"[REDACTED]"}
 * ```
 * @module
 */

import { closeSync, openSync, writeSync } from "node:fs";

/**
 * Known audit events; any other lower_snake_case name is accepted too (`string & Record<never,
 * never>` keeps editor completion for the known names).
 */
export type AuditEventName =
  | "load"
  | "unload"
  | "trust"
  | "untrusted"
  | "signature_invalid"
  | "permission_denied"
  | "limits_refused"
  | "violation"
  | "unmount"
  | "crash"
  | (string & Record<never, never>);

/** One audit record as written. */
export interface AuditEvent {
  /** Time of the event, ISO 8601 UTC. */
  ts: string;
  /** What happened. */
  event: AuditEventName;
  /** Plugin concerned (empty string for host-wide events). */
  plugin: string;
  /** Redacted details. */
  [detail: string]: unknown;
}

/** Receives one JSON line per event, without the trailing newline. */
export type AuditSink = (line: string) => void;

/** Options for {@link AuditLog}. */
export interface AuditLogOptions {
  /** Clock for `ts`; defaults to `() => new Date()`. */
  now?: () => Date;
}

/** Keys whose values are credentials. `keyId` and friends are identifiers, not secrets. */
export const SECRET_KEY_PATTERN: RegExp = /pass|secret|token|key(?!Id)|authorization/i;
/** Keys whose value is an environment: names are kept, values never. */
const ENV_KEY_PATTERN = /^(env|environment)$/i;
const REDACTED = "[REDACTED]";
const MAX_DEPTH = 8;
const EVENT_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Returns a JSON-safe deep copy of `value` with secrets removed.
 *
 * - values under keys matching {@link SECRET_KEY_PATTERN} become `"[REDACTED]"`;
 * - an object under `env`/`environment` keeps its keys, every value becomes `"[REDACTED]"`
 *   (a string or array there is redacted whole);
 * - errors become `{ name, message, code? }`, dates ISO strings, bigints strings; functions and
 *   symbols are dropped; cycles become `"[Circular]"`, nesting past 8 levels `"[Truncated]"`.
 *
 * @param value anything
 * @returns the redacted copy
 * @example
 * ```ts
 * redactSecrets({ user: "a", password: "b", nested: { Authorization: "Bearer x" } });
 * // { user: "a", password: "[REDACTED]", nested: { Authorization: "[REDACTED]" } }
 * ```
 */
export function redactSecrets(value: unknown): unknown {
  return redact(value, 0, new WeakSet());
}

function redact(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object") return undefined; // function, symbol, undefined
  if (seen.has(value)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[Truncated]";
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((v) => redact(v, depth + 1, seen) ?? null);
    }
    const source: Record<string, unknown> = value instanceof Error
      ? errorFields(value)
      : (value as Record<string, unknown>);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(source)) {
      const v = source[key];
      if (SECRET_KEY_PATTERN.test(key)) out[key] = REDACTED;
      else if (ENV_KEY_PATTERN.test(key)) out[key] = redactEnv(v);
      else {
        const r = redact(v, depth + 1, seen);
        if (r !== undefined) out[key] = r;
      }
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

function errorFields(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") out.code = code;
  return out;
}

function redactEnv(v: unknown): unknown {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const out: Record<string, string> = {};
    for (const k of Object.keys(v)) out[k] = REDACTED;
    return out;
  }
  return v === undefined ? undefined : REDACTED;
}

/**
 * Append-only writer of {@link AuditEvent}s as JSON lines.
 *
 * @example
 * ```ts
 * const audit = new AuditLog("/var/log/bulkhead/audit.jsonl");
 * try {
 *   audit.write("permission_denied", "resizer", { permission: "net", target: "evil.example" });
 * } finally {
 *   audit.close();
 * }
 * ```
 */
export class AuditLog {
  #sink: AuditSink | undefined;
  #fd: number | undefined;
  #now: () => Date;
  #closed = false;

  /**
   * Opens the log on a sink.
   *
   * @param sink a function receiving each line, or a file path to append to
   * @param options clock
   * @throws {TypeError} when the sink is neither a function nor a non-empty string
   * @throws {Error} the `node:fs` error when the file cannot be opened (e.g. EACCES, ENOENT dir)
   */
  constructor(sink: AuditSink | string, options: AuditLogOptions = {}) {
    if (typeof sink === "function") this.#sink = sink;
    else if (typeof sink === "string" && sink !== "") this.#fd = openSync(sink, "a", 0o600);
    else throw new TypeError("Cannot create audit log: sink is not a function or a file path");
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Writes one event.
   *
   * @param event what happened, lower_snake_case
   * @param plugin plugin concerned (`""` for host-wide events)
   * @param details extra fields, redacted with {@link redactSecrets}; `ts`, `event` and
   *   `plugin` are reserved
   * @returns the record as written
   * @throws {TypeError} when the event name is not lower_snake_case, the plugin not a string, or
   *   a detail uses a reserved key
   * @throws {Error} when the log is closed, or whatever the sink or `write(2)` throws (never
   *   swallowed: a lost audit record must be visible)
   * @example
   * ```ts
   * audit.write("violation", "resizer", { type: "heap", used: 80, limit: 50 });
   * ```
   */
  write(event: AuditEventName, plugin: string, details: Record<string, unknown> = {}): AuditEvent {
    if (this.#closed) throw new Error(`Cannot write audit event "${event}": the log is closed`);
    if (typeof event !== "string" || !EVENT_NAME.test(event)) {
      throw new TypeError(
        `Cannot write audit event: name "${String(event)}" is not lower_snake_case`,
      );
    }
    if (typeof plugin !== "string") {
      throw new TypeError(`Cannot write audit event "${event}": plugin is not a string`);
    }
    const redacted = redactSecrets(details);
    const rest = redacted !== null && typeof redacted === "object" && !Array.isArray(redacted)
      ? (redacted as Record<string, unknown>)
      : { details: redacted };
    for (const reserved of ["ts", "event", "plugin"]) {
      if (Object.hasOwn(rest, reserved)) {
        throw new TypeError(
          `Cannot write audit event "${event}": detail "${reserved}" is reserved`,
        );
      }
    }
    // Key order ts, event, plugin first: easier to read and to grep.
    const record: AuditEvent = { ts: this.#now().toISOString(), event, plugin, ...rest };
    const line = JSON.stringify(record);
    if (this.#sink !== undefined) this.#sink(line);
    else writeAll(this.#fd!, new TextEncoder().encode(`${line}\n`));
    return record;
  }

  /** Closes the file (if the sink is a path). Further writes throw. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#fd !== undefined) closeSync(this.#fd);
  }
}

/** One `write(2)` per line in practice; loops only on a short write (disk full, signal). */
function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}
