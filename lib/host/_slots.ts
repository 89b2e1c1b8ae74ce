/**
 * A counting semaphore in arrival order: how many plugins start at once. Private helper of the
 * host.
 * @module
 */

/** At most `size` holders; the rest wait in order. */
export class Slots {
  #free: number;
  #waiting: (() => void)[] = [];

  /** @param size how many may hold a slot at once */
  constructor(size: number) {
    this.#free = Math.max(1, Math.floor(size));
  }

  /**
   * Waits for a free slot.
   *
   * @returns a function that frees it (calling it again does nothing)
   */
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    };
  }
}
