/**
 * How a hook run executes: handler calls, deadlines, error policy and timing. Private to
 * lib/hooks.ts; the registry keeps the handlers, a {@link HookRunner} runs them.
 *
 * @module
 */

import { PluginError } from "./errors.ts";
import { Deadlines } from "./_deadlines.ts";
import { account, finish, type PluginHookStats, type StatsRecord } from "./_hook_stats.ts";
import {
  checkHookName,
  type HookCallInfo,
  type HookHandler,
  type HookParallelResult,
  type HookRegistryOptions,
  type HookRunOptions,
  type HookRunResult,
  type HookUntilResult,
} from "./_hook_types.ts";

/** Pause state shared by every handler of one plugin. */
export interface Slot {
  paused: boolean;
}

/** One registered handler. */
export interface Entry {
  readonly slot: Slot;
  readonly handler: HookHandler;
  readonly info: HookCallInfo;
  readonly seq: number;
  readonly stats: PluginHookStats;
  removed: boolean;
}

/** A hook: its handlers in run order (replaced, never mutated, on change) and its counters. */
export interface HookRecord extends StatsRecord {
  entries: Entry[];
}

/** The options of one run, checked, with the registry's defaults filled in. */
export interface Policy {
  readonly timeoutMs: number;
  readonly abort: boolean;
  readonly report: ((error: PluginError) => void) | undefined;
}

const NO_ERRORS: readonly PluginError[] = Object.freeze([]);

/** Runs the handlers of a hook record with the registry's defaults, clock and deadlines. */
export class HookRunner {
  readonly #timeoutMs: number;
  readonly #onError: "skip" | "abort";
  readonly #onHandlerError: ((error: PluginError) => void) | undefined;
  readonly #now: () => number;
  readonly #realClock: boolean;
  readonly #defaults: Policy;
  #deadlines = new Deadlines();

  /**
   * @param options the registry's options
   * @throws {RangeError} when `timeoutMs` is not a positive number
   * @throws {TypeError} when `onError` is neither `"skip"` nor `"abort"`
   */
  constructor(options: HookRegistryOptions) {
    this.#timeoutMs = checkTimeout(options.timeoutMs ?? 5000);
    this.#onError = checkOnError(options.onError ?? "skip");
    this.#onHandlerError = options.onHandlerError;
    this.#defaults = {
      timeoutMs: this.#timeoutMs,
      abort: this.#onError === "abort",
      report: this.#onHandlerError,
    };
    const timing = options.timing ?? true;
    this.#realClock = timing && options.now === undefined;
    this.#now = !timing ? () => 0 : options.now ?? (() => performance.now());
  }

  /**
   * run (waterfall) and runUntil (first answer wins): handlers one after the other. In runUntil
   * `value` never changes before the answer, so every handler receives `data`.
   */
  async sequence(
    hook: string,
    record: HookRecord | undefined,
    data: unknown,
    options: HookRunOptions | undefined,
    until: boolean,
  ): Promise<HookRunResult<unknown> | HookUntilResult> {
    if (record === undefined) {
      checkHookName(hook);
      return until
        ? { value: undefined, plugin: undefined, errors: NO_ERRORS }
        : { value: data, errors: NO_ERRORS };
    }
    const { timeoutMs, abort, report } = this.#policy(options);
    const entries = record.entries;
    const start = this.#now();
    let t = start;
    let value: unknown = data;
    let errors = NO_ERRORS as PluginError[];
    let failed = 0;
    try {
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i] as Entry;
        if (entry.removed || entry.slot.paused) continue;
        // Inlined rather than a call to #call: one async frame fewer per handler.
        let out: unknown;
        try {
          out = entry.handler(value, entry.info);
          if (isThenable(out)) out = await this.#settle(out, timeoutMs, t);
        } catch (error) {
          out = wrap(entry.info, error);
        }
        const end = this.#now();
        out = account(entry, out, end - t, timeoutMs);
        t = end;
        if (out instanceof PluginError) {
          failed++;
          if (abort) throw out;
          if (errors === NO_ERRORS) errors = [];
          errors.push(out);
          report?.(out);
        } else if (out !== undefined) {
          if (until) return { value: out, plugin: entry.info.plugin, errors };
          value = out;
        }
      }
    } finally {
      // `t` is the last handler's end, so the run's end costs no extra clock read.
      finish(record, t - start, failed);
    }
    return until ? { value: undefined, plugin: undefined, errors } : { value, errors };
  }

  /** runParallel: every handler at once with the same input. */
  async parallel(
    hook: string,
    record: HookRecord | undefined,
    data: unknown,
    options: HookRunOptions | undefined,
  ): Promise<HookParallelResult> {
    if (record === undefined) {
      checkHookName(hook);
      return { results: [], errors: NO_ERRORS };
    }
    const { timeoutMs, abort, report } = this.#policy(options);
    const entries = record.entries;
    const start = this.#now();
    const calls: Array<Promise<unknown>> = [];
    const ran: Entry[] = [];
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      if (entry.removed || entry.slot.paused) continue;
      ran.push(entry);
      calls.push(this.#call(entry, data, timeoutMs));
    }
    let outs: unknown[];
    let failed = 0;
    try {
      if (abort) {
        let first: PluginError | undefined;
        outs = await Promise.all(calls.map((p) =>
          p.then((out) => {
            if (out instanceof PluginError) {
              failed++;
              if (first === undefined) {
                first = out;
                throw out;
              }
              report?.(out);
            }
            return out;
          })
        ));
      } else outs = await Promise.all(calls);
    } finally {
      if (abort) finish(record, this.#now() - start, failed);
    }
    const results: Array<{ plugin: string; value: unknown }> = [];
    let errors = NO_ERRORS as PluginError[];
    for (let i = 0; i < outs.length; i++) {
      const out = outs[i];
      if (out instanceof PluginError) {
        if (errors === NO_ERRORS) errors = [];
        errors.push(out);
        report?.(out);
      } else results.push({ plugin: (ran[i] as Entry).info.plugin, value: out });
    }
    if (!abort) finish(record, this.#now() - start, errors.length);
    return { results, errors };
  }

  // Calls one handler for runParallel; resolves to its result or to a PluginError (never
  // rejects), so Promise.all sees every outcome.
  async #call(entry: Entry, data: unknown, timeoutMs: number): Promise<unknown> {
    const start = this.#now();
    let out: unknown;
    try {
      out = entry.handler(data, entry.info);
      if (isThenable(out)) out = await this.#settle(out, timeoutMs, start);
    } catch (error) {
      out = wrap(entry.info, error);
    }
    return account(entry, out, this.#now() - start, timeoutMs);
  }

  // Waits for a handler's promise, or resolves to TIMED_OUT after timeoutMs. `start` is the
  // stats clock's reading at the call; it doubles as the deadline base when that clock is real.
  #settle(promise: PromiseLike<unknown>, timeoutMs: number, start: number): PromiseLike<unknown> {
    return this.#deadlines.watch(promise, timeoutMs, this.#realClock ? start : undefined);
  }

  #policy(options: HookRunOptions | undefined): Policy {
    if (options === undefined) return this.#defaults;
    return {
      timeoutMs: options.timeoutMs === undefined
        ? this.#timeoutMs
        : checkTimeout(options.timeoutMs),
      abort: (options.onError === undefined ? this.#onError : checkOnError(options.onError)) ===
        "abort",
      report: options.onHandlerError ?? this.#onHandlerError,
    };
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === "object" || typeof value === "function") &&
    typeof (value as PromiseLike<unknown>).then === "function";
}

function wrap(info: HookCallInfo, error: unknown): PluginError {
  const what = error instanceof Error ? error.message : String(error);
  const message = `Cannot run hook "${info.hook}": plugin "${info.plugin}" failed: ${what}`;
  if (error instanceof PluginError) {
    return new PluginError(error.code, message, {
      plugin: info.plugin,
      hint: error.hint,
      cause: error,
    });
  }
  return new PluginError("ERR_PLUGIN_THREW", message, {
    plugin: info.plugin,
    hint: `Fix the "${info.hook}" handler of plugin "${info.plugin}"`,
    cause: error,
  });
}

function checkTimeout(ms: number): number {
  if (typeof ms !== "number" || !(ms > 0)) {
    throw new RangeError(`Cannot use timeoutMs ${ms}: expected a positive number or Infinity`);
  }
  return ms;
}

function checkOnError(mode: string): "skip" | "abort" {
  if (mode !== "skip" && mode !== "abort") {
    throw new TypeError(`Cannot use onError ${JSON.stringify(mode)}: expected "skip" or "abort"`);
  }
  return mode;
}
