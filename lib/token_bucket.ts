/**
 * One token bucket: `burst` events at once, `perSecond` sustained. Shared by the audit log's
 * per-plugin rate limit and the broker's log budget.
 * @module
 */

/** A bucket that refills continuously; a clock that steps back adds nothing (and takes nothing). */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #at: number;

  /**
   * @param perSecond tokens added per second
   * @param burst bucket size (it starts full)
   * @param now the current time in ms
   */
  constructor(perSecond: number, burst: number, now: number = Date.now()) {
    this.#rate = perSecond;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /**
   * Takes one token, if there is one.
   *
   * @param now the current time in ms
   * @returns whether a token was taken
   */
  take(now: number = Date.now()): boolean {
    const elapsed = Math.max(0, now - this.#at);
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#rate) / 1000);
    this.#at = Math.max(this.#at, now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /**
   * @param now the current time in ms
   * @returns whether the bucket would be full by then (an idle full bucket is the same as none)
   */
  fullAt(now: number): boolean {
    return this.#tokens + (Math.max(0, now - this.#at) * this.#rate) / 1000 >= this.#burst;
  }
}
