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
import { KIND_CALL, KIND_HOOK, KIND_STATS, type ReadyInfo } from "../protocol/messages.ts";
import type {
  CallLimits,
  FailureKind,
  InstanceFailure,
  PluginInstance,
  Transport,
} from "./types.ts";
import { DrainWaiters } from "./_drain.ts";
import { errorFrom, readyFrom } from "./_replies.ts";
import { DeadlineQueues, MAX_TIMER } from "./_deadline_queues.ts";
import { Admission } from "./_admission.ts";

/** A request to send; a call waiting for an in-flight slot starts its deadline when sent. */
interface Waiting {
  kind: number;
  name: string;
  payload: unknown;
  timeoutMs: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Pending extends Waiting {
  deadline: number;
  /** Counts toward maxInFlight (calls and hooks). */
  counted: boolean;
}

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
  /** In-flight and queue bounds. */
  calls?: CallLimits;
  /** The transport dispatches any method name (native): no host-side method check. */
  anyMethod?: boolean;
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
  #deadlines = new DeadlineQueues(
    (id) => this.#pending.get(id)?.deadline,
    (id, timeoutMs) => this.#expired(id, timeoutMs),
  );
  #nextId = 1;
  #dead = false;
  #failure: PluginError | undefined;
  #drained = new DrainWaiters();
  #ready: ReadyInfo | undefined;
  #methods: Set<string> | undefined;
  #readyWaiter: { resolve(info: ReadyInfo): void; reject(e: Error): void } | undefined;
  #admission: Admission<Waiting>;

  /** @param options name, transport and the host's failure callback */
  constructor(options: EngineOptions) {
    this.#o = options;
    this.#t = options.transport;
    this.#admission = new Admission(
      options.calls?.maxInFlight ?? 256,
      options.calls?.maxQueued ?? 10_000,
    );
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

  /** Calls awaiting a reply, including those waiting for an in-flight slot. */
  get pendingCount(): number {
    return this.#pending.size + this.#admission.queued;
  }

  /** True once the instance failed or was terminated. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Deadline timers now armed (one per distinct timeout with calls pending). @internal */
  get timers(): { armed: number } {
    return { armed: this.#deadlines.armed };
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
    if (kind === KIND_CALL && this.#methods !== undefined && !this.#methods.has(name)) {
      const hint = `Call one of the methods the plugin exports: ${
        [...this.#methods].slice(0, 20).join(", ") || "(none)"
      }`;
      const state = "it has no such method";
      return Promise.reject(
        this.#error("ERR_METHOD_NOT_FOUND", `call "${this.name}.${name}"`, state, { hint }),
      );
    }
    const counted = kind === KIND_CALL || kind === KIND_HOOK;
    if (counted && this.#admission.full) {
      if (!this.#admission.canQueue) {
        return Promise.reject(
          this.#error("ERR_BUSY", `call "${this.name}.${name}"`, "its call queue is full", {
            hint: "Retry later, or raise the host's maxInFlight / maxQueued",
          }),
        );
      }
      return new Promise((resolve, reject) => {
        this.#admission.wait({ kind, name, payload, timeoutMs, resolve, reject });
      });
    }
    return new Promise((resolve, reject) => {
      this.#post({ kind, name, payload, timeoutMs, resolve, reject }, counted);
    });
  }

  #post(w: Waiting, counted: boolean): void {
    const { kind, name, timeoutMs } = w;
    const id = this.#nextId++;
    try {
      this.#t.post([kind, id, name, w.payload]);
    } catch (cause) {
      w.reject(
        cause instanceof PluginError ? cause : this.#error(
          "ERR_INVALID_INPUT",
          `call "${this.name}.${name}"`,
          "its arguments cannot cross to the plugin (not structured-cloneable)",
          { hint: "Pass plain data: no functions, class instances or host objects", cause },
        ),
      );
      return;
    }
    if (counted) this.#admission.take();
    const { resolve, reject } = w;
    const deadline = Date.now() + timeoutMs;
    // The payload is not kept: once sent, it is the plugin's copy.
    const p: Pending = {
      kind,
      name,
      payload: undefined,
      timeoutMs,
      resolve,
      reject,
      deadline,
      counted,
    };
    this.#pending.set(id, p);
    if (timeoutMs <= MAX_TIMER) this.#deadlines.add(timeoutMs, id);
  }

  /** One counted call finished: the next waiting one is sent, its deadline starting now. */
  #settled(p: Pending): void {
    if (!p.counted) return;
    for (const w of this.#admission.release()) this.#post(w, true);
  }

  /**
   * Resolves when no call is pending (or after `timeoutMs`).
   *
   * @param timeoutMs how long to wait at most
   * @returns whether every call finished
   */
  drain(timeoutMs: number): Promise<boolean> {
    return this.#drained.wait(() => this.pendingCount, timeoutMs);
  }

  /** Stops the plugin (gracefully within the shutdown grace) and rejects every pending call. */
  async terminate(error: PluginError): Promise<void> {
    this.#dead = true;
    this.#failure ??= error;
    this.#rejectAll(error);
    await this.#t.close(this.#o.shutdownGraceMs ?? 2000);
  }

  /** A request passed its deadline: a stats probe is skipped, anything else fails the plugin. */
  #expired(id: number, timeoutMs: number): boolean {
    const p = this.#pending.get(id) as Pending;
    if (p.kind === KIND_STATS) {
      // A stats probe that a busy plugin could not answer: skip the sample, keep the plugin.
      this.#pending.delete(id);
      p.reject(this.#error("ERR_CALL_TIMEOUT", "sample plugin", "it is busy"));
      return false;
    }
    this.#fail(
      this.#error(
        "ERR_CALL_TIMEOUT",
        `finish "${this.name}.${p.name}"`,
        `no reply within ${timeoutMs} ms`,
        {
          hint:
            "The plugin was marked failed and stopped; raise limits.cpuTimeMs if the work is legitimate",
        },
      ),
      "timeout",
    );
    return true;
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
      // A host-built PluginError comes only from a host-side transport (native statuses); a
      // plugin cannot make one: structured clone and frames rebuild plain objects and Errors.
      const error = value instanceof PluginError ? value : errorFrom(value, this.name);
      if (error === null) return this.#violation("an error reply that is not a serialized error");
      result = error;
    }
    this.#pending.delete(id);
    if (ok === 1) p.resolve(result);
    else p.reject(result as Error);
    this.#settled(p);
    if (this.pendingCount === 0) this.#drained.release();
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
      if (this.#o.anyMethod !== true) this.#methods = new Set(info.methods);
      w.resolve(info);
      return;
    }
    const cause = errorFrom(value, this.name);
    if (cause === null) return this.#violation("a load failure that is not a serialized error");
    this.#readyWaiter = undefined;
    const pluginCode = (cause as PluginError).pluginCode ?? (cause as { code?: unknown }).code;
    const error = this.#error("ERR_PLUGIN_INIT", "load plugin", cause.message, {
      hint: "Fix the plugin's entry module or init()",
      cause,
      ...(typeof pluginCode === "string" ? { pluginCode } : {}),
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
    for (const w of this.#admission.clear()) w.reject(error);
    this.#deadlines.clear();
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
