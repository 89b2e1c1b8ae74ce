/**
 * A tiny typed event emitter, and the events the plugin host emits.
 *
 * One listener that throws (or returns a promise that rejects) never stops the others: its error
 * goes to `onListenerError`. Listeners added or removed while an event is being emitted take
 * effect from the next emit.
 *
 * @example
 * ```ts
 * import { Emitter, type HostEvents } from "./events.ts";
 * const events = new Emitter<HostEvents>();
 * const off = events.on("after_load", (e) => console.log(e.plugin, e.durationMs));
 * events.emit("after_load", { plugin: "resizer", durationMs: 12 });
 * off();
 * ```
 * @module
 */

import type { StateChange } from "./lifecycle.ts";

/** A listener for one event; it receives the event's payload. */
export type Listener<T> = (payload: T) => void | Promise<void>;

/** Options for {@link Emitter}. */
export interface EmitterOptions {
  /**
   * Receives what a listener threw, or the reason its returned promise rejected. Without it,
   * {@link Emitter.emit} throws the synchronous errors after calling every listener (one error
   * as is, several as an `AggregateError`), and a rejected listener promise stays unhandled.
   * If this callback itself throws, `emit` throws and later listeners are not called.
   */
  onListenerError?: (error: unknown, event: string) => void;
}

/** Names of the events the plugin host emits, in the order a load and an unload emit them. */
export const HOST_EVENTS = [
  "before_load",
  "after_load",
  "before_unload",
  "after_unload",
  "state_change",
  "error",
  "reload",
  "violation",
  "unenforced",
] as const;

/** Name of a host event; see {@link HOST_EVENTS}. */
export type HostEventName = (typeof HOST_EVENTS)[number];

/** Payloads of the host events, by name. */
export interface HostEvents {
  /** A plugin is about to be loaded. */
  before_load: { plugin: string };
  /** A plugin finished loading and is active. */
  after_load: { plugin: string; durationMs: number };
  /** A plugin is about to be unloaded. */
  before_unload: { plugin: string; reason: string };
  /** A plugin was unloaded. */
  after_unload: { plugin: string; reason: string };
  /** A plugin's lifecycle state changed. */
  state_change: StateChange;
  /** Something failed; `plugin` is undefined for host-level errors. */
  error: { plugin: string | undefined; error: unknown };
  /** A plugin was reloaded: the new version serves from now on (`from` and `to` are versions). */
  reload: { plugin: string; reason: string; from: string; to: string };
  /** A plugin tried something its manifest does not grant, or exceeded a limit. */
  violation: { plugin: string; kind: string; detail: string };
  /** A plugin was started although its tier does not enforce `areas` its manifest restricts. */
  unenforced: { plugin: string; runtime: string; tier: string; areas: string[] };
}

/**
 * A typed event emitter: `Events` maps each event name to its payload type.
 *
 * @example
 * ```ts
 * const e = new Emitter<{ tick: number }>({ onListenerError: (err) => console.error(err) });
 * e.once("tick", (n) => console.log(n));
 * e.emit("tick", 1); // 1
 * e.emit("tick", 2); // nothing: once
 * ```
 */
export class Emitter<Events extends object> {
  // Copy-on-write arrays: emit iterates the array it found without copying it.
  #listeners = new Map<keyof Events, ReadonlyArray<Listener<never>>>();
  readonly #onListenerError: ((error: unknown, event: string) => void) | undefined;

  /**
   * Creates an emitter with no listeners.
   *
   * @param options `onListenerError` receives errors (and rejections) thrown by listeners
   */
  constructor(options: EmitterOptions = {}) {
    this.#onListenerError = options.onListenerError;
  }

  /**
   * Adds a listener.
   *
   * @param event event name
   * @param listener called with each payload
   * @returns a function that removes this listener (idempotent)
   * @throws {TypeError} when `listener` is not a function
   * @example
   * ```ts
   * const off = new Emitter<{ a: string }>().on("a", (s) => console.log(s));
   * off();
   * ```
   */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    if (typeof listener !== "function") {
      throw new TypeError(`Cannot listen to "${String(event)}": listener must be a function`);
    }
    // Wrap so that the same function added twice is removed once per unsubscribe.
    const entry: Listener<Events[K]> = (payload) => listener(payload);
    const list = this.#listeners.get(event) ?? [];
    this.#listeners.set(event, [...list, entry as Listener<never>]);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const current = this.#listeners.get(event);
      if (current === undefined) return;
      const next = current.filter((l) => l !== entry);
      if (next.length === 0) this.#listeners.delete(event);
      else this.#listeners.set(event, next);
    };
  }

  /**
   * Adds a listener that is removed before its first call.
   *
   * @param event event name
   * @param listener called with the next payload only
   * @returns a function that removes the listener if it has not run yet
   * @throws {TypeError} when `listener` is not a function
   * @example
   * ```ts
   * new Emitter<{ ready: undefined }>().once("ready", () => console.log("ready"));
   * ```
   */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    if (typeof listener !== "function") {
      throw new TypeError(`Cannot listen to "${String(event)}": listener must be a function`);
    }
    const off = this.on(event, (payload) => {
      off();
      return listener(payload);
    });
    return off;
  }

  /**
   * Calls every listener of `event` with `payload`, in the order they were added.
   *
   * @param event event name
   * @param payload the event's data
   * @returns how many listeners were called
   * @throws {Error} without `onListenerError` only: what a listener threw (several errors as an
   *   `AggregateError`), after every listener was called
   * @example
   * ```ts
   * new Emitter<{ n: number }>().emit("n", 1); // 0
   * ```
   */
  emit<K extends keyof Events>(event: K, payload: Events[K]): number {
    const list = this.#listeners.get(event) as ReadonlyArray<Listener<Events[K]>> | undefined;
    if (list === undefined) return 0;
    let errors: unknown[] | undefined;
    for (let i = 0; i < list.length; i++) {
      try {
        const result = (list[i] as Listener<Events[K]>)(payload);
        if (result !== undefined && typeof (result as Promise<void>).then === "function") {
          const report = this.#onListenerError;
          // Without a reporter the rejection stays unhandled on purpose: never swallow it.
          if (report !== undefined) {
            (result as Promise<void>).then(undefined, (e) => report(e, String(event)));
          }
        }
      } catch (error) {
        if (this.#onListenerError !== undefined) this.#onListenerError(error, String(event));
        else (errors ??= []).push(error);
      }
    }
    if (errors !== undefined) {
      if (errors.length === 1) throw errors[0];
      throw new AggregateError(
        errors,
        `Cannot emit "${String(event)}": ${errors.length} listeners threw`,
      );
    }
    return list.length;
  }

  /**
   * How many listeners `event` has.
   *
   * @param event event name
   * @returns the listener count
   * @example
   * ```ts
   * new Emitter<{ a: 1 }>().listenerCount("a"); // 0
   * ```
   */
  listenerCount<K extends keyof Events>(event: K): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /**
   * Removes every listener of `event`, or of all events.
   *
   * @param event event name; omit to clear everything
   * @example
   * ```ts
   * new Emitter<{ a: 1 }>().clear();
   * ```
   */
  clear(event?: keyof Events): void {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
  }
}
