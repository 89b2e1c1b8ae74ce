/**
 * Deadlines of an engine's pending requests without a timer per request. Requests with the same
 * timeout expire in the order they were sent, so one timer per distinct timeout serves them all
 * (measured: a setTimeout/clearTimeout per call was most of the overhead over raw postMessage at
 * 1,000 concurrent calls on Bun). Private to lib/tiers.
 * @module
 */

/** setTimeout stores delays as a signed 32-bit int; longer ones fire at once. */
export const MAX_TIMER = 2 ** 31 - 1;

interface Queue {
  ids: number[];
  head: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** One FIFO of request ids per distinct timeout, each with at most one armed timer. */
export class DeadlineQueues {
  #queues = new Map<number, Queue>();
  #deadlineOf: (id: number) => number | undefined;
  #expired: (id: number, timeoutMs: number) => boolean;

  /**
   * @param deadlineOf the pending request's deadline (`Date.now()` based), undefined once answered
   * @param expired called for each request past its deadline; returning true stops the pass (the
   * engine failed and cleared everything)
   */
  constructor(
    deadlineOf: (id: number) => number | undefined,
    expired: (id: number, timeoutMs: number) => boolean,
  ) {
    this.#deadlineOf = deadlineOf;
    this.#expired = expired;
  }

  /** Timers now armed (one per distinct timeout with requests pending). */
  get armed(): number {
    let armed = 0;
    for (const q of this.#queues.values()) if (q.timer !== undefined) armed++;
    return armed;
  }

  /**
   * Adds a request sent now with this timeout.
   *
   * @param timeoutMs its timeout (at most {@link MAX_TIMER})
   * @param id its request id
   */
  add(timeoutMs: number, id: number): void {
    let q = this.#queues.get(timeoutMs);
    if (q === undefined) {
      q = { ids: [], head: 0, timer: undefined };
      this.#queues.set(timeoutMs, q);
    }
    q.ids.push(id);
    q.timer ??= setTimeout(() => this.#fire(timeoutMs), timeoutMs);
  }

  /** Disarms every timer and forgets every request. */
  clear(): void {
    for (const q of this.#queues.values()) clearTimeout(q.timer);
    this.#queues.clear();
  }

  #fire(timeoutMs: number): void {
    const q = this.#queues.get(timeoutMs);
    if (q === undefined) return;
    q.timer = undefined;
    const now = Date.now();
    while (q.head < q.ids.length) {
      const id = q.ids[q.head] as number;
      const deadline = this.#deadlineOf(id);
      if (deadline === undefined) {
        q.head++;
        continue;
      }
      if (deadline > now) {
        q.timer = setTimeout(() => this.#fire(timeoutMs), deadline - now);
        break;
      }
      q.head++;
      if (this.#expired(id, timeoutMs)) return;
    }
    if (q.head >= q.ids.length) {
      q.ids = [];
      q.head = 0;
    } else if (q.head > 4096) {
      q.ids = q.ids.slice(q.head);
      q.head = 0;
    }
  }
}
