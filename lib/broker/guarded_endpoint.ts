/**
 * Exposes an object over a MessagePort with Comlink, but only lets a caller *call* the listed
 * top-level functions with plain arguments.
 *
 * Plain `Comlink.expose` trusts its caller: a GET message reads any property path of the exposed
 * object, and SET with a path like `["get", "__proto__", "x"]` writes into the host's
 * `Function.prototype`. A plugin holds the other end of the port, so every message is checked
 * here first and anything else is answered with `ERR_PERMISSION_DENIED`.
 *
 * @example
 * ```ts
 * const { port1, port2 } = new MessageChannel();
 * exposeGuarded({ ping: () => "pong" }, port1, { plugin: "demo" });
 * ```
 * @module
 */

import * as Comlink from "comlink";
import { PluginError, serializeError } from "../errors.ts";
import { installComlinkErrorHandler } from "../protocol/comlink_errors.ts";

/** Options for {@link exposeGuarded}. */
export interface GuardOptions {
  /** Plugin name for error messages. */
  plugin: string;
  /** Called for every refused message. */
  onRefused?: (detail: { type: string; path: string }) => void;
  /**
   * Close the port once the plugin released its proxy (a per-value proxy port). Off for the
   * context channel itself: a plugin that drops (or never uses) its `ctx` must not end the
   * channel its pending load and calls depend on.
   */
  closeOnRelease?: boolean;
}

/**
 * Key of the cleanup an exposed object may carry: the close function of {@link exposeGuarded}
 * calls it once. A symbol, so it is never one of the callable names a plugin can reach.
 */
export const DISPOSE: unique symbol = Symbol("bulkhead.dispose");

type Listener = (event: MessageEvent) => void;
type Fn = (...args: unknown[]) => unknown;

function isPlain(wire: unknown): boolean {
  return typeof wire === "object" && wire !== null && (wire as { type?: unknown }).type === "RAW";
}

/** Own data properties holding functions; accessors are never run. */
function ownFunctionNames(api: object): string[] {
  return Object.keys(api).filter((k) =>
    typeof Object.getOwnPropertyDescriptor(api, k)?.value === "function"
  );
}

/**
 * Exposes the object's own function properties as callable, and nothing else.
 *
 * @param api object whose own function-valued properties may be called; a function under
 *   {@link DISPOSE} runs when the returned close function is called
 * @param port the host end of the channel
 * @param options plugin name and refusal callback
 * @returns a function that closes the port and runs the object's {@link DISPOSE} (idempotent)
 * @example
 * ```ts
 * const close = exposeGuarded({ add: (a: number, b: number) => a + b }, port, { plugin: "p" });
 * ```
 */
export function exposeGuarded(api: object, port: MessagePort, options: GuardOptions): () => void {
  installComlinkErrorHandler();
  const allowed = new Set(ownFunctionNames(api));
  const listeners = new Set<Listener>();
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    port.removeEventListener("message", onMessage);
    listeners.clear();
    port.close();
    const dispose = (api as { [DISPOSE]?: unknown })[DISPOSE];
    if (typeof dispose === "function") (dispose as Fn).call(api);
  };
  const onMessage = (event: MessageEvent) => {
    const d = event.data as {
      id?: unknown;
      type?: unknown;
      path?: unknown;
      argumentList?: unknown;
    };
    if (typeof d !== "object" || d === null) return;
    const path = Array.isArray(d.path) ? d.path : [];
    const release = d.type === "RELEASE" && path.length === 0;
    const ok = release || (d.type === "APPLY" && path.length === 1 &&
      typeof path[0] === "string" && allowed.has(path[0]) &&
      (d.argumentList === undefined ||
        (Array.isArray(d.argumentList) && d.argumentList.every(isPlain))));
    if (ok) {
      for (const l of listeners) l(event);
      // Comlink detaches on RELEASE (the plugin dropped its proxy) and replies a few microtasks
      // later; close after that reply so a released port does not stay open on the host.
      if (release && options.closeOnRelease === true) setTimeout(close, 0);
      return;
    }
    const shown = path.map(String).join(".");
    options.onRefused?.({ type: String(d.type), path: shown });
    const error = new PluginError(
      "ERR_PERMISSION_DENIED",
      `Cannot ${
        String(d.type)
      } "${shown}" on the host context of plugin "${options.plugin}": only calls to ${
        [...allowed].join(", ")
      } with plain arguments are allowed`,
      { hint: "Use ctx.get/ctx.set/ctx.log/ctx.fetch", plugin: options.plugin },
    );
    port.postMessage({
      id: d.id,
      type: "HANDLER",
      name: "throw",
      value: { isError: true, value: serializeError(error) },
    });
  };
  port.addEventListener("message", onMessage);
  const endpoint: Comlink.Endpoint = {
    postMessage: (m: unknown, t?: Transferable[]) => port.postMessage(m, t ?? []),
    addEventListener: (_type: string, l: unknown) => listeners.add(l as Listener),
    removeEventListener: (_type: string, l: unknown) => listeners.delete(l as Listener),
  } as Comlink.Endpoint;
  Comlink.expose(api, endpoint);
  port.start();
  return close;
}

const BUILTIN_CONSTRUCTORS = [
  "Object",
  "Function",
  "Array",
  "Map",
  "Set",
  "WeakMap",
  "WeakSet",
  "WeakRef",
  "Date",
  "RegExp",
  "Promise",
  "Boolean",
  "Number",
  "String",
  "BigInt",
  "Symbol",
  "Error",
  "AggregateError",
  "EvalError",
  "RangeError",
  "ReferenceError",
  "SyntaxError",
  "TypeError",
  "URIError",
  "DOMException",
  "ArrayBuffer",
  "SharedArrayBuffer",
  "DataView",
  "Int8Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "Float16Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
  "Blob",
  "File",
  "URL",
  "URLSearchParams",
  "Headers",
  "EventTarget",
];

let builtins: Set<unknown> | undefined;

/** The prototypes of the language's and the platform's own classes (where methods stop). */
function builtinPrototypes(): Set<unknown> {
  if (builtins !== undefined) return builtins;
  const g = globalThis as Record<string, unknown>;
  const set = new Set<unknown>();
  for (const name of BUILTIN_CONSTRUCTORS) {
    const ctor = g[name];
    if (typeof ctor === "function") set.add(ctor.prototype);
  }
  set.add(Object.getPrototypeOf(Int8Array.prototype)); // %TypedArray%.prototype
  builtins = set;
  return set;
}

/**
 * The methods of a host value a plugin may call through a proxy, or `null` when the value is
 * plain data (to be structured-cloned instead).
 *
 * A function is exposed as one method, `call`. A value of a built-in kind (Array, Map, Set, Date,
 * RegExp, Error, ArrayBuffer, typed array, DataView, ...) is data, whatever it contains. Any
 * other object is data unless it or a prototype below the built-in ones holds a function in a
 * data property: those functions (the nearest of each name, `constructor` excepted) are its
 * methods, bound to the value. A built-in prototype's methods (`Map.prototype.set` under a
 * `class Cache extends Map`) are never among them, and getters, setters and data properties
 * never cross: the plugin can call the declared methods and nothing else.
 *
 * @param value a host value
 * @returns a null-prototype object of callable wrappers, or `null` for plain data
 * @example
 * ```ts
 * declaredMethods([1, 2]); // null
 * Object.keys(declaredMethods({ info: (m: string) => m }) ?? {}); // ["info"]
 * ```
 */
export function declaredMethods(value: unknown): Record<string, Fn> | null {
  const out: Record<string, Fn> = Object.create(null);
  if (typeof value === "function") {
    out.call = (...args: unknown[]) => Reflect.apply(value, undefined, args);
    return out;
  }
  if (typeof value !== "object" || value === null) return null;
  const stop = builtinPrototypes();
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && stop.has(proto)) return null;
  const seen = new Set<string>();
  let found = false;
  for (let o: object | null = value; o !== null && !stop.has(o); o = Object.getPrototypeOf(o)) {
    for (const k of Object.getOwnPropertyNames(o)) {
      if (seen.has(k) || (k === "constructor" && o !== value)) continue;
      seen.add(k);
      const f = Object.getOwnPropertyDescriptor(o, k)?.value;
      if (typeof f !== "function") continue;
      out[k] = (...args: unknown[]) => Reflect.apply(f, value, args);
      found = true;
    }
  }
  return found ? out : null;
}
