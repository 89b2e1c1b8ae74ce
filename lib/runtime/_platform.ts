/**
 * Platform answers of the worker lockdown: the `node:os` answers of
 * `lib/guest/platform_answers.ts`, pinned (the lockdown passes them in), and on Deno a view of the environment that holds only
 * the declared variables.
 *
 * Why the view: Deno throws `NotCapable` for a read of an undeclared variable, where Node and
 * Bun (whose workers get only the declared values) answer `undefined`; packages probe variables
 * at import time (`process.env.NODE_ENV` in react, `TF_BUILD` in chalk) and failed to load. The
 * permission boundary stays Deno's: the view reads a declared name through the original
 * `Deno.env.get` (the worker's `env` permission list), and never asks for any other name, so an
 * undeclared value cannot appear. Writes and deletes stay in the plugin's thread (as in a Node
 * worker, whose `process.env` is a copy): `Deno.env.set` would change the environment of the
 * whole host process. Private to lib/runtime.
 * @module
 */

type Obj = Record<PropertyKey, unknown>;
type Fn = (...args: unknown[]) => unknown;

const { apply, defineProperty } = Reflect;
const freeze = Object.freeze;
const toString = String;
const setHas = Set.prototype.has;
const setAdd = Set.prototype.add;
const mapHas = Map.prototype.has;
const mapGet = Map.prototype.get;
const mapSet = Map.prototype.set;
const answers = new WeakSet<object>();
const weakHas = WeakSet.prototype.has;
const weakAdd = WeakSet.prototype.add;

/** `answerOs` of `lib/guest/platform_answers.ts` (passed in: host-side code never imports guest code). */
type AnswerOs = (
  builtin: (id: string) => Obj,
  define: (target: object, key: string, value: Fn) => void,
) => void;

/**
 * Pins the `node:os` answers with `pin` and remembers them, so a later refusal of the same
 * names (Node's system-information list) leaves them in place.
 *
 * @param answerOs `answerOs` of `lib/guest/platform_answers.ts`
 * @param options `builtin` returns a built-in module; `pin` is the lockdown's non-writable,
 *   non-configurable replacement
 */
export function pinOsAnswers(
  answerOs: AnswerOs,
  options: {
    builtin: (id: string) => Obj;
    pin: (target: object, key: PropertyKey, value: unknown) => void;
  },
): void {
  const { builtin, pin } = options;
  answerOs(builtin, (target, key, value) => {
    pin(target, key, value);
    apply(weakAdd, answers, [value]);
  });
}

/** @returns whether `value` is one of the pinned `node:os` answers */
export function isOsAnswer(value: unknown): boolean {
  return typeof value === "function" && (apply(weakHas, answers, [value]) as boolean);
}

/** A plugin thread's own environment: declared values read on demand, then its own writes. */
function envView(names: readonly string[] | undefined, read: (name: string) => unknown) {
  const declared = new Set<string>(names ?? []);
  // Without the list (a bootstrap that does not pass it), a name counts as declared once the
  // runtime answered it; it is listed from then on.
  const seen = new Set<string>(names ?? []);
  const own = new Map<string, string | undefined>();
  const get = (name: string): string | undefined => {
    if (apply(mapHas, own, [name])) return apply(mapGet, own, [name]) as string | undefined;
    if (names !== undefined && !apply(setHas, declared, [name])) return undefined;
    let value: unknown;
    try {
      value = read(name);
    } catch {
      // NotCapable: not declared. Nothing else was asked.
      return undefined;
    }
    if (typeof value !== "string") return undefined;
    apply(setAdd, seen, [name]);
    return value;
  };
  const keys = (): string[] => {
    const out: string[] = [];
    for (const name of seen) if (get(name) !== undefined) out.push(name);
    for (const [name, value] of own) {
      if (value !== undefined && !apply(setHas, seen, [name])) out.push(name);
    }
    return out;
  };
  const set = (name: string, value: string | undefined) => {
    apply(mapSet, own, [name, value]);
  };
  return { get, keys, set };
}

/**
 * Deno: replaces `process.env` and `Deno.env` with views that answer only from the declared
 * variables (absent for every other name: `undefined`, not listed, `in` is false).
 *
 * @param proc the thread's `process`
 * @param deno the `Deno` namespace
 * @param names the declared variables, or undefined when the bootstrap does not know them
 */
export function lockEnv(proc: Obj, deno: Obj, names: readonly string[] | undefined): void {
  const original = deno.env as { get: Fn };
  const originalGet = original.get;
  const view = envView(names, (name) => apply(originalGet, original, [name]));
  const key = (k: string | symbol) => typeof k === "string" ? k : undefined;
  const descriptor = (value: string) => ({
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
  const env = new Proxy({} as Record<string, string>, {
    get: (_t, k) => key(k) === undefined ? undefined : view.get(k as string),
    set: (_t, k, v) => {
      if (key(k) !== undefined) view.set(k as string, toString(v));
      return true;
    },
    deleteProperty: (_t, k) => {
      if (key(k) !== undefined) view.set(k as string, undefined);
      return true;
    },
    has: (_t, k) => key(k) !== undefined && view.get(k as string) !== undefined,
    ownKeys: () => view.keys(),
    getOwnPropertyDescriptor: (_t, k) => {
      const value = key(k) === undefined ? undefined : view.get(k as string);
      return value === undefined ? undefined : descriptor(value);
    },
    defineProperty: (_t, k, d) => {
      if (key(k) === undefined || !("value" in d)) return false;
      view.set(k as string, toString(d.value));
      return true;
    },
  });
  const name = (k: unknown): string => {
    if (typeof k !== "string") {
      throw new TypeError("Cannot read the environment: key is not a string");
    }
    return k;
  };
  const denoEnv = freeze({
    get: (k: unknown) => view.get(name(k)),
    has: (k: unknown) => view.get(name(k)) !== undefined,
    set: (k: unknown, v: unknown) => view.set(name(k), toString(v)),
    delete: (k: unknown) => view.set(name(k), undefined),
    toObject: () => {
      const out: Record<string, string> = {};
      for (const k of view.keys()) out[k] = view.get(k) as string;
      return out;
    },
  });
  for (const [target, value] of [[proc, env], [deno, denoEnv]] as const) {
    if (
      !defineProperty(target, "env", {
        value,
        writable: false,
        enumerable: true,
        configurable: false,
      })
    ) {
      throw new TypeError('Cannot lock down "env": the property is not configurable');
    }
  }
}
