/**
 * Redaction and size bounds of audit details. Private to lib/audit.ts.
 * @module
 */

/** Keys whose values are credentials. `keyId` and friends are identifiers, not secrets. */
export const SECRET_KEY_PATTERN: RegExp = /pass|secret|token|key(?!Id)|authorization/i;
/** Keys whose value is an environment: names are kept, values never. */
const ENV_KEY_PATTERN = /^(env|environment)$/i;
const REDACTED = "[REDACTED]";
const MAX_DEPTH = 8;

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
  return redact(value, 0, new WeakSet(), Infinity);
}

/**
 * {@link redactSecrets}, and every string (value or key) longer than `maxChars` UTF-16 code
 * units cut to that length plus a marker: `"abc…[1048576 chars, truncated]"`.
 *
 * @param value anything
 * @param maxChars longest string kept whole
 * @returns the redacted, bounded copy
 */
export function redactBounded(value: unknown, maxChars: number): unknown {
  return redact(value, 0, new WeakSet(), maxChars);
}

/**
 * Cuts `s` to `maxChars` code units (never inside a surrogate pair) and marks the cut.
 *
 * @param s the string
 * @param maxChars longest string kept whole
 * @returns `s`, or its head plus `…[<length> chars, truncated]`
 */
export function truncate(s: string, maxChars: number): string {
  if (s.length <= maxChars) return s;
  let end = maxChars;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // a high surrogate: keep the pair whole or not at all
  return `${s.slice(0, end)}…[${s.length} chars, truncated]`;
}

function redact(value: unknown, depth: number, seen: WeakSet<object>, max: number): unknown {
  if (typeof value === "string") return truncate(value, max);
  if (value === null || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "bigint") return truncate(value.toString(), max);
  if (typeof value !== "object") return undefined; // function, symbol, undefined
  if (seen.has(value)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[Truncated]";
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((v) => redact(v, depth + 1, seen, max) ?? null);
    }
    const source: Record<string, unknown> = value instanceof Error
      ? errorFields(value)
      : (value as Record<string, unknown>);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(source)) {
      const v = source[key];
      const k = truncate(key, max);
      if (SECRET_KEY_PATTERN.test(key)) out[k] = REDACTED;
      else if (ENV_KEY_PATTERN.test(key)) out[k] = redactEnv(v, max);
      else {
        const r = redact(v, depth + 1, seen, max);
        if (r !== undefined) out[k] = r;
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

function redactEnv(v: unknown, max: number): unknown {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const out: Record<string, string> = {};
    for (const k of Object.keys(v)) out[truncate(k, max)] = REDACTED;
    return out;
  }
  return v === undefined ? undefined : REDACTED;
}

/**
 * The message (or another string field, such as `code`) of whatever a sink threw, cut to 1,024
 * characters, never throwing: a getter or `toString` may throw.
 *
 * @param error anything thrown
 * @param field which field of an error to read
 * @returns its text; for `code`, an empty string when there is none
 */
export function describeError(error: unknown, field: "message" | "code" = "message"): string {
  try {
    if (field === "code") {
      const code = (error as { code?: unknown } | null)?.code;
      return typeof code === "string" ? code : "";
    }
    return truncate(error instanceof Error ? String(error.message) : String(error), 1024);
  } catch {
    return field === "code" ? "" : "an error that cannot be described";
  }
}
