/**
 * Per-plugin call metrics and resource gauges.
 *
 * {@link PluginMetrics} counts calls and errors, keeps a fixed-bucket logarithmic latency
 * histogram (O(1) per call, fixed memory, ≤ 4.5 % relative error on quantiles), and holds the
 * last resource sample the host took. `renderPrometheus` in `prometheus.ts` turns its snapshots
 * into text exposition format 0.0.4 for a `/metrics` endpoint.
 *
 * @example
 * ```ts
 * import { PluginMetrics } from "./metrics.ts";
 * const m = new PluginMetrics("resizer");
 * m.recordCall(3.2);
 * m.recordCall(40, "error");
 * m.setGauges({ heapBytes: 12_000_000, threadCount: 1 });
 * m.snapshot().errors; // 1
 * ```
 * @module
 */

/** Buckets per power of two: bucket width is 2^(1/8) ≈ 9 %, so the midpoint is within 4.5 %. */
const SUB_BUCKETS = 8;
/** Smallest resolved latency: 2^-10 ms ≈ 1 µs (faster calls share the first bucket). */
const MIN_EXP = -10;
/** Largest resolved latency: 2^22 ms ≈ 70 min (slower calls share the last bucket). */
const MAX_EXP = 22;
const BUCKETS = (MAX_EXP - MIN_EXP) * SUB_BUCKETS;

/**
 * Latency histogram with logarithmic fixed buckets: O(1) record, 256 counters of memory.
 *
 * @example
 * ```ts
 * const h = new LatencyHistogram();
 * for (let i = 1; i <= 100; i++) h.record(i);
 * h.quantile(0.5); // ≈ 50
 * ```
 */
export class LatencyHistogram {
  #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;

  /** Observations recorded. */
  get count(): number {
    return this.#count;
  }

  /** Sum of all observations, ms. */
  get sum(): number {
    return this.#sum;
  }

  /**
   * Records one latency.
   *
   * @param ms duration in milliseconds, finite and ≥ 0
   * @throws {RangeError} when `ms` is negative or not finite
   */
  record(ms: number): void {
    if (!(ms >= 0 && ms < Infinity)) {
      throw new RangeError(`Cannot record latency: "${ms}" is not a finite duration ≥ 0`);
    }
    let i = ms > 0 ? Math.floor((Math.log2(ms) - MIN_EXP) * SUB_BUCKETS) : 0;
    if (i < 0) i = 0;
    else if (i >= BUCKETS) i = BUCKETS - 1;
    this.#counts[i]!++;
    this.#count++;
    this.#sum += ms;
    if (ms < this.#min) this.#min = ms;
    if (ms > this.#max) this.#max = ms;
  }

  /**
   * Estimated quantile: the geometric midpoint of the bucket holding the rank, clamped to the
   * observed minimum and maximum. The first and last ranks (q=0, q=1) are exact.
   *
   * @param q quantile in [0, 1]
   * @returns latency in ms, or 0 when nothing was recorded
   * @throws {RangeError} when q is outside [0, 1]
   */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) {
      throw new RangeError(`Cannot compute quantile: "${q}" is not in [0, 1]`);
    }
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    // The first and last ranks are known exactly.
    if (rank === 1) return this.#min;
    if (rank === this.#count) return this.#max;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) {
        const mid = 2 ** ((i + 0.5) / SUB_BUCKETS + MIN_EXP);
        return Math.min(this.#max, Math.max(this.#min, mid));
      }
    }
    return this.#max;
  }

  /** Forgets every observation. */
  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#sum = 0;
    this.#min = Infinity;
    this.#max = -Infinity;
  }
}

/** Resource gauges the host samples (from procfs, `performance`, or the worker). */
export interface ResourceSample {
  /** Heap (worker) or resident set (native child), bytes. */
  heapBytes?: number;
  /** Cumulative CPU time, ms. */
  cpuTimeMs?: number;
  /** Live threads. */
  threadCount?: number;
  /** Open file descriptors. */
  fdCount?: number;
  /** Open network connections. */
  connectionCount?: number;
}

/**
 * Point-in-time metrics of one plugin. Gauges are `null` until sampled, or when the runtime
 * cannot measure them (e.g. per-worker heap on Bun).
 */
export interface PluginMetricsSnapshot {
  /** Plugin name. */
  name: string;
  /** Last sampled heap, bytes. */
  heapBytes: number | null;
  /** Last sampled cumulative CPU time, ms. */
  cpuTimeMs: number | null;
  /** Last sampled thread count. */
  threadCount: number | null;
  /** Last sampled open fds. */
  fdCount: number | null;
  /** Last sampled open connections. */
  connectionCount: number | null;
  /** Calls completed (successful or not). */
  calls: number;
  /** Calls that failed. */
  errors: number;
  /** Median call latency, ms (0 before the first call). */
  p50Ms: number;
  /** 99th percentile call latency, ms (0 before the first call). */
  p99Ms: number;
  /** Sum of call latencies, ms (the Prometheus summary's `_sum`). */
  latencySumMs: number;
  /** Violations recorded for the plugin. */
  violationCount: number;
}

const GAUGE_KEYS = ["heapBytes", "cpuTimeMs", "threadCount", "fdCount", "connectionCount"] as const;

/**
 * Call counters, latency histogram and resource gauges of one plugin.
 *
 * @example
 * ```ts
 * const m = new PluginMetrics("p");
 * const t0 = performance.now();
 * // ... call ...
 * m.recordCall(performance.now() - t0);
 * m.snapshot().calls; // 1
 * ```
 */
export class PluginMetrics {
  /** Plugin name. */
  readonly name: string;
  #latency = new LatencyHistogram();
  #errors = 0;
  #violations = 0;
  #gauges: Record<(typeof GAUGE_KEYS)[number], number | null> = {
    heapBytes: null,
    cpuTimeMs: null,
    threadCount: null,
    fdCount: null,
    connectionCount: null,
  };

  /**
   * Creates zeroed metrics for one plugin.
   *
   * @param name plugin name
   * @throws {TypeError} when the name is empty
   */
  constructor(name: string) {
    if (typeof name !== "string" || name === "") {
      throw new TypeError("Cannot create metrics: plugin name is empty");
    }
    this.name = name;
  }

  /**
   * Records one finished call.
   *
   * @param durationMs wall time of the call, ms
   * @param outcome `"error"` counts it as failed too
   * @throws {RangeError} when the duration is negative or not finite
   */
  recordCall(durationMs: number, outcome: "ok" | "error" = "ok"): void {
    this.#latency.record(durationMs);
    if (outcome === "error") this.#errors++;
  }

  /**
   * Stores sampled gauges; fields left out keep their previous value.
   *
   * @param sample new values
   * @throws {RangeError} when a value is negative or not finite
   */
  setGauges(sample: ResourceSample): void {
    for (const key of GAUGE_KEYS) {
      const v = sample[key];
      if (v === undefined) continue;
      if (!(v >= 0 && v < Infinity)) {
        throw new RangeError(`Cannot set gauge: ${key} "${v}" is not a finite number ≥ 0`);
      }
      this.#gauges[key] = v;
    }
  }

  /**
   * Sets the violation count (the host mirrors its ViolationTracker's total here).
   *
   * @param count violations so far
   */
  setViolationCount(count: number): void {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new RangeError(`Cannot set violation count: "${count}" is not an integer ≥ 0`);
    }
    this.#violations = count;
  }

  /**
   * Current values.
   *
   * @returns a plain, structured-clone-safe object
   */
  snapshot(): PluginMetricsSnapshot {
    return {
      name: this.name,
      ...this.#gauges,
      calls: this.#latency.count,
      errors: this.#errors,
      p50Ms: this.#latency.quantile(0.5),
      p99Ms: this.#latency.quantile(0.99),
      latencySumMs: this.#latency.sum,
      violationCount: this.#violations,
    };
  }
}
