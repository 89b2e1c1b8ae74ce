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
import { PluginError } from "./errors.ts";
import { LOG_LEVELS, type Logger } from "./logger.ts";
import { matchesHost } from "../permissions/host_pattern.ts";
import type { NetworkGrant } from "../permissions/grants.ts";
import type { SerializedRequestInit, SerializedResponse } from "./worker/serve.ts";
import { PROXY_PORT } from "./worker/protocol.ts";
import { exposeGuarded } from "./guarded_endpoint.ts";

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
   * grant, or a call on a context proxy (or native proxy) the plugin may not make.
   */
  what: "context.read" | "context.write" | "network" | "proxy";
  /** The refused target: a context key, a URL or host, or a `key.method` proxy path. */
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
  /** Called when the plugin hits a limit the broker enforces (concurrent connections). */
  onLimit?: (detail: { type: "connections"; used: number; limit: number }) => void;
  /** Called when the plugin registers a hook handler (`priority` -1 means "use the default"). */
  onHook?: (name: string, priority: number) => void;
  /** Redirects followed at most (default 10). */
  maxRedirects?: number;
  /** Largest response body accepted, in bytes (default 32 MiB). */
  maxResponseBytes?: number;
}

/** The host API object exposed to one plugin. */
export interface ContextApi {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  log(level: string, message: string): Promise<void>;
  fetch(url: string, init: SerializedRequestInit): Promise<SerializedResponse>;
  registerHook(name: string, priority: number): Promise<void>;
}

function hasFunctions(value: unknown): boolean {
  if (typeof value === "function") return true;
  if (typeof value !== "object" || value === null) return false;
  let proto: object | null = value;
  while (proto !== null && proto !== Object.prototype) {
    for (const k of Object.getOwnPropertyNames(proto)) {
      if (k !== "constructor" && typeof (value as Record<string, unknown>)[k] === "function") {
        return true;
      }
    }
    proto = Object.getPrototypeOf(proto);
  }
  return false;
}

function methodsOf(value: object): Record<string, (...a: unknown[]) => unknown> {
  const out: Record<string, (...a: unknown[]) => unknown> = {};
  let proto: object | null = value;
  while (proto !== null && proto !== Object.prototype) {
    for (const k of Object.getOwnPropertyNames(proto)) {
      const f = (value as Record<string, unknown>)[k];
      if (k !== "constructor" && typeof f === "function" && !(k in out)) {
        out[k] = (...args: unknown[]) => (f as (...a: unknown[]) => unknown).apply(value, args);
      }
    }
    proto = Object.getPrototypeOf(proto);
  }
  return out;
}

/**
 * Builds the checked host API for one plugin.
 *
 * Values with methods (a logger, a database client) are handed over as a proxy on a port of their
 * own that only allows calling those methods; plain data is structured-cloned.
 *
 * @param options the plugin's grants and the host's store and logger
 * @returns the API object to expose with {@link exposeGuarded}
 * @throws {PluginError} ERR_PERMISSION_DENIED from each method when the access was not declared
 * @example
 * ```ts
 * const api = createContextApi(options);
 * ```
 */
export function createContextApi(options: ContextApiOptions): ContextApi {
  const { plugin, store, logger } = options;
  const read = new Set(options.read);
  const write = new Set(options.write);
  const maxRedirects = options.maxRedirects ?? 10;
  const maxBytes = options.maxResponseBytes ?? 32 * 1024 * 1024;
  let inflight = 0;
  const deny = (what: Denial["what"], target: string, message: string, hint: string): never => {
    options.onDenied?.({ plugin, what, target });
    throw new PluginError("ERR_PERMISSION_DENIED", message, { hint, plugin });
  };
  const checkUrl = (url: URL, hop: string) => {
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      deny(
        "network",
        url.href,
        `Cannot fetch "${url.href}"${hop}: only http and https are brokered`,
        "Use an http(s) URL",
      );
    }
    const g = options.network;
    if (g.mode === "full") return;
    if (g.mode === "none") {
      deny(
        "network",
        url.host,
        `Cannot fetch "${url.href}"${hop}: plugin "${plugin}" declares no network access`,
        "Add the host to permissions.network in plugin.json",
      );
    }
    if (!matchesHost(g.patterns, url)) {
      deny(
        "network",
        url.host,
        `Cannot fetch "${url.href}"${hop}: host "${url.host}" is not in the network allow-list of plugin "${plugin}"`,
        `Add "${url.hostname}" to permissions.network in plugin.json`,
      );
    }
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
      if (!hasFunctions(value)) return Promise.resolve(value);
      const { port1, port2 } = new MessageChannel();
      exposeGuarded(
        typeof value === "function"
          ? { call: (...a: unknown[]) => (value as (...x: unknown[]) => unknown)(...a) }
          : methodsOf(value as object),
        port1,
        {
          plugin,
          onRefused: (d) =>
            options.onDenied?.({ plugin, what: "proxy", target: `${key}.${d.path}` }),
        },
      );
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
      store.set(key, value);
      return Promise.resolve();
    },
    log(level: string, message: string): Promise<void> {
      const l = (LOG_LEVELS as readonly string[]).includes(level) ? level as keyof Logger : "info";
      logger[l](String(message).slice(0, 8192), { plugin });
      return Promise.resolve();
    },
    async fetch(url: string, init: SerializedRequestInit): Promise<SerializedResponse> {
      let current: URL;
      try {
        current = new URL(url);
      } catch (cause) {
        throw new PluginError(
          "ERR_PERMISSION_DENIED",
          `Cannot fetch "${url}": not an absolute URL`,
          { hint: "Pass an absolute http(s) URL", cause, plugin },
        );
      }
      checkUrl(current, "");
      if (inflight >= options.connections) {
        options.onLimit?.({ type: "connections", used: inflight + 1, limit: options.connections });
        throw new PluginError(
          "ERR_RESOURCE_LIMIT",
          `Cannot fetch "${url}": plugin "${plugin}" already has ${inflight} connections open (limit ${options.connections})`,
          { hint: "Raise limits.connections or await earlier requests", plugin },
        );
      }
      inflight++;
      try {
        let method = init.method ?? "GET";
        let body = init.body;
        for (let hop = 0;; hop++) {
          const res = await fetch(current, {
            method,
            ...(init.headers ? { headers: init.headers } : {}),
            ...(body !== undefined ? { body: body as BodyInit } : {}),
            redirect: "manual",
          });
          const location = res.headers.get("location");
          if (res.status >= 300 && res.status < 400 && location !== null) {
            await res.body?.cancel();
            if (hop >= maxRedirects) {
              throw new PluginError(
                "ERR_PERMISSION_DENIED",
                `Cannot fetch "${url}": more than ${maxRedirects} redirects`,
                { hint: "Fetch the final URL directly", plugin },
              );
            }
            const next = new URL(location, current);
            checkUrl(next, ` (redirected from "${current.href}")`);
            if (
              res.status === 303 ||
              ((res.status === 301 || res.status === 302) && method === "POST")
            ) {
              method = "GET";
              body = undefined;
            }
            current = next;
            continue;
          }
          const buf = await res.arrayBuffer();
          if (buf.byteLength > maxBytes) {
            throw new PluginError(
              "ERR_RESOURCE_LIMIT",
              `Cannot fetch "${url}": response of ${buf.byteLength} bytes exceeds ${maxBytes}`,
              { hint: "Fetch smaller resources", plugin },
            );
          }
          return {
            url: current.href,
            status: res.status,
            statusText: res.statusText,
            headers: [...res.headers.entries()],
            body: buf,
            redirected: hop > 0,
          };
        }
      } finally {
        inflight--;
      }
    },
    registerHook(name: string, priority: number): Promise<void> {
      if (typeof name !== "string" || !/^[a-z][a-z0-9_.:-]{0,63}$/.test(name)) {
        throw new TypeError(`Cannot register hook "${String(name)}": not a hook name`);
      }
      options.onHook?.(
        name,
        typeof priority === "number" && Number.isInteger(priority) ? priority : -1,
      );
      return Promise.resolve();
    },
  };
}

function transferPort(port: MessagePort): unknown {
  // The port travels inside a plain value; Comlink must also put it in the transfer list.
  return Comlink.transfer({ [PROXY_PORT]: port }, [port]);
}
