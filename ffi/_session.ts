/**
 * One running native plugin child as seen from the host: frame routing, pending calls, call
 * deadlines, the CPU/memory watchdog, exit classification. Created by `startNativePlugin()`.
 * @module
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { isErrorCode, PluginError } from "../lib/errors.ts";
import type { ErrorCode } from "../lib/errors.ts";
import { encodeFrame, FRAME_TYPES, FrameDecoder } from "./ipc.ts";
import type { Frame } from "./ipc.ts";
import type { Enforcement, NativeLimits } from "./launcher.ts";
import { sampleProcess } from "./procfs.ts";
import type { NativeMetrics } from "./procfs.ts";
import type { NativeExit, NativePlugin } from "./native_types.ts";
import { answerContext, countSockets, signalName } from "./_session_support.ts";
import type { ContextCallback } from "./_session_support.ts";

/** Session settings. */
export interface SessionOptions {
  name: string;
  limits: NativeLimits;
  enforcement: Enforcement;
  maxFrameBytes: number;
  callTimeoutMs: number;
  shutdownTimeoutMs: number;
  countSockets: boolean;
  context?: ContextCallback;
  log?: (level: string, message: string) => void;
}

interface Pending {
  method: string;
  binary: boolean;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const STATUS_CODES: Record<number, ErrorCode> = {
  [-1]: "ERR_METHOD_NOT_FOUND",
  [-3]: "ERR_PERMISSION_DENIED",
  [-8]: "ERR_RESOURCE_LIMIT",
};
const LEVELS = ["debug", "info", "warn", "error"];
const STDERR_KEEP = 8192;
const WATCHDOG_MS = 20;
/** RSS the child's own JavaScript may add after start-up (its JS heap is capped at 32 MiB). */
const RUNTIME_RSS_SLACK_KB = 16 * 1024;

/** See {@link NativePlugin}. */
export class NativeSession implements NativePlugin {
  readonly name: string;
  pid = -1;
  enforcement: Enforcement;
  #child: ChildProcessWithoutNullStreams;
  #opts: SessionOptions;
  #decoder: FrameDecoder;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #stderr = "";
  #exit: NativeExit | null = null;
  #fault: { reason: NativeExit["reason"]; error: PluginError } | null = null;
  #listeners = new Set<(exit: NativeExit) => void>();
  #exited: Promise<NativeExit>;
  #ready: ((frame: Frame) => void) | null = null;
  #watchdog: ReturnType<typeof setInterval> | null = null;
  #headCpu = 0;
  #headId = 0;
  #baseRssKb = 0;
  #baseSockets = 0;
  #closing = false;

  constructor(child: ChildProcessWithoutNullStreams, options: SessionOptions) {
    this.name = options.name;
    this.enforcement = options.enforcement;
    this.#child = child;
    this.#opts = options;
    this.#decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    child.stdout.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    child.stderr.on("data", (chunk: Uint8Array) => {
      this.#stderr = (this.#stderr + new TextDecoder().decode(chunk)).slice(-STDERR_KEEP);
    });
    child.stdin.on("error", () => {}); // EPIPE after a crash: the exit handler reports it
    this.#exited = new Promise((resolve) => {
      child.on("error", (error) => {
        this.#fail(
          "crash",
          new PluginError("ERR_SANDBOX", this.#msg(`the child did not spawn: ${error.message}`), {
            cause: error,
            plugin: this.name,
          }),
        );
        // A spawn failure (ENOENT, EACCES) emits no "exit": settle here.
        if (child.pid === undefined && this.#exit === null) resolve(this.#onExit(null, null));
      });
      child.on("exit", (code, signal) => resolve(this.#onExit(code, signal)));
    });
  }

  /** Waits for READY; rejects with the child's FAIL code, or a start error. @internal */
  ready(timeoutMs: number, sandboxed: boolean): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill();
        reject(new PluginError("ERR_PLUGIN_INIT", this.#msg(`not ready after ${timeoutMs} ms`)));
      }, timeoutMs);
      this.#ready = (frame) => {
        clearTimeout(timer);
        if (frame.type === FRAME_TYPES.READY) return resolve(frame.header);
        const code = String(frame.header.code);
        reject(
          new PluginError(
            isErrorCode(code) ? code : "ERR_NATIVE_LOAD",
            this.#msg(String(frame.header.message)),
            { plugin: this.name },
          ),
        );
      };
      void this.#exited.then(() => {
        clearTimeout(timer);
        if (this.#ready === null) return;
        this.#ready = null;
        const error = this.#fault?.error ?? new PluginError(
          sandboxed ? "ERR_SANDBOX" : "ERR_NATIVE_LOAD",
          this.#msg(`the child exited before it was ready${this.#stderrTail()}`),
          { plugin: this.name },
        );
        reject(error);
      });
    });
  }

  /** Records the real pid and final enforcement, starts sampling baselines. @internal */
  activate(pid: number, enforcement: Enforcement): void {
    this.pid = pid;
    this.enforcement = enforcement;
    const m = sampleProcess(pid);
    this.#baseRssKb = m?.rssKb ?? 0;
    if (this.#opts.countSockets) this.#baseSockets = countSockets(pid);
  }

  call(method: string, input?: unknown): Promise<unknown> {
    if (typeof method !== "string") throw new TypeError("Method name must be a string");
    if (this.#exit !== null || this.#fault !== null) {
      return Promise.reject(this.#fault?.error ?? this.#crashError());
    }
    if (this.#closing) {
      return Promise.reject(new PluginError("ERR_HOST_CLOSED", this.#msg("it is closing")));
    }
    const binary = input instanceof Uint8Array;
    let body: Uint8Array;
    try {
      body = binary ? input : new TextEncoder().encode(JSON.stringify(input ?? null));
    } catch (cause) {
      return Promise.reject(new TypeError("Call input is not JSON-serialisable", { cause }));
    }
    const id = this.#nextId++;
    let frame: Uint8Array;
    try {
      frame = encodeFrame(
        { type: FRAME_TYPES.CALL, id, header: { method }, body },
        this.#opts.maxFrameBytes,
      );
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(
          "timeout",
          new PluginError(
            "ERR_CALL_TIMEOUT",
            this.#msg(`call "${method}" exceeded ${this.#opts.callTimeoutMs} ms`),
            { plugin: this.name, hint: "The plugin was killed; restart it" },
          ),
          id,
        );
      }, this.#opts.callTimeoutMs);
      if (this.#pending.size === 0) this.#startHead(id);
      this.#pending.set(id, { method, binary, resolve, reject, timer });
      this.#startWatchdog();
      this.#child.stdin.write(frame);
    });
  }

  async close(): Promise<void> {
    if (this.#exit !== null) return;
    this.#closing = true;
    this.#child.stdin.write(encodeFrame({ type: FRAME_TYPES.SHUTDOWN, id: 0 }));
    const timer = setTimeout(() => this.kill(), this.#opts.shutdownTimeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.#exit !== null) return;
    this.#fail(
      "killed",
      new PluginError("ERR_HOST_CLOSED", this.#msg("it was killed"), {
        plugin: this.name,
      }),
    );
  }

  metrics(): NativeMetrics | null {
    return this.#exit === null && this.pid > 0 ? sampleProcess(this.pid) : null;
  }

  onExit(listener: (exit: NativeExit) => void): () => void {
    if (this.#exit !== null) queueMicrotask(() => listener(this.#exit as NativeExit));
    else this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #onData(chunk: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#fail("protocol", error as PluginError);
      return;
    }
    for (const frame of frames) this.#onFrame(frame);
  }

  #onFrame(frame: Frame): void {
    if (this.#ready !== null) {
      if (frame.type === FRAME_TYPES.READY || frame.type === FRAME_TYPES.FAIL) {
        const ready = this.#ready;
        this.#ready = null;
        ready(frame);
        return;
      }
    }
    switch (frame.type) {
      case FRAME_TYPES.RESULT:
        return this.#onResult(frame);
      case FRAME_TYPES.LOG:
        this.#opts.log?.(
          LEVELS[Number(frame.header.level)] ?? "info",
          String(frame.header.message),
        );
        return;
      case FRAME_TYPES.CONTEXT_GET:
      case FRAME_TYPES.CONTEXT_SET:
        void this.#onContext(frame);
        return;
      default:
        this.#fail(
          "protocol",
          new PluginError(
            "ERR_IPC",
            this.#msg(`the child sent an unexpected frame of type ${frame.type}`),
            { plugin: this.name },
          ),
        );
    }
  }

  #onResult(frame: Frame): void {
    const pending = this.#pending.get(frame.id);
    if (pending === undefined) {
      this.#fail(
        "protocol",
        new PluginError(
          "ERR_IPC",
          this.#msg(`the child answered unknown call ${frame.id}`),
          { plugin: this.name },
        ),
      );
      return;
    }
    this.#pending.delete(frame.id);
    clearTimeout(pending.timer);
    const next = this.#pending.keys().next();
    if (next.done !== true) this.#startHead(next.value);
    const status = Number(frame.header.status);
    if (status !== 0) {
      const text = new TextDecoder().decode(frame.body);
      const code = STATUS_CODES[status] ?? "ERR_PLUGIN_THREW";
      pending.reject(
        new PluginError(
          code,
          this.#msg(`"${pending.method}" returned status ${status}${text ? `: ${text}` : ""}`),
          { plugin: this.name },
        ),
      );
      return;
    }
    if (pending.binary) return pending.resolve(frame.body);
    if (frame.body.length === 0) return pending.resolve(undefined);
    try {
      pending.resolve(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(frame.body)));
    } catch (cause) {
      pending.reject(
        new PluginError(
          "ERR_PLUGIN_THREW",
          this.#msg(`"${pending.method}" returned output that is not UTF-8 JSON`),
          { plugin: this.name, cause },
        ),
      );
    }
  }

  async #onContext(frame: Frame): Promise<void> {
    const reply = await answerContext(frame, this.#opts.context);
    if (this.#exit !== null) return;
    this.#child.stdin.write(
      encodeFrame({ type: FRAME_TYPES.CONTEXT_REPLY, id: frame.id, ...reply }),
    );
  }

  #startHead(id: number): void {
    // The CPU baseline is taken at the watchdog's next tick, not here: a /proc read per call
    // would cost ~20 µs on the hot path. A call gets at most one tick (20 ms) of CPU for free.
    this.#headId = id;
    this.#headCpu = -1;
  }

  #startWatchdog(): void {
    if (this.#watchdog !== null || this.pid <= 0) return;
    this.#watchdog = setInterval(() => this.#check(), WATCHDOG_MS);
  }

  #stopWatchdog(): void {
    if (this.#watchdog !== null) clearInterval(this.#watchdog);
    this.#watchdog = null;
  }

  #check(): void {
    if (this.#pending.size === 0) return this.#stopWatchdog();
    const m = sampleProcess(this.pid);
    if (m === null) return;
    const { limits } = this.#opts;
    let over: string | null = null;
    if (this.#headCpu < 0) this.#headCpu = m.cpuMs;
    if (m.cpuMs - this.#headCpu > limits.cpuTimeMs) {
      over = `call ${this.#headId} used more than ${limits.cpuTimeMs} ms of CPU`;
    } else if (m.rssKb - this.#baseRssKb > limits.heapMb * 1024 + RUNTIME_RSS_SLACK_KB) {
      over = `resident memory grew by ${
        m.rssKb - this.#baseRssKb
      } KiB (limit ${limits.heapMb} MiB)`;
    } else if (this.#opts.countSockets) {
      const sockets = countSockets(this.pid) - this.#baseSockets;
      if (sockets > limits.connections) {
        over = `${sockets} sockets open (limit ${limits.connections})`;
      }
    }
    if (over !== null) {
      this.#fail(
        "resource",
        new PluginError("ERR_RESOURCE_LIMIT", this.#msg(over), {
          plugin: this.name,
          hint: "The plugin was killed; raise its limits or fix it",
        }),
      );
    }
  }

  /** Settles everything with `error` (the call `onlyId` gets it, others a crash) and kills. */
  #fail(reason: NativeExit["reason"], error: PluginError, onlyId?: number): void {
    if (this.#fault === null) this.#fault = { reason, error };
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(onlyId === undefined || id === onlyId ? error : this.#crashError());
    }
    this.#pending.clear();
    this.#stopWatchdog();
    this.#sigkill();
  }

  #sigkill(): void {
    if (this.#exit !== null) return;
    try {
      if (this.pid > 0 && this.pid !== this.#child.pid) process.kill(this.pid, "SIGKILL");
    } catch {
      // already gone
    }
    this.#child.kill("SIGKILL"); // unshare --kill-child takes the whole pid namespace with it
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): NativeExit {
    this.#stopWatchdog();
    let sig: string | null = signal;
    if (sig === null && code !== null && code > 128 && code < 160) {
      sig = signalName(code - 128);
    }
    const clean = this.#closing && code === 0;
    let reason: NativeExit["reason"] = this.#fault?.reason ?? (clean ? "closed" : "crash");
    if (this.#fault === null && sig === "SIGXCPU") reason = "resource";
    const exit: NativeExit = {
      code: sig === null ? code : null,
      signal: sig,
      crashed: !clean,
      reason,
    };
    this.#exit = exit;
    const error = this.#fault?.error ??
      (reason === "resource"
        ? new PluginError("ERR_RESOURCE_LIMIT", this.#msg("its CPU time limit was hit (SIGXCPU)"))
        : this.#crashError());
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.#pending.clear();
    for (const listener of this.#listeners) listener(exit);
    this.#listeners.clear();
    return exit;
  }

  #crashError(): PluginError {
    const how = this.#exit === null
      ? "the process is gone"
      : this.#exit.signal !== null
      ? `the process died of ${this.#exit.signal}`
      : `the process exited with code ${this.#exit.code}`;
    const error = new PluginError("ERR_PLUGIN_CRASHED", this.#msg(`${how}${this.#stderrTail()}`), {
      plugin: this.name,
      hint: "Restart the plugin; stderr is in the message",
    }) as PluginError & { signal?: string | null };
    error.signal = this.#exit?.signal ?? null;
    return error;
  }

  #stderrTail(): string {
    const tail = this.#stderr.trim().slice(-400);
    return tail === "" ? "" : `; stderr: "${tail}"`;
  }

  #msg(state: string): string {
    return `Cannot run native plugin "${this.name}": ${state}`;
  }
}
