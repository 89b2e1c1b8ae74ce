/**
 * Per-plugin record of resource-limit violations, and when they add up to an unmount.
 *
 * The host records each violation it observes (heap over limit, CPU deadline, thread or fd count,
 * a crash, ...). {@link ViolationTracker.record} answers `true` exactly once each time the count
 * reaches the threshold, so the host can unmount the plugin without double-firing. Storage is
 * bounded: the last `keep` violations are kept, all are counted.
 *
 * @example
 * ```ts
 * import { ViolationTracker } from "./violations.ts";
 * const tracker = new ViolationTracker("resizer", { threshold: 3 });
 * tracker.record({ type: "cpu", used: 1500, limit: 1000 }); // false
 * tracker.record({ type: "cpu", used: 1200, limit: 1000 }); // false
 * tracker.record({ type: "heap", used: 80, limit: 50 }); // true: unmount if autoUnmount
 * ```
 * @module
 */

/**
 * What was violated. `timeout` is a missed call deadline; `crash` a dead worker or process;
 * `protocol` a malformed message from the plugin.
 */
export type ViolationType =
  | "heap"
  | "cpu"
  | "threads"
  | "fds"
  | "connections"
  | "context"
  | "timeout"
  | "crash"
  | "protocol";

/** Every {@link ViolationType}. */
export const VIOLATION_TYPES: readonly ViolationType[] = Object.freeze([
  "heap",
  "cpu",
  "threads",
  "fds",
  "connections",
  "context",
  "timeout",
  "crash",
  "protocol",
]);

/** One observed violation. */
export interface Violation {
  /** What was violated. */
  type: ViolationType;
  /** Amount observed, in the unit of the limit (MiB, ms, count); 0 when not applicable (crash). */
  used: number;
  /** The limit that applied, same unit; 0 when not applicable. */
  limit: number;
  /** When it was observed, epoch milliseconds. */
  at: number;
}

/** A violation to record; `at` defaults to now. */
export interface ViolationInput {
  /** What was violated. */
  type: ViolationType;
  /** Amount observed. */
  used: number;
  /** The limit that applied. */
  limit: number;
  /** When it was observed, epoch milliseconds; defaults to `Date.now()`. */
  at?: number;
}

/** What the host does when violations add up. */
export interface UnmountBehavior {
  /** Unmount the plugin when the threshold is reached. Default true. */
  autoUnmount: boolean;
  /** Log each violation through the host's logger. Default true. */
  logViolations: boolean;
  /** Violations (since the last reset) that trigger an unmount. Default 10. */
  threshold: number;
}

/** Defaults for {@link UnmountBehavior}. */
export const DEFAULT_UNMOUNT_BEHAVIOR: Readonly<UnmountBehavior> = Object.freeze({
  autoUnmount: true,
  logViolations: true,
  threshold: 10,
});

/** Minimal logger a tracker reports through when `logViolations` is on. */
export interface ViolationLogger {
  /** Called once per recorded violation. */
  warn(message: string, details: Record<string, unknown>): void;
}

/** Options for {@link ViolationTracker}. */
export interface ViolationTrackerOptions extends Partial<UnmountBehavior> {
  /** How many of the most recent violations {@link ViolationTracker.list} keeps. Default 100. */
  keep?: number;
  /** Receives one `warn` per violation when `logViolations` is true. */
  logger?: ViolationLogger;
}

function assertCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Cannot create tracker: ${name} "${value}" is not a positive integer`);
  }
}

/**
 * Counts the violations of one plugin and says when they reach the unmount threshold.
 *
 * @example
 * ```ts
 * const t = new ViolationTracker("p", { threshold: 1 });
 * t.record({ type: "crash", used: 0, limit: 0 }); // true
 * t.record({ type: "crash", used: 0, limit: 0 }); // false: already crossed
 * t.reset();
 * ```
 */
export class ViolationTracker {
  /** Plugin the violations belong to. */
  readonly plugin: string;
  /** Effective behavior (defaults filled in). */
  readonly behavior: Readonly<UnmountBehavior>;
  /** Capacity of the kept list. */
  readonly keep: number;
  #ring: Violation[] = [];
  #next = 0;
  #count = 0;
  #total = 0;
  #byType: Record<ViolationType, number> = ViolationTracker.#zeroByType();
  #logger: ViolationLogger | undefined;

  /**
   * Creates an empty tracker for one plugin.
   *
   * @param plugin plugin name
   * @param options behavior, list capacity, logger
   * @throws {RangeError} when `threshold` or `keep` is not a positive integer
   */
  constructor(plugin: string, options: ViolationTrackerOptions = {}) {
    if (typeof plugin !== "string" || plugin === "") {
      throw new TypeError("Cannot create tracker: plugin name is empty");
    }
    const behavior = {
      autoUnmount: options.autoUnmount ?? DEFAULT_UNMOUNT_BEHAVIOR.autoUnmount,
      logViolations: options.logViolations ?? DEFAULT_UNMOUNT_BEHAVIOR.logViolations,
      threshold: options.threshold ?? DEFAULT_UNMOUNT_BEHAVIOR.threshold,
    };
    assertCount("threshold", behavior.threshold);
    const keep = options.keep ?? 100;
    assertCount("keep", keep);
    this.plugin = plugin;
    this.behavior = Object.freeze(behavior);
    this.keep = keep;
    this.#logger = options.logger;
  }

  static #zeroByType(): Record<ViolationType, number> {
    return {
      heap: 0,
      cpu: 0,
      threads: 0,
      fds: 0,
      connections: 0,
      context: 0,
      timeout: 0,
      crash: 0,
      protocol: 0,
    };
  }

  /** Violations since the last {@link reset}. */
  get count(): number {
    return this.#count;
  }

  /** Violations since the tracker was created (not cleared by {@link reset}). */
  get total(): number {
    return this.#total;
  }

  /** Whether the count is at or past the threshold and `autoUnmount` is on. */
  get shouldUnmount(): boolean {
    return this.behavior.autoUnmount && this.#count >= this.behavior.threshold;
  }

  /**
   * Records one violation.
   *
   * @param violation what was violated; `at` defaults to now
   * @returns true exactly when this violation makes the count reach the threshold (once per
   *   crossing; again only after {@link reset}). Independent of `autoUnmount`: the caller decides.
   * @throws {TypeError} when the type is unknown or `used`/`limit`/`at` are not finite numbers
   * @example
   * ```ts
   * if (tracker.record({ type: "fds", used: 40, limit: 32 }) && tracker.behavior.autoUnmount) {
   *   // unmount
   * }
   * ```
   */
  record(violation: ViolationInput): boolean {
    const { type, used, limit } = violation ?? {};
    if (!(VIOLATION_TYPES as readonly string[]).includes(type)) {
      throw new TypeError(`Cannot record violation: type "${String(type)}" is unknown`);
    }
    const at = violation.at ?? Date.now();
    for (const [name, value] of [["used", used], ["limit", limit], ["at", at]] as const) {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new TypeError(`Cannot record violation: "${name}" is not a finite number`);
      }
    }
    const entry: Violation = { type, used, limit, at };
    if (this.#ring.length < this.keep) this.#ring.push(entry);
    else this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.keep;
    this.#count++;
    this.#total++;
    this.#byType[type]++;
    if (this.behavior.logViolations && this.#logger !== undefined) {
      this.#logger.warn(
        `Plugin "${this.plugin}" violated its ${type} limit (${used} > ${limit})`,
        { plugin: this.plugin, ...entry, count: this.#count },
      );
    }
    return this.#count === this.behavior.threshold;
  }

  /** Clears count, per-type counts and kept list (not {@link total}); the threshold rearms. */
  reset(): void {
    this.#ring = [];
    this.#next = 0;
    this.#count = 0;
    this.#byType = ViolationTracker.#zeroByType();
  }

  /**
   * The kept violations, oldest first (at most `keep`).
   *
   * @returns copies; mutating them does not affect the tracker
   */
  list(): Violation[] {
    const ring = this.#ring;
    const ordered = ring.length < this.keep
      ? ring
      : [...ring.slice(this.#next), ...ring.slice(0, this.#next)];
    return ordered.map((v) => ({ ...v }));
  }

  /**
   * Violations since the last reset, per type.
   *
   * @returns a fresh object with every type present
   */
  countsByType(): Record<ViolationType, number> {
    return { ...this.#byType };
  }
}
