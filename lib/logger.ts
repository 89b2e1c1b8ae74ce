/**
 * The logger the host writes to. Inject your own; the default discards everything except
 * security warnings (`warn` with `{ security: true }`: a plugin running with restrictions
 * nobody enforces), which it writes to stderr, so that such a plugin is never silent.
 *
 * @example
 * ```ts
 * import type { Logger } from "./logger.ts";
 * const logger: Logger = { debug() {}, info: console.info, warn: console.warn, error: console.error };
 * ```
 * @module
 */

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** Where the host and plugins' `ctx.log` write. */
export interface Logger {
  /** Writes a diagnostic line (verbose; usually filtered out in production). */
  debug(message: string, fields?: LogFields): void;
  /** Writes a routine event, such as a plugin loaded or unloaded. */
  info(message: string, fields?: LogFields): void;
  /** Writes a recoverable problem, such as a failed hook handler or a refused permission. */
  warn(message: string, fields?: LogFields): void;
  /** Writes a failure, such as a crashed plugin or a throwing event listener. */
  error(message: string, fields?: LogFields): void;
}

/** Log levels a plugin may use with `ctx.log`. */
export const LOG_LEVELS: readonly (keyof Logger)[] = ["debug", "info", "warn", "error"];

/** A logger that discards everything. */
export const SILENT_LOGGER: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/**
 * The host's default logger: silent, except `warn` lines whose fields say `security: true`,
 * written to stderr as `bulkhead: security warning: <message>`.
 *
 * @example
 * ```ts
 * DEFAULT_LOGGER.warn('Plugin "x" runs with filesystem not enforced', { security: true });
 * DEFAULT_LOGGER.warn("a hook failed"); // nothing
 * ```
 */
export const DEFAULT_LOGGER: Logger = Object.freeze({
  debug() {},
  info() {},
  warn(message: string, fields?: LogFields) {
    if (fields?.security === true) process.stderr.write(`bulkhead: security warning: ${message}\n`);
  },
  error() {},
});
