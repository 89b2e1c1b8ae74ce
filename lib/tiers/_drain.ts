/**
 * Waiting for an instance's pending calls to finish (hot reload and unload drain the old
 * instance). Private to lib/tiers.
 * @module
 */

/** Callers waiting for a pending count to reach zero. */
export class DrainWaiters {
  #waiters: (() => void)[] = [];

  /**
   * Resolves true once `pending()` is zero (see {@link DrainWaiters.release}), or with whether it
   * is zero after `timeoutMs`.
   *
   * @param pending current number of pending calls
   * @param timeoutMs how long to wait at most
   * @returns whether every call finished
   */
  wait(pending: () => number, timeoutMs: number): Promise<boolean> {
    if (pending() === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(pending() === 0), timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Wakes every waiter: call it when the pending count reached zero or all calls were settled. */
  release(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}
