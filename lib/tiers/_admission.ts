/**
 * Admission of calls to one plugin: at most `maxInFlight` sent at once, at most `maxQueued`
 * waiting host-side in order, so that a burst does not start every call's deadline while it
 * waits in the plugin's own queue. Private to lib/tiers.
 * @module
 */

const NONE: readonly never[] = Object.freeze([]);

/** The in-flight count and the FIFO of calls waiting for a slot. */
export class Admission<W> {
  #max: number;
  #maxQueued: number;
  #inFlight = 0;
  #waiting: (W | undefined)[] = [];
  #head = 0;

  /**
   * @param maxInFlight calls sent to the plugin at once
   * @param maxQueued calls that may wait for a slot
   */
  constructor(maxInFlight: number, maxQueued: number) {
    this.#max = maxInFlight;
    this.#maxQueued = maxQueued;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.#waiting.length - this.#head;
  }

  /** Whether a new call must wait (every slot is taken). */
  get full(): boolean {
    return this.#inFlight >= this.#max;
  }

  /** Whether the waiting queue has room for one more. */
  get canQueue(): boolean {
    return this.queued < this.#maxQueued;
  }

  /** A call was sent: it takes a slot. */
  take(): void {
    this.#inFlight++;
  }

  /** @param w a call to send when a slot frees */
  wait(w: W): void {
    this.#waiting.push(w);
  }

  /**
   * A call finished: its slot frees. Waiting calls go out in batches, once half the slots are
   * free, so the plugin gets a run of messages rather than one per reply (measured: refilling one
   * slot per reply made 1,000 concurrent calls ~50% slower on Node).
   *
   * @returns the waiting calls to send now (often none)
   */
  release(): W[] {
    this.#inFlight--;
    if (this.#head >= this.#waiting.length || this.#inFlight > this.#max >> 1) {
      return NONE as unknown as W[];
    }
    const n = Math.min(this.#max - this.#inFlight, this.#waiting.length - this.#head);
    const batch = this.#waiting.slice(this.#head, this.#head + n) as W[];
    this.#head += n;
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    } else if (this.#head > 4096) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    return batch;
  }

  /**
   * Empties the queue and every slot (the plugin stopped).
   *
   * @returns the calls that were waiting, to reject
   */
  clear(): W[] {
    const rest = this.#waiting.slice(this.#head) as W[];
    this.#waiting = [];
    this.#head = 0;
    this.#inFlight = 0;
    return rest;
  }
}
