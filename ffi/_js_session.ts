/**
 * Host side of one process-tier JS plugin child: frame routing, pending calls with deadlines,
 * SIGKILL of the real plugin pid on a timeout, crash classification, procfs `$stats`. A
 * `PluginInstance` (lib/instance.ts) created by `startProcessInstance()` in `lib/_process.ts`.
 * @module
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { deserialize, serialize } from "node:v8";
import { deserializeError, isErrorCode, PluginError } from "../lib/errors.ts";
import type { SerializedError } from "../lib/errors.ts";
import type { InstanceFailure, PluginInstance } from "../lib/instance.ts";
import type { ReadyInfo, Reply } from "../lib/worker/protocol.ts";
import { KIND_LIFECYCLE } from "../lib/worker/protocol.ts";
import { encodeFrame, FRAME_TYPES, FrameDecoder } from "./ipc.ts";
import type { Frame } from "./ipc.ts";
import { sampleProcess } from "./procfs.ts";
import { signalName } from "./_session_support.ts";
import { DrainWaiters } from "../lib/_drain.ts";

type Listener = (event: MessageEvent) => void;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** What the child reported once its sandbox was complete. */
export interface ChildStart {
  /** Pid inside the child's pid namespace. */
  nsPid: number;
  /** Whether the seccomp filter is on. */
  seccomp: boolean;
  /** Landlock result of stage 1, or null. */
  landlock: { filesystem?: boolean; network?: boolean; abi?: number } | null;
}

/** Session settings. */
export interface JsSessionOptions {
  name: string;
  maxFrameBytes: number;
  onFailure: (instance: PluginInstance, failure: InstanceFailure) => void;
}

const STDERR_KEEP = 8192;

function isOutOfMemory(value: unknown): boolean {
  const e = value as Partial<SerializedError> | null;
  return e?.name === "RangeError" &&
    /^(out of memory|array buffer allocation failed)$/i.test(String(e.message));
}
const SHUTDOWN_GRACE_MS = 2000;

/** See the module doc. */
export class JsSession implements PluginInstance {
  readonly name: string;
  #child: ChildProcessWithoutNullStreams;
  #opts: JsSessionOptions;
  #decoder: FrameDecoder;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #ready: ReadyInfo | undefined;
  #dead = false;
  #exited = false;
  #pid = -1;
  #stderr = "";
  #drained = new DrainWaiters();
  #ctxListeners = new Set<Listener>();
  #startWaiter: ((start: ChildStart | PluginError) => void) | null = null;
  #loadWaiter: ((reply: Reply | PluginError) => void) | null = null;
  #exit: Promise<void>;

  constructor(child: ChildProcessWithoutNullStreams, options: JsSessionOptions) {
    this.name = options.name;
    this.#child = child;
    this.#opts = options;
    this.#decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    child.stdout.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    child.stderr.on("data", (chunk: Uint8Array) => {
      this.#stderr = (this.#stderr + new TextDecoder().decode(chunk)).slice(-STDERR_KEEP);
    });
    child.stdin.on("error", () => {}); // EPIPE after a crash: the exit handler reports it
    this.#exit = new Promise((resolve) => {
      child.on("error", (error) => {
        this.#onExit(null, null, error);
        resolve();
      });
      child.on("exit", (code, signal) => {
        this.#onExit(code, signal, null);
        resolve();
      });
    });
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

  /** Pid of the runtime in the host's pid namespace (-1 before start). */
  get pid(): number {
    return this.#pid;
  }

  /** A MessagePort look-alike carrying the Comlink messages of the context API. @internal */
  contextPort(): MessagePort {
    const port = {
      postMessage: (message: unknown) => {
        if (this.#exited) return;
        let body: Uint8Array;
        try {
          body = serialize(message);
        } catch {
          body = serialize({
            id: (message as { id?: unknown }).id,
            type: "HANDLER",
            name: "throw",
            value: {
              isError: true,
              value: { name: "PluginError", code: "ERR_PLUGIN_THREW", message: "Unclonable" },
            },
          });
        }
        this.#write({ type: FRAME_TYPES.CONTEXT_REPLY, id: 0, body });
      },
      addEventListener: (_t: string, l: Listener) => this.#ctxListeners.add(l),
      removeEventListener: (_t: string, l: Listener) => this.#ctxListeners.delete(l),
      start: () => {},
      close: () => this.#ctxListeners.clear(),
    };
    return port as unknown as MessagePort;
  }

  /**
   * Sends LOAD and waits for the sandbox report and then the plugin's load reply.
   * @internal
   */
  async start(
    load: Record<string, unknown>,
    timeoutMs: number,
    onStarted: (start: ChildStart) => number,
  ): Promise<ReadyInfo> {
    const deadline = setTimeout(() => {
      const error = new PluginError(
        "ERR_CALL_TIMEOUT",
        `Cannot load plugin "${this.name}": not ready after ${timeoutMs} ms${this.#stderrTail()}`,
        { hint: "Make init() finish sooner, or raise the host's loadTimeoutMs", plugin: this.name },
      );
      this.#startWaiter?.(error);
      this.#loadWaiter?.(error);
    }, timeoutMs);
    try {
      const started = new Promise<ChildStart | PluginError>((r) => (this.#startWaiter = r));
      const loaded = new Promise<Reply | PluginError>((r) => (this.#loadWaiter = r));
      this.#write({ type: FRAME_TYPES.LOAD, id: 0, header: load });
      const start = await started;
      if (start instanceof PluginError) throw start;
      this.#pid = onStarted(start);
      const reply = await loaded;
      if (reply instanceof PluginError) throw reply;
      const [, ok, value] = reply;
      if (ok === 1) {
        this.#ready = value as ReadyInfo;
        return this.#ready;
      }
      const cause = deserializeError(value as SerializedError);
      throw cause instanceof PluginError && cause.code === "ERR_PERMISSION_DENIED"
        ? cause
        : new PluginError(
          "ERR_PLUGIN_INIT",
          `Cannot load plugin "${this.name}": ${cause.message}`,
          {
            hint: "Fix the plugin's entry module or init()",
            cause,
            plugin: this.name,
          },
        );
    } catch (error) {
      this.#dead = true;
      this.#kill();
      throw error;
    } finally {
      clearTimeout(deadline);
      this.#startWaiter = null;
      this.#loadWaiter = null;
    }
  }

  /**
   * Sends one request and resolves with the reply. `$stats` is answered by the host from procfs.
   *
   * @param kind request kind from the protocol
   * @param name method, hook or lifecycle name
   * @param payload arguments
   * @param timeoutMs deadline; past it the plugin is SIGKILLed
   * @returns the reply value
   */
  send(kind: number, name: string, payload: unknown, timeoutMs: number): Promise<unknown> {
    if (kind === KIND_LIFECYCLE && name === "$stats") return Promise.resolve(this.#stats());
    if (this.#dead) {
      return Promise.reject(
        new PluginError("ERR_PLUGIN_CRASHED", `Cannot call "${this.name}.${name}": it is gone`, {
          plugin: this.name,
        }),
      );
    }
    const id = this.#nextId++;
    let body: Uint8Array;
    try {
      body = serialize([kind, id, name, payload]);
    } catch (cause) {
      return Promise.reject(
        new PluginError(
          "ERR_PLUGIN_THREW",
          `Cannot call "${this.name}.${name}": arguments are not structured-cloneable`,
          { hint: "Pass plain data", cause, plugin: this.name },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#onTimeout(id, name, timeoutMs), timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#write({ type: FRAME_TYPES.CALL, id, body });
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

  /** Stops the child (SHUTDOWN, then SIGKILL after a grace period) and rejects pending calls. */
  async terminate(error: PluginError): Promise<void> {
    this.#dead = true;
    this.#rejectAll(error);
    if (this.#exited) return;
    this.#write({ type: FRAME_TYPES.SHUTDOWN, id: 0 });
    const timer = setTimeout(() => this.#kill(), SHUTDOWN_GRACE_MS);
    await this.#exit;
    clearTimeout(timer);
  }

  #stats(): Record<string, number> {
    const m = this.#exited || this.#pid <= 0 ? null : sampleProcess(this.#pid);
    if (m === null) return {};
    return {
      rssBytes: m.rssKb * 1024,
      cpuMs: m.cpuMs,
      threads: m.threads,
      fds: m.fds,
      connections: m.tcpConnections,
    };
  }

  #write(frame: Parameters<typeof encodeFrame>[0]): void {
    if (this.#exited) return;
    this.#child.stdin.write(encodeFrame(frame, this.#opts.maxFrameBytes));
  }

  #onData(chunk: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
      for (const frame of frames) this.#onFrame(frame);
    } catch (error) {
      this.#fail(
        error instanceof PluginError && error.code === "ERR_IPC" ? error : new PluginError(
          "ERR_IPC",
          `Cannot continue plugin "${this.name}": it broke the protocol`,
          { cause: error, plugin: this.name },
        ),
        "crash",
      );
    }
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case FRAME_TYPES.RESULT:
        return this.#onReply(deserialize(frame.body) as Reply);
      case FRAME_TYPES.CONTEXT_GET: {
        const data = deserialize(frame.body);
        for (const l of this.#ctxListeners) l({ data } as MessageEvent);
        return;
      }
      case FRAME_TYPES.READY: {
        const arg = frame.header.landlock;
        this.#startWaiter?.({
          nsPid: Number(frame.header.pid),
          seccomp: frame.header.seccomp === true,
          landlock: typeof arg === "object" && arg !== null ? arg : null,
        });
        this.#startWaiter = null;
        return;
      }
      case FRAME_TYPES.FAIL: {
        const code = String(frame.header.code);
        this.#startWaiter?.(
          new PluginError(
            isErrorCode(code) ? code : "ERR_SANDBOX",
            `Cannot start plugin "${this.name}": ${String(frame.header.message)}`,
            { plugin: this.name },
          ),
        );
        this.#startWaiter = null;
        return;
      }
      default:
        throw new PluginError(
          "ERR_IPC",
          `Cannot continue plugin "${this.name}": unexpected frame of type ${frame.type}`,
          { plugin: this.name },
        );
    }
  }

  #onReply(reply: Reply): void {
    if (!Array.isArray(reply)) throw new TypeError("reply is not an array");
    const [id, ok, value] = reply;
    if (id === 0) {
      this.#loadWaiter?.(reply);
      this.#loadWaiter = null;
      return;
    }
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (ok === 1) p.resolve(value);
    else if (isOutOfMemory(value)) {
      // Bun turns an allocation refused by RLIMIT_DATA into a RangeError inside the plugin; its
      // heap is then unreliable, so the plugin is stopped as the worker tier's OOM would be.
      const error = new PluginError(
        "ERR_RESOURCE_LIMIT",
        `Cannot continue plugin "${this.name}": it ran out of memory (limit reached)`,
        { hint: "Raise limits.heapMb or fix the plugin", plugin: this.name },
      );
      p.reject(error);
      this.#fail(error, "heap");
      return;
    } else p.reject(deserializeError(value as SerializedError));
    if (this.#pending.size === 0) this.#drained.release();
  }

  #onTimeout(id: number, name: string, timeoutMs: number): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    const error = new PluginError(
      "ERR_CALL_TIMEOUT",
      `Cannot finish "${this.name}.${name}": no reply within ${timeoutMs} ms`,
      {
        hint: "The plugin process was killed; raise limits.cpuTimeMs if the work is legitimate",
        plugin: this.name,
      },
    );
    p.reject(error);
    this.#fail(error, "timeout");
  }

  /** Marks the instance failed once, kills the child and tells the host. */
  #fail(error: PluginError, kind: InstanceFailure["kind"]): void {
    this.#kill();
    if (this.#dead) return;
    this.#dead = true;
    this.#rejectAll(error);
    this.#opts.onFailure(this, { error, kind });
  }

  #kill(): void {
    if (this.#exited) return;
    try {
      if (this.#pid > 0 && this.#pid !== this.#child.pid) process.kill(this.#pid, "SIGKILL");
    } catch {
      // already gone
    }
    this.#child.kill("SIGKILL"); // unshare --kill-child takes the whole pid namespace with it
  }

  #onExit(code: number | null, signal: string | null, spawnError: Error | null): void {
    if (this.#exited) return;
    this.#exited = true;
    let sig = signal;
    if (sig === null && code !== null && code > 128 && code < 160) sig = signalName(code - 128);
    const how = spawnError !== null
      ? `the launcher did not start (${spawnError.message})`
      : sig !== null
      ? `the process died of ${sig}`
      : `the process exited with code ${code}`;
    const heap = /out of memory|heap limit|allocation failed|OOM/i.test(this.#stderr);
    const error = new PluginError(
      "ERR_PLUGIN_CRASHED",
      `Cannot continue plugin "${this.name}": ${how}${
        heap ? " (out of memory)" : ""
      }${this.#stderrTail()}`,
      {
        hint: "Check the plugin for uncaught errors, memory exhaustion or process.exit()",
        plugin: this.name,
      },
    );
    if (this.#startWaiter !== null) {
      this.#startWaiter(
        new PluginError(
          spawnError !== null || code === 126 ? "ERR_SANDBOX" : "ERR_PLUGIN_CRASHED",
          `Cannot start plugin "${this.name}": ${how}${this.#stderrTail()}`,
          { plugin: this.name, hint: "The sandbox or the runtime failed to start" },
        ),
      );
      this.#startWaiter = null;
    }
    this.#loadWaiter?.(error);
    this.#loadWaiter = null;
    this.#ctxListeners.clear();
    if (this.#dead) {
      this.#rejectAll(error);
      return;
    }
    this.#dead = true;
    this.#rejectAll(error);
    this.#opts.onFailure(this, { error, kind: heap ? "heap" : "crash" });
  }

  #rejectAll(error: PluginError): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.#pending.clear();
    this.#drained.release();
  }

  #stderrTail(): string {
    const tail = this.#stderr.trim().slice(-400);
    return tail === "" ? "" : `; stderr: "${tail}"`;
  }
}
