/**
 * Security audit log: one JSON line per security-relevant event, secrets redacted, size and rate
 * bounded, and never a reason for the host to fail.
 *
 * The application chooses the sink: a function that receives each line (without the trailing
 * newline), or a file path that is opened once with `O_APPEND | O_CREAT` (mode 0600) and written
 * with one `write(2)` per entry, so concurrent writers never interleave inside a line. Writes are
 * synchronous: an event is on its way to the kernel before the action it records proceeds.
 *
 * Details pass through {@link redactSecrets}: values under keys that look like credentials
 * (`/pass|secret|token|key(?!Id)|authorization/i`) become `"[REDACTED]"`, and an `env` object
 * keeps its variable names but never its values. Long strings are cut (`maxFieldChars`), an
 * entry too large even then keeps only `ts`, `event`, `plugin` and `truncated` (its size in
 * bytes), and each plugin gets a token bucket per event (`rateLimit`): what it refuses is counted
 * and written as one `audit_suppressed` entry per plugin and event, at most a second later (and
 * at close): `{"ts":…,"event":"audit_suppressed","plugin":"p","kind":"permission_denied",
 * "suppressed":9980,"since":…}`.
 *
 * With `onError` or `logger`, a failing sink (a full disk, an I/O error, a sink function that
 * throws, a write after close) never throws: the entry is dropped, the failure is reported once
 * per episode (until a write succeeds again), and the first entry after recovery is
 * `{"ts":…,"event":"audit_lost","plugin":"","lost":6,"since":…}`. A file that ends inside a line
 * (a writer died mid-line, or a short write before ENOSPC) gets a newline before the next entry.
 * Audit failures never change what the host decides.
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

import { clearTimeout, setTimeout } from "node:timers";
import { PluginError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { describeError, redactBounded, truncate } from "./_audit_redact.ts";
import { RateLimiter, summaryLine } from "./_audit_rate.ts";
import { AppendFile } from "./_audit_file.ts";

export { redactSecrets, SECRET_KEY_PATTERN } from "./_audit_redact.ts";

/**
 * Known audit events; any other lower_snake_case name (up to 64 characters) is accepted too
 * (`string & Record<never, never>` keeps editor completion for the known names).
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
  | "audit_suppressed"
  | "audit_lost"
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

/** Options for {@link AuditLog}; the defaults are in {@link AUDIT_DEFAULTS}. */
export interface AuditLogOptions {
  /** Clock for `ts` and for the rate limit; defaults to `() => new Date()`. */
  now?: () => Date;
  /**
   * Receives a failing sink once per failure episode, as a `PluginError` with code `ERR_IO`
   * (its `cause` is the underlying error). Given this or `logger`, writes never throw for sink
   * failures. An exception it throws is ignored: the log has nowhere left to report it.
   */
  onError?: (error: PluginError) => void;
  /** Gets the same report at `error` level, and a `warn` line when writing works again. */
  logger?: Logger;
  /** Longest string (value or key, in UTF-16 code units) kept whole; default 1,024. */
  maxFieldChars?: number;
  /** Largest line in UTF-8 bytes (at least 1,024); default 16,384. */
  maxEntryBytes?: number;
  /**
   * Entries per plugin and event: `burst` at once (default 20), then `perSecond` (default 10).
   * `false` writes everything.
   */
  rateLimit?: { perSecond?: number; burst?: number } | false;
}

/** Default bounds of {@link AuditLog}. */
export const AUDIT_DEFAULTS: {
  readonly maxFieldChars: number;
  readonly maxEntryBytes: number;
  readonly perSecond: number;
  readonly burst: number;
} = Object.freeze({ maxFieldChars: 1024, maxEntryBytes: 16_384, perSecond: 10, burst: 20 });

const EVENT_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const RESERVED = ["ts", "event", "plugin"];
/** How long refused entries wait for their `audit_suppressed` summary. */
const SUMMARY_MS = 1000;
const ENCODER = new TextEncoder();
/** What a write after close() reports when failures are reported rather than thrown. */
const CLOSED = new Error("the log is closed");

/**
 * Append-only writer of {@link AuditEvent}s as JSON lines.
 *
 * @example
 * ```ts
 * const audit = new AuditLog("/var/log/bulkhead/audit.jsonl", {
 *   onError: (e) => console.error(e.code, e.message, e.hint), // ERR_IO, once per episode
 *   rateLimit: { perSecond: 5, burst: 10 },
 * });
 * try {
 *   audit.write("permission_denied", "resizer", { permission: "net", target: "evil.example" });
 * } finally {
 *   audit.close();
 * }
 * ```
 */
export class AuditLog {
  #sink: AuditSink | undefined;
  #file: AppendFile | undefined;
  #now: () => Date;
  #onError: ((error: PluginError) => void) | undefined;
  #logger: Logger | undefined;
  #maxChars: number;
  #maxBytes: number;
  #rate: RateLimiter | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** The failure being reported, until a write succeeds. */
  #failing: PluginError | undefined;
  #lost = 0;
  #lostSince = "";

  /**
   * Opens the log on a sink. A file that does not end with a newline (a writer died inside a
   * line) gets one before the first entry, in the same `write(2)`.
   *
   * @param sink a function receiving each line, or a file path to append to
   * @param options clock, error reporting, size and rate bounds
   * @throws {TypeError} when the sink is neither a function nor a non-empty string
   * @throws {RangeError} when a bound is out of range
   * @throws {Error} the `node:fs` error when the file cannot be opened (e.g. EACCES, ENOENT dir)
   */
  constructor(sink: AuditSink | string, options: AuditLogOptions = {}) {
    const d = AUDIT_DEFAULTS;
    const rate = options.rateLimit === false ? undefined : options.rateLimit ?? {};
    this.#maxChars = bound("maxFieldChars", options.maxFieldChars ?? d.maxFieldChars, 16);
    this.#maxBytes = bound("maxEntryBytes", options.maxEntryBytes ?? d.maxEntryBytes, 1024);
    const perSecond = rate?.perSecond ?? d.perSecond;
    if (!(perSecond > 0 && Number.isFinite(perSecond))) {
      throw new RangeError("Cannot create audit log: rateLimit.perSecond is not a positive number");
    }
    const burst = bound("rateLimit.burst", rate?.burst ?? d.burst, 1);
    this.#rate = rate === undefined ? undefined : new RateLimiter(perSecond, burst);
    this.#now = options.now ?? (() => new Date());
    this.#onError = options.onError;
    this.#logger = options.logger;
    if (typeof sink === "function") this.#sink = sink;
    else if (typeof sink === "string" && sink !== "") this.#file = new AppendFile(sink);
    else throw new TypeError("Cannot create audit log: sink is not a function or a file path");
  }

  /**
   * Writes one event, unless the plugin's rate for this event is used up (then it is counted in
   * the next `audit_suppressed` entry).
   *
   * @param event what happened, lower_snake_case, at most 64 characters
   * @param plugin plugin concerned (`""` for host-wide events)
   * @param details extra fields, redacted with {@link redactSecrets} and bounded; `ts`, `event`
   *   and `plugin` are reserved
   * @returns the record as written, or undefined when it was suppressed or the sink failed
   * @throws {TypeError} when the event name is not lower_snake_case, the plugin not a string, or
   *   a detail uses a reserved key
   * @throws {Error} without `onError` and `logger` only: when the log is closed, and whatever the
   *   sink or `write(2)` throws (a lost audit record must be visible); with them, such entries
   *   are dropped and reported
   * @example
   * ```ts
   * audit.write("violation", "resizer", { type: "heap", used: 80, limit: 50 });
   * ```
   */
  write(
    event: AuditEventName,
    plugin: string,
    details: Record<string, unknown> = {},
  ): AuditEvent | undefined {
    if (this.#closed) {
      // A host may still handle a plugin failure while it closes: that must not throw either.
      if (!this.#reports) throw new Error(`Cannot write audit event "${event}": the log is closed`);
      this.#failed(CLOSED, 1, false);
      return undefined;
    }
    if (typeof event !== "string" || !EVENT_NAME.test(event)) {
      throw new TypeError(
        `Cannot write audit event: name "${truncate(String(event), 64)}" is not lower_snake_case`,
      );
    }
    if (typeof plugin !== "string") {
      throw new TypeError(`Cannot write audit event "${event}": plugin is not a string`);
    }
    const isRecord = details !== null && typeof details === "object" && !Array.isArray(details);
    for (const reserved of isRecord ? RESERVED : []) {
      if (Object.hasOwn(details, reserved)) {
        throw new TypeError(
          `Cannot write audit event "${event}": detail "${reserved}" is reserved`,
        );
      }
    }
    const now = this.#now();
    // Before any copying: a flood of refused entries costs a map lookup each.
    if (this.#rate !== undefined && !this.#rate.take(plugin, event, now)) {
      this.#timer ??= setTimeout(() => this.#summarize(true), SUMMARY_MS);
      this.#timer.unref();
      return undefined;
    }
    const redacted = redactBounded(details, this.#maxChars);
    const rest = redacted !== null && typeof redacted === "object" && !Array.isArray(redacted)
      ? (redacted as Record<string, unknown>)
      : { details: redacted };
    // Key order ts, event, plugin first: easier to read and to grep.
    const ts = now.toISOString();
    let record: AuditEvent = { ts, event, plugin: truncate(plugin, this.#maxChars), ...rest };
    let line = JSON.stringify(record);
    const bytes = line.length * 3 <= this.#maxBytes ? 0 : ENCODER.encode(line).length;
    if (bytes > this.#maxBytes) {
      record = { ts, event, plugin: truncate(plugin, 128), truncated: bytes };
      line = JSON.stringify(record);
    }
    return this.#emit([line], false) ? record : undefined;
  }

  /**
   * Writes the pending `audit_suppressed` entries, then closes the file (if the sink is a path).
   * Further writes throw. Idempotent.
   *
   * @throws {Error} without `onError` and `logger` only: what the last write or `close(2)` threw
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    try {
      this.#summarize(false);
    } finally {
      if (this.#file !== undefined) {
        try {
          this.#file.close();
        } catch (error) {
          this.#failed(error, 0, false);
        }
      }
    }
  }

  /** Writes one `audit_suppressed` entry per plugin and event with refused entries. */
  #summarize(fromTimer: boolean): void {
    this.#timer = undefined;
    const list = this.#rate?.drain() ?? [];
    if (list.length === 0) return;
    const ts = this.#now().toISOString();
    const lines = list.map((s) => summaryLine(s, ts));
    // From the timer nothing may throw: a failure there is counted in `audit_lost` instead.
    this.#emit(lines, fromTimer);
  }

  /**
   * Delivers lines, preceded after a failure episode by the `audit_lost` record.
   *
   * @returns true when every line was delivered
   */
  #emit(lines: string[], quiet: boolean): boolean {
    try {
      if (this.#lost > 0) {
        const lost = this.#lost;
        this.#deliver([JSON.stringify({
          ts: this.#now().toISOString(),
          event: "audit_lost",
          plugin: "",
          lost,
          since: this.#lostSince,
        })]);
        this.#lost = 0;
        if (this.#failing !== undefined) {
          this.#warn(`Audit log ${this.#where()} is writable again; ${lost} entries were lost`, {
            lost,
          });
        }
        this.#failing = undefined;
      }
      this.#deliver(lines);
      return true;
    } catch (error) {
      this.#failed(error, lines.length, quiet);
      return false;
    }
  }

  #deliver(lines: string[]): void {
    if (this.#file !== undefined) this.#file.append(lines);
    else for (const line of lines) this.#sink!(line);
  }

  /** Counts the lost entries; reports the first failure of an episode, or throws it. */
  #failed(error: unknown, lost: number, quiet: boolean): void {
    if (lost > 0 && this.#lost === 0) this.#lostSince = this.#now().toISOString();
    this.#lost += lost;
    if (!this.#reports) {
      if (quiet) return;
      throw error;
    }
    if (this.#failing !== undefined) return;
    const code = describeError(error, "code");
    const hint = error === CLOSED
      ? "Close the audit log after the last event it should record; this one was dropped"
      : this.#sink !== undefined
      ? "Fix the audit sink function; entries are dropped and counted until it accepts one again"
      : code === "ENOSPC" || code === "EDQUOT"
      ? "Free disk space on the audit log's filesystem, or move the audit file (HostOptions.audit) to one with room; writing resumes by itself and records how many entries were lost"
      : "Check the audit log's filesystem and permissions, or move the audit file (HostOptions.audit); writing resumes by itself and records how many entries were lost";
    const why = describeError(error);
    this.#failing = new PluginError("ERR_IO", `Cannot write audit log ${this.#where()}: ${why}`, {
      hint,
      cause: error,
    });
    try {
      this.#logger?.error(this.#failing.message, { code: "ERR_IO", hint, cause: why });
    } catch {
      // A throwing logger must not turn an audit failure into a host failure.
    }
    try {
      this.#onError?.(this.#failing);
    } catch {
      // Same for the callback: the log has nowhere left to report.
    }
  }

  /** Whether failures are reported (true) or thrown. */
  get #reports(): boolean {
    return this.#onError !== undefined || this.#logger !== undefined;
  }

  #warn(message: string, fields: Record<string, unknown>): void {
    try {
      this.#logger?.warn(message, fields);
    } catch {
      // See #failed.
    }
  }

  #where(): string {
    return this.#file === undefined ? "sink" : `"${truncate(this.#file.path, 256)}"`;
  }
}

/** Validates an integer option of at least `min`. */
function bound(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`Cannot create audit log: ${name} is not an integer of at least ${min}`);
  }
  return value;
}
