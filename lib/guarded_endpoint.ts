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
import { PluginError, serializeError } from "./errors.ts";
import { installComlinkErrorHandler } from "./worker/comlink_errors.ts";

/** Options for {@link exposeGuarded}. */
export interface GuardOptions {
  /** Plugin name for error messages. */
  plugin: string;
  /** Called for every refused message. */
  onRefused?: (detail: { type: string; path: string }) => void;
}

type Listener = (event: MessageEvent) => void;

function isPlain(wire: unknown): boolean {
  return typeof wire === "object" && wire !== null && (wire as { type?: unknown }).type === "RAW";
}

/**
 * Exposes the object's own function properties as callable, and nothing else.
 *
 * @param api object whose own function-valued properties may be called
 * @param port the host end of the channel
 * @param options plugin name and refusal callback
 * @returns a function that closes the port
 * @example
 * ```ts
 * const close = exposeGuarded({ add: (a: number, b: number) => a + b }, port, { plugin: "p" });
 * ```
 */
export function exposeGuarded(api: object, port: MessagePort, options: GuardOptions): () => void {
  installComlinkErrorHandler();
  const allowed = new Set(
    Object.keys(api).filter((k) => typeof (api as Record<string, unknown>)[k] === "function"),
  );
  const listeners = new Set<Listener>();
  const onMessage = (event: MessageEvent) => {
    const d = event.data as {
      id?: unknown;
      type?: unknown;
      path?: unknown;
      argumentList?: unknown;
    };
    if (typeof d !== "object" || d === null) return;
    const path = Array.isArray(d.path) ? d.path : [];
    const ok = (d.type === "APPLY" && path.length === 1 && typeof path[0] === "string" &&
      allowed.has(path[0]) &&
      (d.argumentList === undefined ||
        (Array.isArray(d.argumentList) && d.argumentList.every(isPlain)))) ||
      (d.type === "RELEASE" && path.length === 0);
    if (ok) {
      for (const l of listeners) l(event);
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
  return () => {
    port.removeEventListener("message", onMessage);
    listeners.clear();
    port.close();
  };
}
