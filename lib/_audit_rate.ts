/**
 * Token buckets that bound how many audit entries one plugin writes per event kind, and count
 * what they refuse. Private to lib/audit.ts.
 * @module
 */

import { truncate } from "./_audit_redact.ts";
import { TokenBucket } from "./token_bucket.ts";

/** What was refused for one plugin and event since the last summary. */
export interface Suppressed {
  /** Plugin concerned. */
  plugin: string;
  /** Event name. */
  event: string;
  /** Entries refused. */
  count: number;
  /** Time of the first refused entry, ISO 8601. */
  since: string;
}

interface Bucket {
  tokens: TokenBucket;
  suppressed: number;
  since: string;
}

// Past this many buckets, idle full ones are forgotten (a full bucket is the same as none).
const PRUNE_AT = 4096;

/** One token bucket per plugin and event: `burst` entries at once, `perSecond` sustained. */
export class RateLimiter {
  #perSecond: number;
  #burst: number;
  #buckets = new Map<string, Bucket>();
  #pending = 0;

  /**
   * @param perSecond tokens added per second
   * @param burst bucket size
   */
  constructor(perSecond: number, burst: number) {
    this.#perSecond = perSecond;
    this.#burst = burst;
  }

  /** Whether some refused entries wait for their summary. */
  get hasPending(): boolean {
    return this.#pending > 0;
  }

  /**
   * Takes one token for `plugin` and `event`, or counts the entry as suppressed.
   *
   * @param plugin plugin concerned
   * @param event event name
   * @param now the entry's time
   * @returns true when the entry may be written
   */
  take(plugin: string, event: string, now: Date): boolean {
    const key = `${event}\u0000${plugin}`;
    const ms = now.getTime();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= PRUNE_AT) this.#prune(ms);
      b = { tokens: new TokenBucket(this.#perSecond, this.#burst, ms), suppressed: 0, since: "" };
      this.#buckets.set(key, b);
    }
    if (b.tokens.take(ms)) return true;
    if (b.suppressed++ === 0) {
      b.since = now.toISOString();
      this.#pending++;
    }
    return false;
  }

  /**
   * Returns every pending suppression count and resets them.
   *
   * @returns one summary per plugin and event with refused entries
   */
  drain(): Suppressed[] {
    const out: Suppressed[] = [];
    if (this.#pending === 0) return out;
    for (const [key, b] of this.#buckets) {
      if (b.suppressed === 0) continue;
      const cut = key.indexOf("\u0000");
      const plugin = key.slice(cut + 1);
      out.push({ plugin, event: key.slice(0, cut), count: b.suppressed, since: b.since });
      b.suppressed = 0;
    }
    this.#pending = 0;
    return out;
  }

  #prune(ms: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.suppressed === 0 && b.tokens.fullAt(ms)) this.#buckets.delete(key);
    }
  }
}

/**
 * The `audit_suppressed` line of one summary.
 *
 * @param s what was refused
 * @param ts time of the summary, ISO 8601
 * @returns the JSON line
 */
export function summaryLine(s: Suppressed, ts: string): string {
  return JSON.stringify({
    ts,
    event: "audit_suppressed",
    plugin: truncate(s.plugin, 128), // counted before any bound applied
    kind: s.event,
    suppressed: s.count,
    since: s.since,
  });
}
