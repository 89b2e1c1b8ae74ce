/**
 * One running worker of a plugin and the call protocol to it: request ids over a dedicated
 * MessagePort, a deadline per call, failure on timeout or exit. The public {@link Plugin} handle
 * points at one instance at a time (hot reload swaps it).
 * @module
 */

import { deserializeError, PluginError, type SerializedError } from "./errors.ts";
import type { ExitReason, WorkerHandle } from "./runtime/types.ts";
import { DrainWaiters } from "./_drain.ts";
import type { Denial } from "./context.ts";
import type { ReadyInfo, Reply } from "./worker/protocol.ts";

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

/**
 * What the host needs from a running plugin, whatever runs it: a worker in this process
 * ({@link WorkerInstance}), a native library in a sandboxed child, or a JS plugin in the process
 * tier. Requests use the kinds of `lib/worker/protocol.ts`.
 */
export interface PluginInstance {
  /** The plugin's name. */
  readonly name: string;
  /** What the plugin reported once ready. */
  readonly ready: ReadyInfo | undefined;
  /** Calls awaiting a reply. */
  readonly pendingCount: number;
  /** True once the instance failed or was terminated. */
  readonly dead: boolean;
  /** Name of its OS thread in this process, when it has one the host can find. */
  readonly threadName?: string | undefined;
  /** Sends one request (call, hook, lifecycle) and resolves with the reply. */
  send(kind: number, name: string, payload: unknown, timeoutMs: number): Promise<unknown>;
  /** Resolves when no call is pending, or after `timeoutMs` (false then). */
  drain(timeoutMs: number): Promise<boolean>;
  /** Stops it and rejects every pending call with `error`. */
  terminate(error: PluginError): Promise<void>;
}

/** Why an instance failed, as the host sees it. */
export interface InstanceFailure {
  error: PluginError;
  /** `timeout`, `crash`, or `heap` (the worker ran out of memory). */
  kind: "timeout" | "crash" | "heap";
}

/** What every tier reports back to the host about an instance it started. */
export interface InstanceCallbacks {
  /** A permission the host refused on the plugin's behalf. */
  onDenied: (denial: Denial) => void;
  /** The plugin hit a limit the host enforces (brokered connections). */
  onLimit: (detail: { type: "connections"; used: number; limit: number }) => void;
  /** The plugin registered a hook handler (`priority` -1: use the default). */
  onHook: (instance: PluginInstance, name: string, priority: number) => void;
  /** The instance failed (timeout, crash, resource limit). */
  onFailure: (instance: PluginInstance, failure: InstanceFailure) => void;
}

/** Internal wiring the host gives an instance. */
export interface InstanceWiring {
  name: string;
  /** Name of the worker's OS thread when the runtime applies it (Node, Bun). */
  threadName?: string | undefined;
  worker: WorkerHandle;
  port: MessagePort;
  /** Closes the context channel. */
  closeContext: () => void;
  /** Called once when the instance fails (timeout, crash). */
  onFailure: (instance: PluginInstance, failure: InstanceFailure) => void;
}

/**
 * A plugin's worker and its pending calls.
 *
 * @example
 * ```ts
 * const instance = new WorkerInstance(wiring);
 * await instance.waitReady(10_000);
 * ```
 */
export class WorkerInstance implements PluginInstance {
  #w: InstanceWiring;
  #pending = new Map<number, Pending>();
  #queues = new Map<number, DeadlineQueue>();
  #nextId = 1;
  #dead = false;
  #drained = new DrainWaiters();
  #ready: ReadyInfo | undefined;
  #readyWaiter: { resolve(info: ReadyInfo): void; reject(e: Error): void } | undefined;

  /** @param wiring internal; created by the host */
  constructor(wiring: InstanceWiring) {
    this.#w = wiring;
    wiring.port.onmessage = (event: MessageEvent) => this.#onReply(event.data as Reply);
    wiring.worker.onExit((reason) => this.#onExit(reason));
  }

  /** The plugin's name. */
  get name(): string {
    return this.#w.name;
  }

  /** Name of the worker's OS thread, when the runtime applies it. */
  get threadName(): string | undefined {
    return this.#w.threadName;
  }

  /** What the worker reported once ready. */
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

  /**
   * Sends one request and resolves with the reply.
   *
   * @param kind request kind from the protocol
   * @param name method, hook or lifecycle name
   * @param payload arguments
   * @param timeoutMs deadline
   * @returns the reply value
   */
  send(kind: number, name: string, payload: unknown, timeoutMs: number): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, {
        resolve,
        reject,
        deadline: Date.now() + timeoutMs,
        timeoutMs,
        label: name,
      });
      try {
        this.#w.port.postMessage([kind, id, name, payload]);
        this.#enqueue(timeoutMs, id);
      } catch (cause) {
        this.#pending.delete(id);
        reject(
          new PluginError(
            "ERR_PLUGIN_THREW",
            `Cannot call "${this.name}.${name}": arguments are not structured-cloneable`,
            { hint: "Pass plain data", cause, plugin: this.name },
          ),
        );
      }
    });
  }

  /** Resolves once the worker reports ready (or rejects with why it failed). */
  waitReady(timeoutMs: number): Promise<ReadyInfo> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#readyWaiter = undefined;
        reject(
          new PluginError(
            "ERR_CALL_TIMEOUT",
            `Cannot load plugin "${this.name}": not ready after ${timeoutMs} ms`,
            {
              hint: "Make init() finish sooner, or raise the host's loadTimeoutMs",
              plugin: this.name,
            },
          ),
        );
      }, timeoutMs);
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
   * Resolves when no call is pending (or after `timeoutMs`).
   *
   * @param timeoutMs how long to wait at most
   * @returns whether every call finished
   */
  drain(timeoutMs: number): Promise<boolean> {
    return this.#drained.wait(() => this.#pending.size, timeoutMs);
  }

  /** Stops the worker and rejects every pending call. */
  async terminate(error: PluginError): Promise<void> {
    this.#dead = true;
    this.#rejectAll(error);
    this.#w.closeContext();
    this.#w.port.onmessage = null;
    this.#w.port.close();
    await this.#w.worker.terminate();
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
      this.#onTimeout(id, timeoutMs);
    }
    if (q.head >= q.ids.length) {
      q.ids = [];
      q.head = 0;
    } else if (q.head > 4096) {
      q.ids = q.ids.slice(q.head);
      q.head = 0;
    }
  }

  #onReply(reply: Reply): void {
    const [id, ok, value] = reply;
    if (id === 0) {
      const w = this.#readyWaiter;
      this.#readyWaiter = undefined;
      if (w === undefined) return;
      if (ok === 1) {
        this.#ready = value as ReadyInfo;
        w.resolve(this.#ready);
      } else {
        const cause = deserializeError(value as SerializedError);
        w.reject(
          cause instanceof PluginError && cause.code === "ERR_PERMISSION_DENIED"
            ? cause
            : new PluginError(
              "ERR_PLUGIN_INIT",
              `Cannot load plugin "${this.name}": ${cause.message}`,
              { hint: "Fix the plugin's entry module or init()", cause, plugin: this.name },
            ),
        );
      }
      return;
    }
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    if (ok === 1) p.resolve(value);
    else p.reject(deserializeError(value as SerializedError));
    if (this.#pending.size === 0) this.#drained.release();
  }

  #onTimeout(id: number, timeoutMs: number): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    const error = new PluginError(
      "ERR_CALL_TIMEOUT",
      `Cannot finish "${this.name}.${p.label}": no reply within ${timeoutMs} ms`,
      {
        hint:
          "The plugin was marked failed and stopped; raise limits.cpuTimeMs if the work is legitimate",
        plugin: this.name,
      },
    );
    p.reject(error);
    if (!this.#dead) {
      this.#dead = true;
      this.#w.onFailure(this, { error, kind: "timeout" });
    }
  }

  #onExit(reason: ExitReason): void {
    if (this.#dead) return;
    this.#dead = true;
    const heap = reason.error?.code === "ERR_WORKER_OUT_OF_MEMORY";
    const detail = reason.error !== undefined
      ? `${reason.error.name}: ${reason.error.message}`
      : `exit code ${reason.code ?? "unknown"}`;
    const error = new PluginError(
      "ERR_PLUGIN_CRASHED",
      `Cannot continue plugin "${this.name}": its worker died (${detail})`,
      {
        hint: "Check the plugin for uncaught errors, heap exhaustion or process.exit()",
        plugin: this.name,
      },
    );
    const w = this.#readyWaiter;
    this.#readyWaiter = undefined;
    w?.reject(error);
    this.#w.onFailure(this, { error, kind: heap ? "heap" : "crash" });
  }

  #rejectAll(error: PluginError): void {
    for (const [, p] of this.#pending) p.reject(error);
    this.#pending.clear();
    for (const q of this.#queues.values()) clearTimeout(q.timer);
    this.#queues.clear();
    this.#drained.release();
  }
}
