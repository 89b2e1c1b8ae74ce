/**
 * The one call engine of every tier: request ids, the pending table with one deadline timer per
 * distinct timeout, the ready handshake with the load timeout, reply validation and routing,
 * drain, stats as a typed request, failure classification, and the one set of error codes and
 * messages. A tier supplies only a {@link Transport} (a worker's MessagePort, or frames to a
 * sandboxed child).
 *
 * Everything a plugin sends is hostile input: a reply that is not `[id, ok, value]` with a known
 * id, `ok` 0 or 1 and a well-formed value fails that plugin with `ERR_IPC` (kind `protocol`) and
 * never throws in the host.
 * @module
 */

import { PluginError, type PluginErrorOptions } from "../errors.ts";
import { KIND_STATS, type ReadyInfo } from "../protocol/messages.ts";
import type { FailureKind, InstanceFailure, PluginInstance, Transport } from "./types.ts";
import { DrainWaiters } from "./_drain.ts";
import { errorFrom, readyFrom } from "./_replies.ts";

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  deadline: number;
  timeoutMs: number;
  label: string;
}

// Calls with the same timeout expire in the order they were sent, so one timer per distinct
// timeout serves them all: no setTimeout/clearTimeout per call (measured: that was most of the
// overhead over raw postMessage at 1,000 concurrent calls on Bun).
interface DeadlineQueue {
  ids: number[];
  head: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** setTimeout stores delays as a signed 32-bit int; longer ones fire at once. */
const MAX_TIMER = 2 ** 31 - 1;

/** Settings of one engine. */
export interface EngineOptions {
  /** The plugin's name. */
  name: string;
  /** How the engine reaches the plugin. */
  transport: Transport;
  /** Called once when the instance fails after it was ready (timeout, crash, protocol). */
  onFailure: (instance: PluginInstance, failure: InstanceFailure) => void;
  /** How long `terminate()` lets the plugin stop by itself before killing it. Default 2000. */
  shutdownGraceMs?: number;
}

/** Every timer-count the engine holds, for tests that check the deadline queue. @internal */
export interface EngineTimers {
  /** Distinct timeouts with an armed timer. */
  armed: number;
}

/**
 * A running plugin as the host sees it, over any transport.
 *
 * @example
 * ```ts
 * const engine = new CallEngine({ name: "echo", transport, onFailure });
 * await engine.start(10_000);
 * await engine.send(KIND_CALL, "echo", ["hi"], 5000);
 * ```
 */
export class CallEngine implements PluginInstance {
  #o: EngineOptions;
  #t: Transport;
  #pending = new Map<number, Pending>();
  #queues = new Map<number, DeadlineQueue>();
  #nextId = 1;
  #dead = false;
  #failure: PluginError | undefined;
  #drained = new DrainWaiters();
  #ready: ReadyInfo | undefined;
  #readyWaiter: { resolve(info: ReadyInfo): void; reject(e: Error): void } | undefined;

  /** @param options name, transport and the host's failure callback */
  constructor(options: EngineOptions) {
    this.#o = options;
    this.#t = options.transport;
    this.#t.connect({
      reply: (message) => this.#onMessage(message),
      fail: (error, kind) => this.#fail(error, kind),
      violation: (what) => this.#violation(what),
    });
  }

  /** The plugin's name. */
  get name(): string {
    return this.#o.name;
  }

  /** Name of the plugin's OS thread, when the runtime applies it. */
  get threadName(): string | undefined {
    return this.#t.threadName;
  }

  /** What the plugin reported once ready. */
  get ready(): ReadyInfo | undefined {
    return this.#ready;
  }

  /** Calls awaiting a reply. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** True once the instance failed or was terminated. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Deadline timers now armed (one per distinct timeout with calls pending). @internal */
  get timers(): EngineTimers {
    let armed = 0;
    for (const q of this.#queues.values()) if (q.timer !== undefined) armed++;
    return { armed };
  }

  /**
   * Waits for the plugin's ready report.
   *
   * @param timeoutMs the load timeout
   * @returns what the plugin reported
   * @throws {PluginError} ERR_CALL_TIMEOUT when it is not ready in time; ERR_PLUGIN_INIT when its
   * module or init() failed; the transport's error (ERR_SANDBOX, ERR_ABI, ERR_NATIVE_LOAD,
   * ERR_PLUGIN_CRASHED, ...) when it died first. The plugin is stopped in every case.
   */
  start(timeoutMs: number): Promise<ReadyInfo> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<ReadyInfo>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(
          this.#error("ERR_CALL_TIMEOUT", `load plugin`, `not ready after ${timeoutMs} ms`, {
            hint: "Make init() finish sooner, or raise the host's loadTimeoutMs",
          }),
          "timeout",
        );
      }, Math.min(timeoutMs, MAX_TIMER));
      this.#readyWaiter = {
        resolve: (info) => {
          clearTimeout(timer);
          resolve(info);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /**
   * Sends one request and resolves with the reply.
   *
   * @param kind request kind from the protocol
   * @param name method, hook or lifecycle name
   * @param payload arguments
   * @param timeoutMs deadline; past it the plugin is stopped and marked failed
   * @returns the reply value
   * @throws {PluginError} ERR_INVALID_INPUT when the payload cannot cross; ERR_CALL_TIMEOUT;
   * ERR_PLUGIN_CRASHED; ERR_IPC; or the plugin's own error
   */
  send(kind: number, name: string, payload: unknown, timeoutMs: number): Promise<unknown> {
    if (kind === KIND_STATS) {
      const local = this.#t.stats?.();
      if (local !== undefined) return Promise.resolve(this.#dead ? {} : local);
    }
    if (this.#dead) {
      return Promise.reject(
        this.#failure ??
          this.#error("ERR_PLUGIN_NOT_ACTIVE", `call "${this.name}.${name}"`, "it was stopped"),
      );
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.#t.post([kind, id, name, payload]);
      } catch (cause) {
        reject(
          cause instanceof PluginError ? cause : this.#error(
            "ERR_INVALID_INPUT",
            `call "${this.name}.${name}"`,
            "its arguments cannot cross to the plugin (not structured-cloneable)",
            { hint: "Pass plain data: no functions, class instances or host objects", cause },
          ),
        );
        return;
      }
      this.#pending.set(id, {
        resolve,
        reject,
        deadline: Date.now() + timeoutMs,
        timeoutMs,
        label: name,
      });
      if (timeoutMs <= MAX_TIMER) this.#enqueue(timeoutMs, id);
    });
  }

  /**
   * Resolves when no call is pending (or after `timeoutMs`).
   *
   * @param timeoutMs how long to wait at most
   * @returns whether every call finished
   */
  drain(timeoutMs: number): Promise<boolean> {
    return this.#drained.wait(() => this.#pending.size, timeoutMs);
  }

  /** Stops the plugin (gracefully within the shutdown grace) and rejects every pending call. */
  async terminate(error: PluginError): Promise<void> {
    this.#dead = true;
    this.#failure ??= error;
    this.#rejectAll(error);
    await this.#t.close(this.#o.shutdownGraceMs ?? 2000);
  }

  #enqueue(timeoutMs: number, id: number): void {
    let q = this.#queues.get(timeoutMs);
    if (q === undefined) {
      q = { ids: [], head: 0, timer: undefined };
      this.#queues.set(timeoutMs, q);
    }
    q.ids.push(id);
    q.timer ??= setTimeout(() => this.#expire(timeoutMs), timeoutMs);
  }

  #expire(timeoutMs: number): void {
    const q = this.#queues.get(timeoutMs);
    if (q === undefined) return;
    q.timer = undefined;
    const now = Date.now();
    while (q.head < q.ids.length) {
      const id = q.ids[q.head] as number;
      const p = this.#pending.get(id);
      if (p === undefined) {
        q.head++;
        continue;
      }
      if (p.deadline > now) {
        q.timer = setTimeout(() => this.#expire(timeoutMs), p.deadline - now);
        break;
      }
      q.head++;
      this.#fail(
        this.#error(
          "ERR_CALL_TIMEOUT",
          `finish "${this.name}.${p.label}"`,
          `no reply within ${timeoutMs} ms`,
          {
            hint:
              "The plugin was marked failed and stopped; raise limits.cpuTimeMs if the work is legitimate",
          },
        ),
        "timeout",
      );
      return;
    }
    if (q.head >= q.ids.length) {
      q.ids = [];
      q.head = 0;
    } else if (q.head > 4096) {
      q.ids = q.ids.slice(q.head);
      q.head = 0;
    }
  }

  // Validates a message from the plugin. Anything malformed fails the plugin, never the host.
  #onMessage(message: unknown): void {
    if (this.#dead) return;
    if (!Array.isArray(message) || message.length !== 3) {
      return this.#violation("a reply that is not [id, ok, value]");
    }
    const id: unknown = message[0];
    const ok: unknown = message[1];
    const value: unknown = message[2];
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0 || id >= this.#nextId) {
      return this.#violation("a reply to a call that was never made");
    }
    if (ok !== 0 && ok !== 1) return this.#violation('a reply whose "ok" is not 0 or 1');
    if (id === 0) return this.#onReady(ok, value);
    const p = this.#pending.get(id);
    if (p === undefined) return; // answered or expired already
    let result: unknown = value;
    if (ok === 0) {
      const error = errorFrom(value, this.name);
      if (error === null) return this.#violation("an error reply that is not a serialized error");
      result = error;
    }
    this.#pending.delete(id);
    if (ok === 1) p.resolve(result);
    else p.reject(result as Error);
    if (this.#pending.size === 0) this.#drained.release();
  }

  #onReady(ok: 0 | 1, value: unknown): void {
    const w = this.#readyWaiter;
    if (w === undefined || this.#ready !== undefined) {
      return this.#violation("a second ready report");
    }
    if (ok === 1) {
      const info = readyFrom(value);
      if (info === null) return this.#violation("a ready report that is not { methods, hooks }");
      this.#readyWaiter = undefined;
      this.#ready = info;
      w.resolve(info);
      return;
    }
    const cause = errorFrom(value, this.name);
    if (cause === null) return this.#violation("a load failure that is not a serialized error");
    this.#readyWaiter = undefined;
    const error = cause instanceof PluginError && PASS_THROUGH.has(cause.code)
      ? cause
      : this.#error("ERR_PLUGIN_INIT", "load plugin", cause.message, {
        hint: "Fix the plugin's entry module or init()",
        cause,
      });
    this.#dead = true;
    this.#failure = error;
    this.#t.kill();
    w.reject(error);
  }

  #violation(what: string): void {
    this.#fail(
      this.#error("ERR_IPC", "continue plugin", `it sent ${what}`, {
        hint: "The plugin broke the host protocol and was stopped; it may be hostile",
      }),
      "protocol",
    );
  }

  /** Marks the instance failed once, stops the plugin and tells the host (or the loader). */
  #fail(error: PluginError, kind: FailureKind): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#failure = error;
    this.#t.kill();
    this.#rejectAll(error);
    const w = this.#readyWaiter;
    this.#readyWaiter = undefined;
    if (w !== undefined) w.reject(error);
    else this.#o.onFailure(this, { error, kind });
  }

  #rejectAll(error: PluginError): void {
    for (const [, p] of this.#pending) p.reject(error);
    this.#pending.clear();
    for (const q of this.#queues.values()) clearTimeout(q.timer);
    this.#queues.clear();
    this.#drained.release();
  }

  #error(
    code: PluginError["code"],
    action: string,
    state: string,
    options: PluginErrorOptions = {},
  ): PluginError {
    const subject = action.endsWith("plugin") ? `${action} "${this.name}"` : action;
    return new PluginError(code, `Cannot ${subject}: ${state}`, { plugin: this.name, ...options });
  }
}

/** Load failures a plugin may report as they are (the rest become ERR_PLUGIN_INIT). */
const PASS_THROUGH = new Set<string>(["ERR_PERMISSION_DENIED"]);
