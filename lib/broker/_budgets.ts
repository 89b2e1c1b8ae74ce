/**
 * What one plugin may make the host keep through its context: the size of one value it writes,
 * the total of its values in the shared store, and the length and rate of its log lines. Each is
 * checked before the host keeps the data. Private to lib/broker.
 * @module
 */

import { serialize } from "node:v8";
import { TokenBucket } from "../token_bucket.ts";

/** Host options bounding what a plugin sends the host through `ctx` (see HostOptions.budgets). */
export interface PluginBudgets {
  /** Largest value one `ctx.set` may store, serialized bytes (default 1 MiB). */
  contextValueBytes?: number;
  /** Largest total of the values one plugin has stored, serialized bytes (default 16 MiB). */
  contextBytes?: number;
  /** Longest log line kept, in characters (default 8,192; longer lines are cut). */
  logLineChars?: number;
  /** Log lines per second per plugin (default 100, bursts of twice that); the rest are counted. */
  logLinesPerSecond?: number;
}

/** Serialized size of a value the host is about to keep; Infinity when it cannot be measured. */
export function sizeOf(value: unknown): number {
  try {
    return serialize(value).byteLength;
  } catch {
    return Infinity;
  }
}

/** Bytes each key written by one plugin holds, and their sum. */
export class ContextFootprint {
  #bytes = new Map<string, number>();
  #total = 0;

  /** The plugin's total. */
  get total(): number {
    return this.#total;
  }

  /**
   * @param key the key about to be written
   * @param bytes its new size
   * @returns the plugin's total after the write
   */
  after(key: string, bytes: number): number {
    return this.#total - (this.#bytes.get(key) ?? 0) + bytes;
  }

  /** Records the write. */
  set(key: string, bytes: number): void {
    this.#total = this.after(key, bytes);
    this.#bytes.set(key, bytes);
  }
}

/**
 * A token bucket of log lines: `allow()` says whether a line may be written now; lines refused
 * are counted, and the next allowed call reports how many were dropped since.
 */
export class LogBudget {
  #bucket: TokenBucket;
  #dropped = 0;

  /** @param perSecond lines per second; bursts of twice that */
  constructor(perSecond: number) {
    this.#bucket = new TokenBucket(perSecond, perSecond * 2);
  }

  /** @returns -1 when the line must be dropped, else how many were dropped before it */
  allow(): number {
    if (!this.#bucket.take()) {
      this.#dropped++;
      return -1;
    }
    const dropped = this.#dropped;
    this.#dropped = 0;
    return dropped;
  }
}
