/**
 * Delivers a worker's exit reason exactly once, also to a listener registered after the fact.
 * Shared by the adapters.
 * @module
 */

import type { ExitReason } from "./types.ts";

/** A one-shot exit notification. */
export interface ExitOnce {
  /** Records the reason (only the first call counts). */
  finish(reason: ExitReason): void;
  /** Registers the listener; called at once if the worker already exited. */
  onExit(callback: (reason: ExitReason) => void): void;
  /** Whether the worker exited. */
  readonly done: boolean;
}

/**
 * @returns a fresh one-shot exit notification
 * @example
 * ```ts
 * const exit = exitOnce();
 * exit.onExit((r) => console.log(r.code));
 * exit.finish({ code: 0, error: undefined });
 * ```
 */
export function exitOnce(): ExitOnce {
  let done = false;
  let callback: ((r: ExitReason) => void) | undefined;
  let pending: ExitReason | undefined;
  return {
    finish(r) {
      if (done) return;
      done = true;
      if (callback) callback(r);
      else pending = r;
    },
    onExit(cb) {
      callback = cb;
      if (pending) cb(pending);
    },
    get done() {
      return done;
    },
  };
}
