/**
 * The vocabulary of hooks: names, priorities, handler and run types. Private to lib/hooks.ts,
 * which re-exports all of it.
 *
 * @module
 */

import type { PluginError } from "./errors.ts";

/**
 * Priority bands; lower runs first. Any integer ≥ 0 is allowed: critical 0–99, high 100–199,
 * normal 200–299 (the default), low 300–399, cleanup 400 and above.
 */
export const HookPriority = {
  CRITICAL: 0,
  HIGH: 100,
  NORMAL: 200,
  LOW: 300,
  CLEANUP: 400,
} as const;

/** The hooks the host itself runs. Plugins and hosts may use any other valid name too. */
export const STANDARD_HOOKS = [
  "on_request",
  "on_response",
  "on_error",
  "on_startup",
  "on_shutdown",
  "on_plugin_load",
  "on_plugin_unload",
] as const;

/** Name of a standard hook; see {@link STANDARD_HOOKS}. */
export type StandardHook = (typeof STANDARD_HOOKS)[number];

/** What a hook handler learns besides the data: which hook and which registration. */
export interface HookCallInfo {
  /** Hook name. */
  readonly hook: string;
  /** Plugin that registered the handler. */
  readonly plugin: string;
  /** Priority of the registration. */
  readonly priority: number;
}

/**
 * A hook handler. It may be sync or async; for {@link HookRegistry.run} and
 * {@link HookRegistry.runUntil}, returning `undefined` means "no change" / "no answer".
 */
export type HookHandler<T = unknown> = (data: T, info: HookCallInfo) => unknown;

/** One registration for {@link HookRegistry.register}. */
export interface HookRegistration<T = unknown> {
  /** Plugin the handler belongs to. */
  plugin: string;
  /** The handler. */
  handler: HookHandler<T>;
  /** Integer ≥ 0; lower runs first. Default {@link HookPriority.NORMAL}. */
  priority?: number;
}

/** Per-run options; each defaults to the registry's option of the same name. */
export interface HookRunOptions {
  /** Deadline per handler call in ms; `Infinity` disables it. Default 5000. */
  timeoutMs?: number;
  /** `"skip"` (default): report and continue. `"abort"`: reject with the error. */
  onError?: "skip" | "abort";
  /**
   * Called with each handler error the run does not reject with (all of them in skip mode). If it
   * throws, the run rejects with that error.
   */
  onHandlerError?: (error: PluginError) => void;
}

/** Options for {@link HookRegistry}: defaults for every run, and the clock. */
export interface HookRegistryOptions extends HookRunOptions {
  /**
   * Measure handler durations for {@link HookRegistry.stats}. Default true. `false` saves one
   * clock read per handler call (40–130 ns depending on the runtime); counts are still kept and
   * the `*Ms` fields stay 0.
   */
  timing?: boolean;
  /** Monotonic clock in ms, for stats only (deadlines always use `performance.now`). */
  now?: () => number;
}

/** Result of {@link HookRegistry.run}. */
export interface HookRunResult<T> {
  /** The value after the last handler. */
  value: T;
  /** Errors of skipped handlers, in the order they happened (a shared frozen array if none). */
  errors: readonly PluginError[];
}

/** Result of {@link HookRegistry.runParallel}. */
export interface HookParallelResult {
  /** Each handler that succeeded, in priority order, with what it returned. */
  results: Array<{ plugin: string; value: unknown }>;
  /** Errors of failed handlers, in priority order (a shared frozen array if none). */
  errors: readonly PluginError[];
}

/** Result of {@link HookRegistry.runUntil}. */
export interface HookUntilResult {
  /** The first value other than `undefined`, or `undefined` when no handler answered. */
  value: unknown;
  /** Plugin whose handler answered, or `undefined`. */
  plugin: string | undefined;
  /** Errors of skipped handlers, in order (a shared frozen array if none). */
  errors: readonly PluginError[];
}

const NAME = /^[a-z][a-z0-9_.:-]{0,63}$/;

/**
 * Whether a string is a valid hook name: a lowercase letter, then up to 63 of `a-z 0-9 _ . : -`.
 *
 * @param name candidate
 * @returns true when {@link HookRegistry} accepts it
 * @example
 * ```ts
 * isHookName("on_request"); // true
 * isHookName("OnRequest"); // false
 * ```
 */
export function isHookName(name: unknown): name is string {
  return typeof name === "string" && NAME.test(name);
}

/** Throws the TypeError for an invalid hook name. */
export function checkHookName(hook: unknown): asserts hook is string {
  if (!isHookName(hook)) {
    throw new TypeError(
      `Cannot use hook name ${
        JSON.stringify(hook)
      }: expected a lowercase letter, then up to 63 of a-z 0-9 _ . : -`,
    );
  }
}
