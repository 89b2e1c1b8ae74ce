/**
 * The plugin author's side of bulkhead: {@link definePlugin} and the types of the object a plugin
 * entry exports and of the context it receives in `init`.
 *
 * A plugin entry module default-exports one object. The host's worker imports it, calls
 * `init(ctx)` once, then serves `methods` to `plugin.call(name, ...args)`, `hooks` to the host's
 * hook runs and the lifecycle functions to the host's lifecycle transitions.
 * Arguments and results cross a worker boundary: they must be structured-cloneable.
 *
 * This module has no imports and no side effects, so a plugin can depend on it without pulling
 * in the host.
 *
 * @example
 * ```ts
 * // plugins/greeter/mod.ts, next to plugins/greeter/plugin.json
 * import { definePlugin, type PluginContext } from "@bulkhead/core/plugin";
 *
 * let ctx: PluginContext;
 * export default definePlugin({
 *   async init(c) {
 *     ctx = c;
 *     await ctx.log("info", `${ctx.plugin.name} ${ctx.plugin.version} ready`);
 *   },
 *   methods: {
 *     greet: (name: string) => `Hello, ${name}!`,
 *     async units() {
 *       const config = await ctx.get("config") as { units?: string } | undefined;
 *       return config?.units ?? "metric";
 *     },
 *   },
 *   hooks: {
 *     on_request: (data) => ({ ...(data as object), greeted: true }),
 *   },
 * });
 * ```
 * @module
 */

/** Log levels accepted by {@link PluginContext.log}. */
export type PluginLogLevel = "debug" | "info" | "warn" | "error";

/** A hook handler: receives the hook's data, returns the (possibly changed) data or a promise of it. */
export type PluginHookHandler = (data: unknown) => unknown;

/**
 * The constraint on a plugin's `methods` map: any functions. `never[]` parameters accept every
 * function signature (parameters are contravariant) without resorting to `any`.
 */
export type PluginMethods = Record<string, (...args: never[]) => unknown>;

/** Options of {@link PluginHooksApi.on}. */
export interface HookOptions {
  /** Lower runs first. Default: the priority declared in plugin.json `hooks`, else the host's. */
  priority?: number;
}

/** Runtime hook registration, for hooks whose handlers are only known after `init`. */
export interface PluginHooksApi {
  /**
   * Registers (or replaces) this plugin's handler for hook `name`.
   *
   * @param name the hook name, e.g. `on_request`
   * @param handler called with the hook's data; its result is passed to the next handler
   * @param options priority
   * @returns once the host recorded the registration
   * @throws {TypeError} when `handler` is not a function
   */
  on(name: string, handler: PluginHookHandler, options?: HookOptions): Promise<void>;
}

/**
 * What a plugin receives in `init(ctx)`: its identity and the host API. Every call crosses the
 * worker boundary and is checked by the host against the plugin's manifest permissions.
 */
export interface PluginContext {
  /** The plugin's name and version from its manifest. */
  readonly plugin: { readonly name: string; readonly version: string };
  /**
   * Reads a shared context value. Values the host shares as objects with functions arrive as
   * async proxies.
   *
   * @param key context key (must be listed in `permissions.context.read`)
   * @returns the value, or undefined when absent
   * @throws {PluginError} ERR_PERMISSION_DENIED when the manifest does not grant the key
   */
  get(key: string): Promise<unknown>;
  /**
   * Writes a shared context value (structured-cloneable).
   *
   * @param key context key (must be listed in `permissions.context.write`)
   * @param value the value
   * @returns once the host stored it
   * @throws {PluginError} ERR_PERMISSION_DENIED when the manifest does not grant the key
   */
  set(key: string, value: unknown): Promise<void>;
  /**
   * Writes to the host's logger, tagged with the plugin's name.
   *
   * @param level "debug", "info", "warn" or "error"
   * @param message the text
   * @returns once the host received it
   */
  log(level: PluginLogLevel, message: string): Promise<void>;
  /**
   * `fetch` brokered by the host: the host checks the URL (and every redirect) against
   * `permissions.network`. Bodies are limited to strings, `ArrayBuffer` and `Uint8Array`.
   *
   * @param input URL or Request (only its URL is used)
   * @param init method, headers, body
   * @returns the response, with the body fully read by the host
   * @throws {PluginError} ERR_PERMISSION_DENIED when the host is not in `permissions.network`
   * @throws {TypeError} when the body is a stream, Blob or FormData
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** Hook registration at run time. */
  readonly hooks: PluginHooksApi;
}

/**
 * The object a plugin entry module default-exports. Every member is optional; lifecycle functions
 * run on the host's matching transition and may be async.
 *
 * @typeParam M the plugin's methods, kept precise for callers that import the plugin's type
 */
export interface PluginDefinition<M extends PluginMethods = PluginMethods> {
  /** Runs once after the module is imported, before any call. A throw fails the load. */
  init?(ctx: PluginContext): void | Promise<void>;
  /** Runs when the host starts the plugin. */
  start?(): void | Promise<void>;
  /** Runs when the host stops the plugin. */
  stop?(): void | Promise<void>;
  /** Runs when the host pauses the plugin (calls are held until resume). */
  pause?(): void | Promise<void>;
  /** Runs when the host resumes a paused plugin. */
  resume?(): void | Promise<void>;
  /** Runs once before the worker is terminated; release resources here. */
  shutdown?(): void | Promise<void>;
  /** Returns state to carry over a reload (structured-cloneable). */
  snapshot?(): unknown;
  /** Receives the state {@link PluginDefinition.snapshot} returned before a reload. */
  restore?(state: unknown): void | Promise<void>;
  /** Functions callers reach with `plugin.call(name, ...args)`; `this` is this map. */
  methods?: M;
  /** Hook handlers by hook name; priorities come from plugin.json `hooks`. `this` is the plugin. */
  hooks?: Record<string, PluginHookHandler>;
}

/**
 * Declares a plugin with full type checking of its lifecycle, methods and context. Returns its
 * argument unchanged: the host reads the same object whether or not this helper is used.
 *
 * @typeParam M the methods map, inferred from the argument
 * @param plugin the plugin definition
 * @returns `plugin` itself
 * @example
 * ```ts
 * import { definePlugin } from "@bulkhead/core/plugin";
 *
 * export default definePlugin({
 *   methods: {
 *     add: (a: number, b: number) => a + b,
 *   },
 *   snapshot: () => ({ calls: 0 }),
 *   restore(state) {
 *     console.log("restored", state);
 *   },
 * });
 * ```
 */
export function definePlugin<M extends PluginMethods>(
  plugin: PluginDefinition<M>,
): PluginDefinition<M> {
  return plugin;
}
