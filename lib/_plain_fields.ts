/**
 * Bounded copies of an error's own plain-data fields, for carrying them across a worker or process
 * boundary and for reading them back from a plugin's untrusted reply. Private to lib/: reached
 * through `lib/errors.ts`.
 * @module
 */

/** Causes carried at most below the error itself. */
export const MAX_CAUSE_DEPTH = 4;
/** Fields carried at most per error. */
const MAX_FIELDS = 32;
/** Keys looked at at most per error (or object inside a field), accepted or not. */
const MAX_KEYS_SEEN = 1024;
/** Budget of an error's fields, in JSON-encoded bytes (approximately). */
const MAX_FIELD_BYTES = 16 * 1024;
/** Nesting depth of a field's value. */
const MAX_FIELD_DEPTH = 16;
/** Keys never carried as fields: the error's own shape, and keys that reach prototypes. */
const NOT_FIELDS = new Set([
  "name",
  "message",
  "stack",
  "code",
  "hint",
  "plugin",
  "pluginCode",
  "cause",
  "__proto__",
  "constructor",
  "prototype",
]);

function field(o: Record<string, unknown>, key: string): unknown {
  try {
    return o[key];
  } catch {
    return undefined;
  }
}

/** Thrown when a field's copy runs past the byte budget: the whole field is dropped. */
const OVER_BUDGET = Symbol("over budget");
/** A value that is not plain data: left out of its object, null in its array (as in JSON). */
const SKIP = Symbol("skip");

function dataOf(o: object, key: string): { value: unknown } | undefined {
  const d = Object.getOwnPropertyDescriptor(o, key);
  return d !== undefined && "value" in d ? { value: d.value } : undefined;
}

function defineData(o: object, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function copyPlain(v: unknown, budget: { bytes: number }, ancestors: object[]): unknown {
  const spend = (n: number) => {
    budget.bytes -= n;
    if (budget.bytes < 0) throw OVER_BUDGET;
  };
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean" || v === null) {
    spend(typeof v === "string" ? v.length + 2 : String(v).length);
    return v;
  }
  if (typeof v !== "object" || ancestors.length >= MAX_FIELD_DEPTH || ancestors.includes(v)) {
    return SKIP;
  }
  const proto = Object.getPrototypeOf(v);
  const isArray = Array.isArray(v);
  if (isArray ? proto !== Array.prototype : proto !== Object.prototype && proto !== null) {
    return SKIP;
  }
  spend(2);
  ancestors.push(v);
  try {
    if (isArray) {
      const length = dataOf(v, "length")?.value;
      const out: unknown[] = [];
      for (let i = 0; i < Number(length); i++) {
        spend(1);
        const item = dataOf(v, String(i));
        const copied = item === undefined ? SKIP : copyPlain(item.value, budget, ancestors);
        out.push(copied === SKIP ? null : copied);
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(v).slice(0, MAX_KEYS_SEEN)) {
      const item = key === "__proto__" ? undefined : dataOf(v, key);
      if (item === undefined) continue;
      spend(key.length + 4);
      const copied = copyPlain(item.value, budget, ancestors);
      if (copied !== SKIP) defineData(out, key, copied);
    }
    return out;
  } finally {
    ancestors.pop();
  }
}

/**
 * Copies the own enumerable plain-data fields of an object (strings, finite or not numbers,
 * booleans, null, and arrays and plain objects of those), never its shape (`name`, `message`,
 * `stack`, `code`, `hint`, `plugin`, `pluginCode`, `cause`) nor `__proto__`, `constructor` or
 * `prototype`. Bounded: at most 32 fields and about 16 KiB of JSON; a field past the budget is
 * dropped whole, a value that is not plain data is left out (null in an array). Never throws;
 * getters are not run, except for the keys in `also`.
 *
 * @param source an error, or fields that crossed a boundary
 * @param also keys read even when they are not own enumerable data properties
 * @returns the fields as own data properties of a fresh object, or undefined when there are none
 * @example
 * ```ts
 * plainFields(Object.assign(new Error("x"), { issues: [{ path: ["a"] }] })); // { issues: [...] }
 * ```
 */
export function plainFields(
  source: unknown,
  also: readonly string[] = [],
): Record<string, unknown> | undefined {
  if (typeof source !== "object" || source === null) return undefined;
  let keys: string[];
  try {
    if (Array.isArray(source)) return undefined;
    keys = Object.keys(source).slice(0, MAX_KEYS_SEEN);
  } catch {
    return undefined;
  }
  for (const key of also) if (!keys.includes(key)) keys.push(key);
  const out: Record<string, unknown> = {};
  const budget = { bytes: MAX_FIELD_BYTES };
  let count = 0;
  for (const key of keys) {
    if (count >= MAX_FIELDS) break;
    if (NOT_FIELDS.has(key)) continue;
    const before = budget.bytes;
    try {
      const item = dataOf(source, key) ??
        (also.includes(key) ? { value: field(source as Record<string, unknown>, key) } : undefined);
      if (item === undefined || item.value === undefined) continue;
      budget.bytes -= key.length + 4;
      const copied = copyPlain(item.value, budget, []);
      if (copied === SKIP || budget.bytes < 0) {
        budget.bytes = before;
        continue;
      }
      defineData(out, key, copied);
      count++;
    } catch {
      budget.bytes = before; // past the budget, or a Proxy trap threw: drop this field only
    }
  }
  return count === 0 ? undefined : out;
}
