/**
 * Named hooks that plugins extend with prioritized async handlers.
 *
 * A {@link HookRegistry} keeps, per hook name, handlers sorted by priority (lower runs first) and,
 * within one priority, by registration order. It knows plugins only by name; a handler is any
 * function, usually an async one that forwards to the plugin's worker. Three ways to run a hook:
 *
 * - {@link HookRegistry.run}: waterfall. Each handler receives the previous handler's result; a
 *   handler that returns `undefined` passes the value through unchanged (so a handler that only
 *   observes needs no `return`). To replace the value with "nothing", return `null`.
 * - {@link HookRegistry.runParallel}: every handler at once with the same input; results are
 *   collected in priority order with their plugin names.
 * - {@link HookRegistry.runUntil}: in order until a handler returns something other than
 *   `undefined`; that value wins and no later handler runs.
 *
 * Every handler call has a deadline (`timeoutMs`, default 5000): a late handler yields
 * `ERR_CALL_TIMEOUT` (it keeps running; its late result is ignored). With `onError: "skip"` (the
 * default) a failing handler is reported in the result's `errors` and to `onHandlerError`, and the
 * run goes on as if it had returned `undefined`. With `onError: "abort"` the run rejects with that
 * error. Reported errors are `PluginError`s carrying the plugin name: timeouts are
 * `ERR_CALL_TIMEOUT`, a thrown `PluginError` keeps its code, anything else is `ERR_PLUGIN_THREW`;
 * the original is the `cause`.
 *
 * @example
 * ```ts
 * import { HookPriority, HookRegistry } from "./hooks.ts";
 * const hooks = new HookRegistry();
 * hooks.register("on_request", {
 *   plugin: "auth",
 *   priority: HookPriority.CRITICAL,
 *   handler: async (req: { user?: string }) => ({ ...req, user: "ann" }),
 * });
 * const { value, errors } = await hooks.run("on_request", {});
 * value; // { user: "ann" }
 * errors.length; // 0
 * ```
 * @module
 */

import { type Entry, type HookRecord, HookRunner, type Slot } from "./_hook_runner.ts";
import {
  type HookStats,
  newStatsRecord,
  pluginStats,
  resetStats,
  snapshot,
} from "./_hook_stats.ts";
import {
  checkHookName,
  type HookCallInfo,
  type HookHandler,
  type HookParallelResult,
  HookPriority,
  type HookRegistration,
  type HookRegistryOptions,
  type HookRunOptions,
  type HookRunResult,
  type HookUntilResult,
} from "./_hook_types.ts";

export type { HookStats, PluginHookStats } from "./_hook_stats.ts";
export {
  type HookCallInfo,
  type HookHandler,
  type HookParallelResult,
  HookPriority,
  type HookRegistration,
  type HookRegistryOptions,
  type HookRunOptions,
  type HookRunResult,
  type HookUntilResult,
  isHookName,
  STANDARD_HOOKS,
  type StandardHook,
} from "./_hook_types.ts";

/**
 * Hooks, their prioritized handlers, and how to run them.
 *
 * @example
 * ```ts
 * const hooks = new HookRegistry({ timeoutMs: 1000 });
 * const off = hooks.register("on_startup", { plugin: "db", handler: async () => {} });
 * await hooks.run("on_startup", undefined);
 * off();
 * ```
 */
export class HookRegistry {
  #hooks = new Map<string, HookRecord>();
  #slots = new Map<string, Slot>();
  #seq = 0;
  readonly #runner: HookRunner;

  /**
   * Creates an empty registry. Defaults: `timeoutMs` 5000 per handler, `onError` `"skip"`.
   *
   * @param options default `timeoutMs`, `onError`, `onHandlerError`; clock
   * @throws {RangeError} when `timeoutMs` is not a positive number
   * @throws {TypeError} when `onError` is neither `"skip"` nor `"abort"`
   */
  constructor(options: HookRegistryOptions = {}) {
    this.#runner = new HookRunner(options);
  }

  /**
   * Adds a handler to a hook. Sorting happens here, not when the hook runs.
   *
   * @param hook hook name (see {@link isHookName})
   * @param registration plugin name, handler, priority
   * @returns a function that removes this handler (idempotent)
   * @throws {TypeError} when the hook name, plugin name or handler is invalid
   * @throws {RangeError} when `priority` is not an integer ≥ 0
   * @example
   * ```ts
   * const off = new HookRegistry().register("on_error", { plugin: "log", handler: () => {} });
   * off();
   * ```
   */
  register<T = unknown>(hook: string, registration: HookRegistration<T>): () => void {
    checkHookName(hook);
    const { plugin, handler } = registration;
    const priority = registration.priority ?? HookPriority.NORMAL;
    if (typeof plugin !== "string" || plugin === "") {
      throw new TypeError(`Cannot register hook "${hook}": plugin must be a non-empty string`);
    }
    if (typeof handler !== "function") {
      throw new TypeError(
        `Cannot register hook "${hook}" for "${plugin}": handler is not a function`,
      );
    }
    if (!Number.isSafeInteger(priority) || priority < 0) {
      throw new RangeError(
        `Cannot register hook "${hook}" for "${plugin}": priority must be an integer >= 0, got ${priority}`,
      );
    }
    let record = this.#hooks.get(hook);
    if (record === undefined) {
      record = { ...newStatsRecord(), entries: [] };
      this.#hooks.set(hook, record);
    }
    let slot = this.#slots.get(plugin);
    if (slot === undefined) {
      slot = { paused: false };
      this.#slots.set(plugin, slot);
    }
    const entry: Entry = {
      slot,
      handler: handler as HookHandler,
      info: Object.freeze({ hook, plugin, priority }),
      seq: this.#seq++,
      stats: pluginStats(record, plugin),
      removed: false,
    };
    // Copy-on-write: a run in progress keeps iterating the array it started with.
    const entries = record.entries;
    let at = entries.length;
    while (at > 0 && (entries[at - 1] as Entry).info.priority > priority) at--;
    record.entries = [...entries.slice(0, at), entry, ...entries.slice(at)];
    const rec = record;
    return () => {
      if (entry.removed) return;
      entry.removed = true;
      rec.entries = rec.entries.filter((e) => e !== entry);
    };
  }

  /**
   * Removes every handler of a plugin, on every hook, and forgets that it was paused.
   *
   * @param plugin plugin name
   * @returns how many handlers were removed
   * @example
   * ```ts
   * new HookRegistry().removePlugin("auth"); // 0
   * ```
   */
  removePlugin(plugin: string): number {
    const slot = this.#slots.get(plugin);
    if (slot === undefined) return 0;
    let removed = 0;
    for (const record of this.#hooks.values()) {
      const kept: Entry[] = [];
      for (const entry of record.entries) {
        if (entry.slot === slot) {
          entry.removed = true;
          removed++;
        } else kept.push(entry);
      }
      if (kept.length !== record.entries.length) record.entries = kept;
    }
    this.#slots.delete(plugin);
    return removed;
  }

  /**
   * Skips a plugin's handlers, on every hook, until {@link HookRegistry.resumePlugin}. Applies to
   * handlers registered later too, and to runs in progress from their next handler on.
   *
   * @param plugin plugin name
   * @example
   * ```ts
   * new HookRegistry().pausePlugin("auth");
   * ```
   */
  pausePlugin(plugin: string): void {
    let slot = this.#slots.get(plugin);
    if (slot === undefined) {
      slot = { paused: false };
      this.#slots.set(plugin, slot);
    }
    slot.paused = true;
  }

  /**
   * Runs a paused plugin's handlers again.
   *
   * @param plugin plugin name
   * @example
   * ```ts
   * new HookRegistry().resumePlugin("auth");
   * ```
   */
  resumePlugin(plugin: string): void {
    const slot = this.#slots.get(plugin);
    if (slot !== undefined) slot.paused = false;
  }

  /**
   * Whether a plugin is paused.
   *
   * @param plugin plugin name
   * @returns true between pausePlugin and resumePlugin/removePlugin
   * @example
   * ```ts
   * new HookRegistry().isPaused("auth"); // false
   * ```
   */
  isPaused(plugin: string): boolean {
    return this.#slots.get(plugin)?.paused ?? false;
  }

  /**
   * The handlers of a hook in the order they run (paused ones included).
   *
   * @param hook hook name
   * @returns plugin and priority of each registration
   * @example
   * ```ts
   * new HookRegistry().handlers("on_request"); // []
   * ```
   */
  handlers(hook: string): HookCallInfo[] {
    return (this.#hooks.get(hook)?.entries ?? []).map((e) => e.info);
  }

  /**
   * Names of hooks that have at least one handler.
   *
   * @returns hook names, in the order they were first registered
   * @example
   * ```ts
   * new HookRegistry().hooks(); // []
   * ```
   */
  hooks(): string[] {
    const names: string[] = [];
    for (const [name, record] of this.#hooks) if (record.entries.length > 0) names.push(name);
    return names;
  }

  /**
   * Waterfall: runs handlers in order, each receiving the previous result. A handler returning
   * `undefined` (or failing, in skip mode) leaves the value unchanged.
   *
   * @param hook hook name
   * @param data initial value
   * @param options timeout and error policy for this run
   * @returns the final value and the errors of skipped handlers
   * @throws {PluginError} in abort mode: the first handler error (ERR_CALL_TIMEOUT,
   *   ERR_PLUGIN_THREW, or the code of a thrown PluginError), with `plugin` set
   * @throws {TypeError} when the hook name is invalid
   * @example
   * ```ts
   * const hooks = new HookRegistry();
   * hooks.register("on_response", { plugin: "gzip", handler: async (s: string) => s + "!" });
   * (await hooks.run("on_response", "hi")).value; // "hi!"
   * ```
   */
  run<T>(hook: string, data: T, options?: HookRunOptions): Promise<HookRunResult<T>> {
    return this.#runner.sequence(hook, this.#hooks.get(hook), data, options, false) as Promise<
      HookRunResult<T>
    >;
  }

  /**
   * Runs every handler at once with the same input and collects their results.
   *
   * @param hook hook name
   * @param data input given to every handler
   * @param options timeout and error policy for this run
   * @returns results in priority order with plugin names, and errors
   * @throws {PluginError} in abort mode: the first error to happen; later ones go to
   *   `onHandlerError`
   * @throws {TypeError} when the hook name is invalid
   * @example
   * ```ts
   * const hooks = new HookRegistry();
   * hooks.register("on_startup", { plugin: "a", handler: async () => 1 });
   * (await hooks.runParallel("on_startup", null)).results; // [{ plugin: "a", value: 1 }]
   * ```
   */
  runParallel(
    hook: string,
    data: unknown,
    options?: HookRunOptions,
  ): Promise<HookParallelResult> {
    return this.#runner.parallel(hook, this.#hooks.get(hook), data, options);
  }

  /**
   * Runs handlers in order until one returns something other than `undefined`.
   *
   * @param hook hook name
   * @param data input given to every handler
   * @param options timeout and error policy for this run
   * @returns the winning value and plugin (both `undefined` if none answered), and errors
   * @throws {PluginError} in abort mode: the first handler error, with `plugin` set
   * @throws {TypeError} when the hook name is invalid
   * @example
   * ```ts
   * const hooks = new HookRegistry();
   * hooks.register("resolve:asset", { plugin: "cdn", handler: async (p: string) => `https://cdn/${p}` });
   * (await hooks.runUntil("resolve:asset", "a.png")).plugin; // "cdn"
   * ```
   */
  runUntil(hook: string, data: unknown, options?: HookRunOptions): Promise<HookUntilResult> {
    return this.#runner.sequence(hook, this.#hooks.get(hook), data, options, true) as Promise<
      HookUntilResult
    >;
  }

  /**
   * Timing statistics: of one hook, or of every hook that has a record.
   *
   * @param hook hook name; omit for all hooks
   * @returns a snapshot (a copy), or `undefined` for a hook never registered
   * @example
   * ```ts
   * const hooks = new HookRegistry();
   * hooks.register("on_request", { plugin: "a", handler: () => {} });
   * await hooks.run("on_request", {});
   * hooks.stats("on_request")?.plugins.a?.calls; // 1
   * ```
   */
  stats(hook: string): HookStats | undefined;
  /**
   * Timing statistics of every hook that has a record.
   *
   * @returns a snapshot (a copy) keyed by hook name
   * @example
   * ```ts
   * Object.keys(new HookRegistry().stats()); // []
   * ```
   */
  stats(): Record<string, HookStats>;
  stats(hook?: string): HookStats | undefined | Record<string, HookStats> {
    if (hook !== undefined) {
      const record = this.#hooks.get(hook);
      return record === undefined ? undefined : snapshot(record);
    }
    const all: Record<string, HookStats> = {};
    for (const [name, record] of this.#hooks) all[name] = snapshot(record);
    return all;
  }

  /**
   * Sets every counter back to zero.
   *
   * @example
   * ```ts
   * new HookRegistry().resetStats();
   * ```
   */
  resetStats(): void {
    for (const record of this.#hooks.values()) resetStats(record);
  }
}
