/**
 * The lifecycle state machine of one plugin.
 *
 * A {@link Lifecycle} holds a plugin's current {@link PluginState}, refuses illegal moves with
 * `PluginError` `ERR_STATE`, and keeps a bounded history of the moves it made. It knows nothing
 * about workers: the host decides when to move, this module decides whether the move is legal.
 *
 * Transition table ({@link TRANSITIONS}); a state never moves to itself:
 *
 * | from        | to                                   | when                                         |
 * | ----------- | ------------------------------------ | -------------------------------------------- |
 * | `available` | `loading`, `untrusted`               | discovered; load starts, or trust check fails |
 * | `loading`   | `active`, `failed`, `untrusted`      | init done, init threw, or signature refused  |
 * | `active`    | `inactive`, `unloading`, `failed`    | paused, unload starts, or crashed            |
 * | `inactive`  | `active`, `unloading`, `failed`      | resumed, unload starts, or crashed           |
 * | `failed`    | `loading`, `unloading`, `unloaded`   | retried, resources to release, or nothing to |
 * | `unloading` | `unloaded`, `failed`                 | shut down, or shutdown hook threw / timed out |
 * | `unloaded`  | `loading`                            | reloaded                                     |
 * | `untrusted` | `loading`, `unloaded`                | trust list changed, or forgotten             |
 *
 * Why these and no others: `loading` is the only way into `active`, so every path to running code
 * passes the load checks (manifest, trust, engine, dependencies). `untrusted` is reachable only
 * from the states in which trust is checked (`available`, `loading`). A reload is
 * `active -> unloading -> unloaded -> loading -> active`, so unload hooks always run. `failed`
 * can go straight to `unloaded` because a plugin that failed during load holds no resources.
 *
 * @example
 * ```ts
 * import { Lifecycle } from "./lifecycle.ts";
 * const life = new Lifecycle("resizer");
 * life.transition("loading", "load requested");
 * life.transition("active", "init() resolved");
 * life.canTransition("loading"); // false
 * life.history.length; // 2
 * ```
 * @module
 */

import { PluginError } from "./errors.ts";

/** Every state a plugin can be in, in the order of a normal life. */
export const PLUGIN_STATES = [
  "available",
  "loading",
  "active",
  "inactive",
  "failed",
  "untrusted",
  "unloading",
  "unloaded",
] as const;

/** A plugin lifecycle state; see {@link PLUGIN_STATES} and {@link TRANSITIONS}. */
export type PluginState = (typeof PLUGIN_STATES)[number];

/** The legal next states of each state. A state is never its own successor. */
export const TRANSITIONS: Readonly<Record<PluginState, readonly PluginState[]>> = Object.freeze({
  available: Object.freeze(["loading", "untrusted"] as const),
  loading: Object.freeze(["active", "failed", "untrusted"] as const),
  active: Object.freeze(["inactive", "unloading", "failed"] as const),
  inactive: Object.freeze(["active", "unloading", "failed"] as const),
  failed: Object.freeze(["loading", "unloading", "unloaded"] as const),
  unloading: Object.freeze(["unloaded", "failed"] as const),
  unloaded: Object.freeze(["loading"] as const),
  untrusted: Object.freeze(["loading", "unloaded"] as const),
});

/** One recorded move of a plugin's lifecycle. */
export interface Transition {
  /** State before the move. */
  readonly from: PluginState;
  /** State after the move. */
  readonly to: PluginState;
  /** When it happened, epoch milliseconds. */
  readonly at: number;
  /** Why it happened, in words (e.g. `"init() threw"`). */
  readonly reason: string;
}

/** A {@link Transition} with the plugin it concerns: the payload of `state_change`. */
export interface StateChange extends Transition {
  /** Plugin name. */
  readonly plugin: string;
}

/** Options for {@link Lifecycle}. */
export interface LifecycleOptions {
  /** Starting state. Default `"available"`. */
  initial?: PluginState;
  /** How many transitions to keep; oldest are dropped first. Default 50; 0 keeps none. */
  historyLimit?: number;
  /**
   * Called synchronously after every successful transition. If it throws, the error propagates
   * to the caller of {@link Lifecycle.transition}, and the transition stands.
   */
  onStateChange?: (change: StateChange) => void;
  /** Clock, epoch milliseconds. Default `Date.now`. */
  now?: () => number;
}

/**
 * Whether a value is one of the {@link PLUGIN_STATES}.
 *
 * @param value candidate
 * @returns true for a plugin state name
 * @example
 * ```ts
 * isPluginState("active"); // true
 * isPluginState("running"); // false
 * ```
 */
export function isPluginState(value: unknown): value is PluginState {
  return typeof value === "string" && Object.hasOwn(TRANSITIONS, value);
}

/**
 * Whether `from -> to` is a legal move in {@link TRANSITIONS}.
 *
 * @param from current state
 * @param to requested state
 * @returns true when the move is allowed
 * @throws {TypeError} when either argument is not a plugin state
 * @example
 * ```ts
 * isLegalTransition("active", "inactive"); // true
 * isLegalTransition("unloaded", "active"); // false
 * ```
 */
export function isLegalTransition(from: PluginState, to: PluginState): boolean {
  assertState(from, "from");
  assertState(to, "to");
  return TRANSITIONS[from].includes(to);
}

/**
 * The lifecycle of one plugin: its current state, legal moves and recent history.
 *
 * @example
 * ```ts
 * const changes: string[] = [];
 * const life = new Lifecycle("auth", { onStateChange: (c) => changes.push(`${c.from}>${c.to}`) });
 * life.transition("loading", "load requested");
 * changes; // ["available>loading"]
 * ```
 */
export class Lifecycle {
  /** Plugin name this lifecycle belongs to. */
  readonly plugin: string;
  #state: PluginState;
  #since: number;
  #history: Transition[] = [];
  readonly #limit: number;
  readonly #listener: ((change: StateChange) => void) | undefined;
  readonly #now: () => number;

  /**
   * Creates a lifecycle in `options.initial` (default `"available"`), keeping at most
   * `options.historyLimit` transitions (default 50).
   *
   * @param plugin plugin name, used in error messages and `state_change` payloads
   * @param options initial state, history limit, listener, clock
   * @throws {TypeError} when `plugin` is empty or `initial` is not a state
   * @throws {RangeError} when `historyLimit` is not a non-negative integer
   */
  constructor(plugin: string, options: LifecycleOptions = {}) {
    if (typeof plugin !== "string" || plugin === "") {
      throw new TypeError("Cannot create lifecycle: plugin name must be a non-empty string");
    }
    const initial = options.initial ?? "available";
    assertState(initial, "initial");
    const limit = options.historyLimit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(
        `Cannot create lifecycle: historyLimit must be a non-negative integer, got ${limit}`,
      );
    }
    this.plugin = plugin;
    this.#state = initial;
    this.#limit = limit;
    this.#listener = options.onStateChange;
    this.#now = options.now ?? Date.now;
    this.#since = this.#now();
  }

  /** Current state. */
  get state(): PluginState {
    return this.#state;
  }

  /** When the current state was entered (or the lifecycle created), epoch milliseconds. */
  get since(): number {
    return this.#since;
  }

  /** Recorded transitions, oldest first, at most `historyLimit` of them (a copy). */
  get history(): Transition[] {
    return this.#history.slice();
  }

  /**
   * Whether the current state may move to `to`.
   *
   * @param to requested state
   * @returns true when {@link Lifecycle.transition} would succeed
   * @throws {TypeError} when `to` is not a plugin state
   * @example
   * ```ts
   * new Lifecycle("x").canTransition("loading"); // true
   * ```
   */
  canTransition(to: PluginState): boolean {
    assertState(to, "to");
    return TRANSITIONS[this.#state].includes(to);
  }

  /**
   * Moves to `to`, records the move and notifies the listener.
   *
   * @param to requested state
   * @param reason why, in words; kept in the history
   * @returns the recorded change
   * @throws {PluginError} ERR_STATE when the move is not in {@link TRANSITIONS}; the state is
   *   unchanged and nothing is recorded
   * @throws {TypeError} when `to` is not a plugin state or `reason` is not a string
   * @example
   * ```ts
   * const life = new Lifecycle("x");
   * life.transition("loading", "load requested").from; // "available"
   * ```
   */
  transition(to: PluginState, reason: string): StateChange {
    assertState(to, "to");
    if (typeof reason !== "string") {
      throw new TypeError("Cannot change plugin state: reason must be a string");
    }
    const from = this.#state;
    const next = TRANSITIONS[from];
    if (!next.includes(to)) {
      const allowed = next.map((s) => `"${s}"`).join(", ");
      throw new PluginError(
        "ERR_STATE",
        `Cannot move plugin "${this.plugin}" from "${from}" to "${to}": allowed next states are ${allowed}`,
        {
          plugin: this.plugin,
          hint: `Wait until the plugin is in a state that can move to "${to}" (see TRANSITIONS)`,
        },
      );
    }
    const at = this.#now();
    this.#state = to;
    this.#since = at;
    if (this.#limit > 0) {
      if (this.#history.length >= this.#limit) this.#history.shift();
      this.#history.push(Object.freeze({ from, to, at, reason }));
    }
    const change: StateChange = Object.freeze({ plugin: this.plugin, from, to, at, reason });
    this.#listener?.(change);
    return change;
  }
}

function assertState(value: unknown, name: string): asserts value is PluginState {
  if (!isPluginState(value)) {
    throw new TypeError(`Cannot use ${name} state ${JSON.stringify(value)}: not a plugin state`);
  }
}
