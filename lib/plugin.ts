/**
 * A loaded plugin: the handle `host.load()` returns. Calls go over a dedicated MessagePort as
 * small arrays with request ids; every call has a deadline.
 * @module
 */

import { deserializeError, PluginError, type SerializedError } from "./errors.ts";
import type { Enforcement } from "../permissions/enforcement.ts";
import type { Manifest, ManifestLimits } from "./manifest.ts";
import type { ExitReason, WorkerHandle } from "./runtime/types.ts";
import {
  KIND_CALL,
  KIND_HOOK,
  KIND_LIFECYCLE,
  type ReadyInfo,
  type Reply,
} from "./worker/protocol.ts";

/** Lifecycle states of a plugin. */
export type PluginStatus =
  | "available"
  | "loading"
  | "active"
  | "inactive"
  | "failed"
  | "untrusted"
  | "unloading"
  | "unloaded";

/** What the host knows about a plugin, loaded or not. */
export interface PluginInfo {
  name: string;
  version: string;
  description: string | undefined;
  author: string | undefined;
  /** Absolute path of the plugin directory. */
  path: string;
  status: PluginStatus;
  /** What enforces each restriction (set once loaded). */
  enforcement: Enforcement | undefined;
  limits: ManifestLimits;
  permissions: Manifest["permissions"];
  /** The last error, if the plugin failed or was refused. */
  lastError: { code: string; message: string } | undefined;
}

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

/** Internal wiring the host gives a plugin handle. */
export interface PluginWiring {
  manifest: Manifest;
  enforcement: Enforcement;
  worker: WorkerHandle;
  port: MessagePort;
  /** Closes the context channel. */
  closeContext: () => void;
  /** Called when the plugin fails (timeout, crash); the host unloads it. */
  onFailure: (plugin: Plugin, error: PluginError) => void;
}

/**
 * A running plugin.
 *
 * @example
 * ```ts
 * const p = await host.load("resizer");
 * const out = await p.call("resize", { width: 100 });
 * ```
 */
export class Plugin {
  #w: PluginWiring;
  #pending = new Map<number, Pending>();
  #queues = new Map<number, DeadlineQueue>();
  #nextId = 1;
  #status: PluginStatus = "loading";
  #lastError: PluginError | undefined;
  #ready: ReadyInfo | undefined;
  #readyWaiter: { resolve(info: ReadyInfo): void; reject(e: Error): void } | undefined;

  /** @param wiring internal; created by the host */
  constructor(wiring: PluginWiring) {
    this.#w = wiring;
    wiring.port.onmessage = (event: MessageEvent) => this.#onReply(event.data as Reply);
    wiring.worker.onExit((reason) => this.#onExit(reason));
  }

  /** The plugin's name. */
  get name(): string {
    return this.#w.manifest.name;
  }

  /** Current lifecycle state. */
  get status(): PluginStatus {
    return this.#status;
  }

  /** Method names the plugin exports (after load). */
  get methods(): readonly string[] {
    return this.#ready?.methods ?? [];
  }

  /** Hook names the plugin module exports. */
  get hookNames(): readonly string[] {
    return this.#ready?.hooks ?? [];
  }

  /** Snapshot of what the host knows about this plugin. */
  get info(): PluginInfo {
    const m = this.#w.manifest;
    return {
      name: m.name,
      version: m.version,
      description: m.description,
      author: m.author,
      path: m.dir,
      status: this.#status,
      enforcement: this.#w.enforcement,
      limits: { ...m.limits },
      permissions: m.permissions,
      lastError: this.#lastError === undefined
        ? undefined
        : { code: this.#lastError.code, message: this.#lastError.message },
    };
  }

  /**
   * Calls one of the plugin's methods. Arguments and result are structured-cloned.
   *
   * @param method method name
   * @param args arguments
   * @returns the method's result
   * @throws {PluginError} ERR_CALL_TIMEOUT past the manifest's `cpuTimeMs`; ERR_PLUGIN_CRASHED when
   * the worker dies; ERR_METHOD_NOT_FOUND; ERR_PLUGIN_FAILED / ERR_PLUGIN_NOT_ACTIVE when the
   * plugin cannot take calls. Errors the plugin throws keep their `code`.
   * @example
   * ```ts
   * await plugin.call("add", 1, 2);
   * ```
   */
  call(method: string, ...args: unknown[]): Promise<unknown> {
    if (this.#status !== "active") return Promise.reject(this.#notActive(`call "${method}"`));
    return this.send(KIND_CALL, method, args, this.#w.manifest.limits.cpuTimeMs);
  }

  /** @internal Runs one of the plugin's hook handlers. */
  runHook(name: string, data: unknown, timeoutMs: number): Promise<unknown> {
    if (this.#status !== "active") return Promise.reject(this.#notActive(`run hook "${name}"`));
    return this.send(KIND_HOOK, name, data, timeoutMs);
  }

  /** @internal Runs a lifecycle callback (`start`, `stop`, `pause`, ...). */
  lifecycle(name: string, timeoutMs: number, payload?: unknown): Promise<unknown> {
    return this.send(KIND_LIFECYCLE, name, payload, timeoutMs);
  }

  /** @internal */
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

  /** @internal Resolves once the worker reports ready (or rejects with why it failed). */
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

  /** @internal */
  setStatus(status: PluginStatus, error?: PluginError): void {
    this.#status = status;
    if (error !== undefined) this.#lastError = error;
  }

  /** @internal Stops the worker and rejects every pending call. */
  async terminate(error: PluginError): Promise<void> {
    this.#rejectAll(error);
    this.#w.closeContext();
    this.#w.port.onmessage = null;
    this.#w.port.close();
    await this.#w.worker.terminate();
  }

  #notActive(action: string): PluginError {
    if (this.#status === "failed") {
      return new PluginError(
        "ERR_PLUGIN_FAILED",
        `Cannot ${action} on plugin "${this.name}": it failed (${
          this.#lastError?.code ?? "unknown"
        })`,
        { hint: "Load it again once the cause is fixed", plugin: this.name },
      );
    }
    return new PluginError(
      "ERR_PLUGIN_NOT_ACTIVE",
      `Cannot ${action} on plugin "${this.name}": it is ${this.#status}`,
      {
        hint: this.#status === "inactive" ? "Resume it first" : "Load it first",
        plugin: this.name,
      },
    );
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
    if (this.#status === "active" || this.#status === "inactive" || this.#status === "loading") {
      this.#w.onFailure(this, error);
    }
  }

  #onExit(reason: ExitReason): void {
    if (this.#status === "unloading" || this.#status === "unloaded" || this.#status === "failed") {
      return;
    }
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
    this.#w.onFailure(this, error);
  }

  #rejectAll(error: PluginError): void {
    for (const [, p] of this.#pending) p.reject(error);
    this.#pending.clear();
    for (const q of this.#queues.values()) clearTimeout(q.timer);
    this.#queues.clear();
  }
}
