/**
 * Worker side of a plugin: imports the plugin module, hands it a context, and serves calls.
 * Runtime-agnostic: each runtime's worker entry (in `lib/runtime/`) passes in the two ports.
 * @module
 */

import * as Comlink from "comlink";
import { PluginError, serializeError } from "../errors.ts";
import { installComlinkErrorHandler } from "../protocol/comlink_errors.ts";
import { brokeredFetch } from "./_fetch_init.ts";
import {
  KIND_CALL,
  KIND_HOOK,
  KIND_LIFECYCLE,
  KIND_STATS,
  PROXY_PORT,
  type ReadyInfo,
  type Reply,
  type Request,
  type SerializedRequestInit,
  type SerializedResponse,
  type WorkerInitData,
} from "../protocol/messages.ts";

/** The subset of MessagePort the worker needs. */
export interface PortLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  start?(): void;
}

/** The host API a worker plugin can reach, as seen by the host's broker. */
export interface RemoteContext {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  log(level: string, message: string): Promise<void>;
  fetch(url: string, init: SerializedRequestInit): Promise<SerializedResponse>;
  registerHook(name: string, priority: number): Promise<void>;
}

type Fn = (...args: unknown[]) => unknown;

interface PluginModule {
  init?: Fn;
  start?: Fn;
  stop?: Fn;
  pause?: Fn;
  resume?: Fn;
  shutdown?: Fn;
  snapshot?: Fn;
  restore?: Fn;
  methods?: Record<string, Fn>;
  hooks?: Record<string, Fn>;
}

const LIFECYCLE = ["start", "stop", "pause", "resume", "shutdown", "snapshot", "restore"] as const;
function makeContext(
  init: WorkerInitData,
  remote: Comlink.Remote<RemoteContext>,
  hooks: Map<string, Fn>,
) {
  const log = (level: string, message: string) => remote.log(level, String(message));
  return Object.freeze({
    plugin: Object.freeze({ name: init.name, version: init.version }),
    async get(key: string): Promise<unknown> {
      const value = await remote.get(key);
      if (typeof value === "object" && value !== null && PROXY_PORT in value) {
        const port = (value as Record<string, MessagePort>)[PROXY_PORT] as MessagePort;
        return Comlink.wrap(port);
      }
      return value;
    },
    set: (key: string, value: unknown) => remote.set(key, value),
    log,
    fetch: (input: string | URL | globalThis.Request, reqInit?: RequestInit): Promise<Response> =>
      brokeredFetch((url, req) => remote.fetch(url, req), input, reqInit),
    hooks: Object.freeze({
      async on(name: string, handler: Fn, options: { priority?: number } = {}): Promise<void> {
        if (typeof handler !== "function") {
          throw new TypeError("Cannot register hook: handler is not a function");
        }
        hooks.set(name, handler);
        await remote.registerHook(name, options.priority ?? -1);
      },
    }),
  });
}

/**
 * Imports the plugin, runs `init(ctx)`, reports ready on the call port, then serves requests.
 *
 * @param init what to load
 * @param ports the call port and the context port
 * @returns once the load reply was sent
 * @example
 * ```ts
 * await servePlugin(init, { call: callPort, ctx: ctxPort });
 * ```
 */
export async function servePlugin(
  init: WorkerInitData,
  ports: { call: PortLike; ctx: PortLike },
): Promise<void> {
  installComlinkErrorHandler();
  const { call } = ports;
  const remote = Comlink.wrap<RemoteContext>(ports.ctx as unknown as Comlink.Endpoint);
  const hookHandlers = new Map<string, Fn>();
  let plugin: PluginModule;
  let methods: Record<string, Fn>;
  try {
    const mod = await import(init.entryUrl) as { default?: unknown };
    const candidate = (mod.default ?? mod) as PluginModule;
    if (typeof candidate !== "object" || candidate === null) {
      throw new PluginError(
        "ERR_PLUGIN_INIT",
        `Cannot load plugin "${init.name}": the entry does not export an object`,
        {
          hint: "export default { methods: { ... } } or use definePlugin()",
        },
      );
    }
    plugin = candidate;
    methods = plugin.methods ?? {};
    for (const [k, fn] of Object.entries(methods)) {
      if (typeof fn !== "function") {
        throw new PluginError(
          "ERR_PLUGIN_INIT",
          `Cannot load plugin "${init.name}": methods.${k} is not a function`,
          {
            hint: "Every entry of `methods` must be a function",
          },
        );
      }
    }
    for (const [k, fn] of Object.entries(plugin.hooks ?? {})) {
      if (typeof fn === "function") hookHandlers.set(k, fn);
    }
    const ctx = makeContext(init, remote, hookHandlers);
    if (typeof plugin.init === "function") await plugin.init(ctx);
  } catch (error) {
    call.postMessage([0, 0, serializeError(error)] satisfies Reply);
    return;
  }
  const reply = (id: number, ok: 0 | 1, value: unknown, name = "") => {
    try {
      call.postMessage([id, ok, value] satisfies Reply);
    } catch (error) {
      const e = new PluginError(
        "ERR_PLUGIN_THREW",
        `Cannot return the result of "${init.name}.${name}": it is not structured-cloneable`,
        {
          hint: "Return plain data (objects, arrays, strings, numbers, typed arrays)",
          cause: error,
        },
      );
      call.postMessage([id, 0, serializeError(e)] satisfies Reply);
    }
  };
  const settle = (id: number, fn: Fn, self: unknown, args: unknown[], name: string) => {
    let result: unknown;
    try {
      result = fn.apply(self, args);
    } catch (error) {
      reply(id, 0, serializeError(error));
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (value) => reply(id, 1, value, name),
        (error) => reply(id, 0, serializeError(error)),
      );
    } else {
      reply(id, 1, result, name);
    }
  };
  call.addEventListener("message", (event: MessageEvent) => {
    const [kind, id, name, payload] = event.data as Request;
    if (kind === KIND_CALL) {
      const fn = Object.hasOwn(methods, name) ? methods[name] : undefined;
      if (fn === undefined) {
        const e = new PluginError(
          "ERR_METHOD_NOT_FOUND",
          `Cannot call "${init.name}.${name}": no such method`,
          {
            hint: `Methods: ${Object.keys(methods).join(", ") || "(none)"}`,
          },
        );
        reply(id, 0, serializeError(e));
        return;
      }
      settle(id, fn, methods, payload as unknown[], name);
    } else if (kind === KIND_HOOK) {
      const fn = hookHandlers.get(name);
      if (fn === undefined) reply(id, 1, undefined);
      else settle(id, fn, plugin, [payload], name);
    } else if (kind === KIND_STATS) {
      // Self-reported by the plugin thread: a hostile plugin can lie about it.
      import("node:v8").then(
        (v8) => reply(id, 1, { heapUsed: v8.getHeapStatistics().used_heap_size }),
        () => reply(id, 1, {}),
      );
    } else if (kind === KIND_LIFECYCLE) {
      const fn = (LIFECYCLE as readonly string[]).includes(name)
        ? plugin[name as (typeof LIFECYCLE)[number]]
        : undefined;
      if (typeof fn !== "function") reply(id, 1, undefined);
      else settle(id, fn, plugin, payload === undefined ? [] : [payload], name);
    }
  });
  call.start?.();
  // Node builds MessageEvent lazily (it loads undici's WebIDL classes: 50-100 ms of CPU) at a
  // worker's first message. Touching it here moves that cost from the first call into the load:
  // with dozens of fresh plugins on two cores, first calls otherwise miss a 1 s deadline.
  void (globalThis as { MessageEvent?: unknown }).MessageEvent;
  const info: ReadyInfo = {
    methods: Object.keys(methods),
    hooks: [...hookHandlers.keys()],
    lifecycle: LIFECYCLE.filter((k) => typeof plugin[k] === "function"),
  };
  call.postMessage([0, 1, info] satisfies Reply);
}
