/**
 * The host side of a plugin's context: every `ctx.get`, `ctx.set`, `ctx.log` and `ctx.fetch`
 * from a plugin lands here and is checked against what its manifest declared.
 *
 * @example
 * ```ts
 * const api = createContextApi({ plugin: "p", read: ["config"], write: [], network, store, logger });
 * await api.get("config");   // allowed
 * await api.get("database"); // PluginError ERR_PERMISSION_DENIED
 * ```
 * @module
 */

import * as Comlink from "comlink";
import { PluginError } from "../errors.ts";
import { LOG_LEVELS, type Logger } from "../logger.ts";
import type { NetworkGrant } from "../../permissions/grants.ts";
import type { SerializedRequestInit, SerializedResponse } from "../protocol/messages.ts";
import { PROXY_PORT } from "../protocol/messages.ts";
import { declaredMethods, DISPOSE, exposeGuarded } from "./guarded_endpoint.ts";
import { createFetchBroker } from "./fetch.ts";
import { isHookName } from "../hooks.ts";
import { ContextFootprint, LogBudget, type PluginBudgets, sizeOf } from "./_budgets.ts";

export type { PluginBudgets } from "./_budgets.ts";

/** A limit the broker enforces was hit: concurrent connections, or context bytes. */
export interface LimitDetail {
  type: "connections" | "context";
  used: number;
  limit: number;
}

/** Context keys bulkhead names; any other valid key is allowed too. */
export const PREDEFINED_CONTEXT_KEYS: readonly string[] = [
  "config",
  "logger",
  "http",
  "cache",
  "database",
];

/** A permission the host refused, reported to the audit/event layer. */
export interface Denial {
  /** Name of the plugin whose request was refused. */
  plugin: string;
  /**
   * What was refused: an undeclared context read or write, a brokered fetch outside the network
   * grant, a call on a context proxy (or native proxy) the plugin may not make, or a hook
   * registration past the per-plugin bound.
   */
  what: "context.read" | "context.write" | "network" | "proxy" | "hook";
  /** The refused target: a context key, a URL or host, a `key.method` proxy path, a hook. */
  target: string;
}

/** Options for {@link createContextApi}. */
export interface ContextApiOptions {
  plugin: string;
  /** Keys the plugin may read. */
  read: readonly string[];
  /** Keys the plugin may write. */
  write: readonly string[];
  /** Network grant the fetch broker enforces. */
  network: NetworkGrant;
  /** Concurrent brokered fetches allowed. */
  connections: number;
  /** Shared context store. */
  store: Map<string, unknown>;
  logger: Logger;
  /** Called on every refusal. */
  onDenied?: (denial: Denial) => void;
  /** Called when the plugin hits a limit the broker enforces (connections, context bytes). */
  onLimit?: (detail: LimitDetail) => void;
  /** Called when the plugin registers a hook handler (`priority` -1 means "use the default"). */
  onHook?: (name: string, priority: number) => void;
  /** Redirects followed at most (default 10). */
  maxRedirects?: number;
  /** Largest response body accepted, in bytes (default 32 MiB); the download stops there. */
  maxResponseBytes?: number;
  /** Deadline of one brokered fetch, redirects and body included, in ms (default 30 000). */
  fetchTimeoutMs?: number;
  /** Distinct hook names one plugin may register with `ctx.hooks.on` (default 256). */
  maxHooks?: number;
  /** Bounds on what the plugin makes the host keep (context values, log lines). */
  budgets?: PluginBudgets;
}

/** The host API object exposed to one plugin. */
export interface ContextApi {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  log(level: string, message: string): Promise<void>;
  fetch(url: string, init: SerializedRequestInit): Promise<SerializedResponse>;
  registerHook(name: string, priority: number): Promise<void>;
  /**
   * Ends the context: aborts the plugin's in-flight fetches and closes its proxies. The close
   * function of {@link exposeGuarded} calls it; a symbol, so the plugin cannot.
   */
  [DISPOSE](): void;
}

/**
 * Builds the checked host API for one plugin.
 *
 * `get` hands plain data of every structured-clone kind (Array, Map, Set, Date, RegExp, typed
 * arrays, Error, nested objects of those) over as a `structuredClone` copy, so a plugin that may
 * only read a key can never change the host's object. Only a function or an object with methods
 * (a logger, a database client) becomes a proxy, on a port of its own, that can call those methods
 * and nothing else (see {@link declaredMethods}). `registerHook` forwards each hook name once per
 * plugin and priority, at most `maxHooks` names. `fetch` goes through the plugin's fetch broker (see
 * {@link createFetchBroker}): it streams the body and stops reading at `maxResponseBytes`, gives
 * up after `fetchTimeoutMs`, and `[DISPOSE]()` aborts whatever is still in flight.
 *
 * @param options the plugin's grants and the host's store and logger
 * @returns the API object to expose with {@link exposeGuarded}
 * @throws {PluginError} ERR_PERMISSION_DENIED from each method when the access was not declared,
 *   and from `registerHook` past `maxHooks` distinct names
 * @throws {PluginError} ERR_INVALID_INPUT when a fetch URL or init is malformed, or a value read
 *   is neither structured-cloneable nor has methods
 * @throws {PluginError} ERR_RESOURCE_LIMIT when fetches exceed `connections` or a body exceeds
 *   `maxResponseBytes`
 * @throws {PluginError} ERR_CALL_TIMEOUT when a fetch takes longer than `fetchTimeoutMs`
 * @throws {PluginError} ERR_PLUGIN_NOT_ACTIVE when a fetch is cut by `[DISPOSE]()`
 * @example
 * ```ts
 * const api = createContextApi(options);
 * ```
 */
export function createContextApi(options: ContextApiOptions): ContextApi {
  const { plugin, store, logger } = options;
  const read = new Set(options.read);
  const write = new Set(options.write);
  const maxHooks = options.maxHooks ?? 256;
  const b = options.budgets ?? {};
  const valueBytes = b.contextValueBytes ?? 1024 * 1024;
  const contextBytes = b.contextBytes ?? 16 * 1024 * 1024;
  const lineChars = b.logLineChars ?? 8192;
  const footprint = new ContextFootprint();
  const logBudget = new LogBudget(b.logLinesPerSecond ?? 100);
  const overBudget = (key: string, what: string, used: number, limit: number): never => {
    options.onLimit?.({ type: "context", used, limit });
    throw new PluginError(
      "ERR_RESOURCE_LIMIT",
      `Cannot write context key "${key}": ${what} would be ${used} bytes, over the ${limit}-byte limit`,
      { hint: "Store less, or raise the host's budgets.contextValueBytes / contextBytes", plugin },
    );
  };
  const hooks = new Map<string, number>();
  const broker = createFetchBroker({
    plugin,
    network: options.network,
    connections: options.connections,
    onDenied: (target) => options.onDenied?.({ plugin, what: "network", target }),
    onLimit: options.onLimit,
    maxRedirects: options.maxRedirects,
    maxResponseBytes: options.maxResponseBytes,
    fetchTimeoutMs: options.fetchTimeoutMs,
  });
  const proxies = new Set<() => void>();
  let disposed = false;
  const deny = (what: Denial["what"], target: string, message: string, hint: string): never => {
    options.onDenied?.({ plugin, what, target });
    throw new PluginError("ERR_PERMISSION_DENIED", message, { hint, plugin });
  };
  const invalid = (message: string, hint: string, cause?: unknown) =>
    new PluginError("ERR_INVALID_INPUT", message, { hint, cause, plugin });
  const closed = (action: string) =>
    new PluginError(
      "ERR_PLUGIN_NOT_ACTIVE",
      `Cannot ${action}: the context of plugin "${plugin}" is closed`,
      { hint: "Load the plugin again", plugin },
    );
  const copyOf = (key: string, value: unknown): unknown => {
    let copy: unknown;
    try {
      copy = structuredClone(value);
    } catch (cause) {
      throw invalid(
        `Cannot read context key "${key}": its value has no methods and is not structured-cloneable`,
        "Store plain data, or an object whose methods plugins may call",
        cause,
      );
    }
    // The plugin side reads this key as "a proxy follows"; data must not pose as one.
    if (typeof copy === "object" && copy !== null && Object.hasOwn(copy, PROXY_PORT)) {
      throw invalid(
        `Cannot read context key "${key}": its value uses the reserved key "${PROXY_PORT}"`,
        `Store the value without a "${PROXY_PORT}" property`,
      );
    }
    return copy;
  };
  return {
    get(key: string): Promise<unknown> {
      if (typeof key !== "string" || !read.has(key)) {
        deny(
          "context.read",
          String(key),
          `Cannot read context key "${String(key)}": plugin "${plugin}" did not declare it`,
          `Add "${String(key)}" to permissions.context.read in plugin.json`,
        );
      }
      const value = store.get(key);
      const methods = declaredMethods(value);
      if (methods === null) return Promise.resolve(copyOf(key, value));
      if (disposed) throw closed(`read context key "${key}"`);
      const { port1, port2 } = new MessageChannel();
      const proxy: object = Object.assign(methods, { [DISPOSE]: () => proxies.delete(close) });
      const close = exposeGuarded(proxy, port1, {
        plugin,
        closeOnRelease: true,
        onRefused: (d) => options.onDenied?.({ plugin, what: "proxy", target: `${key}.${d.path}` }),
      });
      proxies.add(close);
      // Node and Bun report the plugin closing its end (Deno does not: RELEASE or dispose then).
      port1.addEventListener("close", close);
      return Promise.resolve(transferPort(port2));
    },
    set(key: string, value: unknown): Promise<void> {
      if (typeof key !== "string" || !write.has(key)) {
        deny(
          "context.write",
          String(key),
          `Cannot write context key "${String(key)}": plugin "${plugin}" did not declare it`,
          `Add "${String(key)}" to permissions.context.write in plugin.json`,
        );
      }
      // Measured before the host keeps it: the value's size and the plugin's total in the store.
      const bytes = sizeOf(value);
      if (bytes > valueBytes) overBudget(key, "the value", bytes, valueBytes);
      const total = footprint.after(key, bytes);
      if (total > contextBytes) overBudget(key, "the plugin's context", total, contextBytes);
      footprint.set(key, bytes);
      store.set(key, value);
      return Promise.resolve();
    },
    log(level: string, message: string): Promise<void> {
      const dropped = logBudget.allow();
      if (dropped < 0) return Promise.resolve();
      const l = (LOG_LEVELS as readonly string[]).includes(level) ? level as keyof Logger : "info";
      if (dropped > 0) logger.warn(`Dropped ${dropped} log lines over the rate limit`, { plugin });
      const text = typeof message === "string" ? message : "(not a string)";
      logger[l](text.length > lineChars ? `${text.slice(0, lineChars)}…` : text, { plugin });
      return Promise.resolve();
    },
    async fetch(url: string, init: SerializedRequestInit): Promise<SerializedResponse> {
      if (disposed) throw closed(`fetch "${String(url)}"`);
      return await broker.fetch(url, init);
    },
    registerHook(name: string, priority: number): Promise<void> {
      if (!isHookName(name)) {
        throw new TypeError(`Cannot register hook "${String(name)}": not a hook name`);
      }
      // A repeat goes through only with a new priority (the host then replaces the handler, so
      // one `hooks.run` still calls the plugin once).
      const p = typeof priority === "number" && Number.isInteger(priority) ? priority : -1;
      if (hooks.has(name) && hooks.get(name) === p) return Promise.resolve();
      if (!hooks.has(name) && hooks.size >= maxHooks) {
        deny(
          "hook",
          name,
          `Cannot register hook "${name}": plugin "${plugin}" already registered ${maxHooks} hooks`,
          "Register fewer distinct hooks",
        );
      }
      hooks.set(name, p);
      options.onHook?.(name, p);
      return Promise.resolve();
    },
    [DISPOSE](): void {
      if (disposed) return;
      disposed = true;
      const reason = closed("finish the request");
      broker.abortAll(reason);
      for (const close of [...proxies]) close();
    },
  };
}

function transferPort(port: MessagePort): unknown {
  // The port travels inside a plain value; Comlink must also put it in the transfer list.
  return Comlink.transfer({ [PROXY_PORT]: port }, [port]);
}
