/**
 * One running native plugin child as seen from the host: {@link NativeTransport} maps the
 * native frame format (JSON or bytes in, a status and bytes out) onto the call engine's
 * requests and replies and runs the CPU/memory watchdog. The public handle over it is
 * `NativeSession` in `_native_session.ts`.
 * @module
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { isErrorCode, PluginError } from "../lib/errors.ts";
import type { ErrorCode } from "../lib/errors.ts";
import { ChildChannel, type ChildEnd } from "../lib/tiers/child_channel.ts";
import type {
  CallLimits,
  InstanceFailure,
  PluginInstance,
  Transport,
  TransportSink,
} from "../lib/tiers/types.ts";
import { KIND_CALL, type Request } from "../lib/protocol/messages.ts";
import { FRAME_TYPES } from "../lib/protocol/frames.ts";
import type { Frame } from "../lib/protocol/frames.ts";
import type { NativeLimits, SandboxReport } from "../sandbox/launcher.ts";
import type { NativeMetrics } from "./native_types.ts";
import { answerContext, countSockets } from "./_session_support.ts";
import type { ContextCallback } from "./_session_support.ts";

/** Session settings. */
export interface SessionOptions {
  name: string;
  /** In-flight and queue bounds of calls. */
  calls?: CallLimits;
  limits: NativeLimits;
  enforcement: SandboxReport;
  maxFrameBytes: number;
  callTimeoutMs: number;
  shutdownTimeoutMs: number;
  countSockets: boolean;
  /** Whether a failure to start is the sandbox's (ERR_SANDBOX) or the library's. */
  sandboxed: boolean;
  context?: ContextCallback;
  log?: (level: string, message: string) => void;
  /** The host's failure callback (a plugin that failed after it was ready). */
  onFailure?: (instance: PluginInstance, failure: InstanceFailure) => void;
}

const STATUS_CODES: Record<number, ErrorCode> = {
  [-1]: "ERR_METHOD_NOT_FOUND",
  [-3]: "ERR_PERMISSION_DENIED",
  [-8]: "ERR_RESOURCE_LIMIT",
};
const LEVELS = ["debug", "info", "warn", "error"];
const WATCHDOG_MS = 20;
/** RSS the child's own JavaScript may add after start-up (its JS heap is capped at 32 MiB). */
const RUNTIME_RSS_SLACK_KB = 16 * 1024;

interface InFlight {
  method: string;
  binary: boolean;
}

/**
 * The native child's frames as engine requests and replies: a call's arguments go as bytes (one
 * `Uint8Array` argument), else as JSON (one argument: its value; several: the array of all of
 * them), and a RESULT becomes `[id, ok, value]`. Hooks and lifecycle callbacks do not exist in
 * the C ABI and answer `undefined` at once.
 */
export class NativeTransport implements Transport {
  #ch: ChildChannel;
  #o: SessionOptions;
  #sink: TransportSink | undefined;
  #inflight = new Map<number, InFlight>();
  #readyHeader: Record<string, unknown> | undefined;
  #watchdog: ReturnType<typeof setInterval> | null = null;
  #headCpu = 0;
  #headId = 0;
  #baseRssKb = 0;
  #baseSockets = 0;

  constructor(child: ChildProcessWithoutNullStreams, options: SessionOptions) {
    this.#o = options;
    this.#ch = new ChildChannel(child, {
      name: options.name,
      maxFrameBytes: options.maxFrameBytes,
      onFrame: (frame) => this.#onFrame(frame),
      onBroken: (error) => this.#sink?.fail(error, "protocol"),
      onEnd: (end) => this.#onEnd(end),
    });
  }

  /** The child channel (pid, exit). */
  get channel(): ChildChannel {
    return this.#ch;
  }

  /** The READY header once the library is loaded. */
  get readyHeader(): Record<string, unknown> | undefined {
    return this.#readyHeader;
  }

  connect(sink: TransportSink): void {
    this.#sink = sink;
  }

  /** Records the real pid and starts the sampling baselines. */
  activate(pid: number): void {
    this.#ch.pid = pid;
    const m = this.#ch.sample();
    this.#baseRssKb = (m?.rssBytes ?? 0) / 1024;
    if (this.#o.countSockets) this.#baseSockets = countSockets(pid);
  }

  post(request: Request): void {
    const [kind, id, method, payload] = request;
    if (kind !== KIND_CALL) {
      queueMicrotask(() => this.#sink?.reply([id, 1, undefined]));
      return;
    }
    const args = Array.isArray(payload) ? payload : [payload];
    const input = args.length === 1 ? args[0] : args.length === 0 ? undefined : args;
    const binary = input instanceof Uint8Array;
    let body: Uint8Array;
    if (binary) body = input;
    else {
      const json = JSON.stringify(input ?? null, strictJson);
      if (json === undefined) throw new TypeError("Call input is not JSON-serialisable");
      body = new TextEncoder().encode(json);
    }
    this.#ch.write({ type: FRAME_TYPES.CALL, id, header: { method }, body });
    if (this.#inflight.size === 0) this.#startHead(id);
    this.#inflight.set(id, { method, binary });
    this.#startWatchdog();
  }

  stats(): Record<string, number> {
    return this.#ch.stats();
  }

  /** A procfs sample of the plugin process, or null once it is gone. */
  metrics(): NativeMetrics | null {
    return this.#ch.sample();
  }

  async close(graceMs: number): Promise<void> {
    this.#stopWatchdog();
    await this.#ch.shutdown(graceMs);
  }

  kill(): void {
    this.#stopWatchdog();
    this.#ch.kill();
  }

  #msg(state: string): string {
    return `Cannot run native plugin "${this.#o.name}": ${state}`;
  }

  #violation(what: string): void {
    this.#sink?.violation(what);
  }

  #onFrame(frame: Frame): void {
    if (this.#readyHeader === undefined) {
      if (frame.type === FRAME_TYPES.READY) {
        this.#readyHeader = frame.header;
        this.#sink?.reply([0, 1, { methods: [], hooks: [], lifecycle: [] }]);
        return;
      }
      if (frame.type === FRAME_TYPES.FAIL) {
        const code = String(frame.header.code);
        this.#sink?.fail(
          new PluginError(
            isErrorCode(code) ? code : "ERR_NATIVE_LOAD",
            this.#msg(String(frame.header.message).slice(0, 2000)),
            { plugin: this.#o.name },
          ),
          "crash",
        );
        return;
      }
    }
    switch (frame.type) {
      case FRAME_TYPES.RESULT:
        return this.#onResult(frame);
      case FRAME_TYPES.LOG:
        this.#o.log?.(LEVELS[Number(frame.header.level)] ?? "info", String(frame.header.message));
        return;
      case FRAME_TYPES.CONTEXT_GET:
      case FRAME_TYPES.CONTEXT_SET:
        void this.#onContext(frame);
        return;
      default:
        this.#violation(`an unexpected frame of type ${frame.type}`);
    }
  }

  #onResult(frame: Frame): void {
    const call = this.#inflight.get(frame.id);
    if (call === undefined) return this.#violation(`an answer to unknown call ${frame.id}`);
    this.#inflight.delete(frame.id);
    const next = this.#inflight.keys().next();
    if (next.done !== true) this.#startHead(next.value);
    const status = Number(frame.header.status);
    const sink = this.#sink;
    if (sink === undefined) return;
    if (status !== 0) {
      const text = new TextDecoder().decode(frame.body.subarray(0, 4096));
      // Only "no such method" is the ABI's own meaning; any other status is the plugin's word,
      // so it arrives as ERR_PLUGIN_THREW with the status's code in pluginCode.
      const said = STATUS_CODES[status];
      const code = said === "ERR_METHOD_NOT_FOUND" ? said : "ERR_PLUGIN_THREW";
      const message = this.#msg(
        `"${call.method}" returned status ${status}${text ? `: ${text}` : ""}`,
      );
      const pluginCode = said !== undefined && said !== code ? { pluginCode: said } : {};
      return sink.reply([
        frame.id,
        0,
        new PluginError(code, message, { plugin: this.#o.name, ...pluginCode }),
      ]);
    }
    if (call.binary) return sink.reply([frame.id, 1, frame.body]);
    if (frame.body.length === 0) return sink.reply([frame.id, 1, undefined]);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(frame.body));
    } catch {
      const message = this.#msg(`"${call.method}" returned output that is not UTF-8 JSON`);
      return sink.reply([
        frame.id,
        0,
        new PluginError("ERR_PLUGIN_THREW", message, { plugin: this.#o.name }),
      ]);
    }
    sink.reply([frame.id, 1, value]);
  }

  async #onContext(frame: Frame): Promise<void> {
    const reply = await answerContext(frame, this.#o.context);
    this.#ch.write({ type: FRAME_TYPES.CONTEXT_REPLY, id: frame.id, ...reply });
  }

  #startHead(id: number): void {
    // The CPU baseline is taken at the watchdog's next tick, not here: a /proc read per call
    // would cost ~20 µs on the hot path. A call gets at most one tick (20 ms) of CPU for free.
    this.#headId = id;
    this.#headCpu = -1;
  }

  #startWatchdog(): void {
    if (this.#watchdog !== null || this.#ch.pid <= 0) return;
    this.#watchdog = setInterval(() => this.#check(), WATCHDOG_MS);
  }

  #stopWatchdog(): void {
    if (this.#watchdog !== null) clearInterval(this.#watchdog);
    this.#watchdog = null;
  }

  #check(): void {
    if (this.#inflight.size === 0) return this.#stopWatchdog();
    const m = this.#ch.sample();
    if (m === null) return;
    const { limits } = this.#o;
    let over: string | null = null;
    if (this.#headCpu < 0) this.#headCpu = m.cpuMs;
    if (m.cpuMs - this.#headCpu > limits.cpuTimeMs) {
      over = `call ${this.#headId} used more than ${limits.cpuTimeMs} ms of CPU`;
    } else if (m.rssBytes / 1024 - this.#baseRssKb > limits.heapMb * 1024 + RUNTIME_RSS_SLACK_KB) {
      over = `resident memory grew by ${
        m.rssBytes / 1024 - this.#baseRssKb
      } KiB (limit ${limits.heapMb} MiB)`;
    } else if (this.#o.countSockets) {
      const sockets = countSockets(this.#ch.pid) - this.#baseSockets;
      if (sockets > limits.connections) {
        over = `${sockets} sockets open (limit ${limits.connections})`;
      }
    }
    if (over !== null) {
      this.#stopWatchdog();
      this.#sink?.fail(
        new PluginError("ERR_RESOURCE_LIMIT", this.#msg(over), {
          plugin: this.#o.name,
          hint: "The plugin was killed; raise its limits or fix it",
        }),
        "heap",
      );
    }
  }

  #onEnd(end: ChildEnd): void {
    this.#stopWatchdog();
    const how = ChildChannel.describe(end);
    const tail = this.#ch.stderrTail();
    if (this.#readyHeader === undefined) {
      this.#sink?.fail(
        new PluginError(
          this.#o.sandboxed ? "ERR_SANDBOX" : "ERR_NATIVE_LOAD",
          this.#msg(`the child exited before it was ready (${how})${tail}`),
          { plugin: this.#o.name },
        ),
        "crash",
      );
      return;
    }
    if (end.signal === "SIGXCPU") {
      this.#sink?.fail(
        new PluginError("ERR_RESOURCE_LIMIT", this.#msg("its CPU time limit was hit (SIGXCPU)"), {
          plugin: this.#o.name,
        }),
        "heap",
      );
      return;
    }
    const error = new PluginError("ERR_PLUGIN_CRASHED", this.#msg(`${how}${tail}`), {
      plugin: this.#o.name,
      hint: "Restart the plugin; stderr is in the message",
    }) as PluginError & { signal?: string | null };
    error.signal = end.signal;
    this.#sink?.fail(error, "crash");
  }
}

/**
 * JSON.stringify replacer that refuses what JSON would silently drop or mangle: functions,
 * symbols, and objects that are neither plain objects nor arrays (Map, Set, class instances).
 */
function strictJson(_key: string, value: unknown): unknown {
  if (typeof value === "function" || typeof value === "symbol") {
    throw new TypeError(`A ${typeof value} cannot cross to a native plugin`);
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError("Only plain objects and arrays cross to a native plugin as JSON");
    }
  }
  return value;
}
