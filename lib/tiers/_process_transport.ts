/**
 * The process tier's transport: frames to and from a sandboxed JS child over its stdio
 * (plumbing shared with the native tier in `child_channel.ts`). Private to lib/tiers.
 * @module
 */

import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { deserialize, serialize } from "node:v8";
import { isErrorCode, PluginError } from "../errors.ts";
import type { Transport, TransportSink } from "./types.ts";
import { ChildChannel, type ChildEnd } from "./child_channel.ts";
import type { Request } from "../protocol/messages.ts";
import { FRAME_TYPES } from "../protocol/frames.ts";
import type { Frame } from "../protocol/frames.ts";

/** What the child reported once its sandbox was complete. */
export interface ChildStart {
  /** Pid inside the child's pid namespace. */
  nsPid: number;
  /** Whether the seccomp filter is on. */
  seccomp: boolean;
  /** Landlock result of stage 1, or null. */
  landlock: { filesystem?: boolean; network?: boolean; abi?: number } | null;
}

type Listener = (event: MessageEvent) => void;
/**
 * Frames to and from a process-tier child: v8-serialized `[kind, id, name, payload]` requests and
 * `[id, ok, value]` replies (validated by the engine), Comlink context messages, and the sandbox
 * report (READY/FAIL) before the load reply.
 */
export class ProcessTransport implements Transport {
  #ch: ChildChannel;
  #name: string;
  #sink: TransportSink | undefined;
  #started = false;
  #ctx = new Set<Listener>();
  #onClose: (() => void) | undefined;
  #onStarted: (start: ChildStart) => number;

  constructor(
    child: ChildProcessWithoutNullStreams,
    o: {
      name: string;
      maxFrameBytes: number;
      onStarted: (start: ChildStart) => number;
    },
  ) {
    this.#name = o.name;
    this.#onStarted = o.onStarted;
    this.#ch = new ChildChannel(child, {
      name: o.name,
      maxFrameBytes: o.maxFrameBytes,
      onFrame: (frame) => this.#onFrame(frame),
      onBroken: (error) => this.#sink?.fail(error, "protocol"),
      onEnd: (end) => this.#onEnd(end),
    });
  }

  connect(sink: TransportSink): void {
    this.#sink = sink;
  }

  /** Registers what to close when the child is gone (the context channel). */
  onClose(close: () => void): void {
    this.#onClose = close;
  }

  /** Sends the LOAD frame. */
  load(header: Record<string, unknown>): void {
    this.#ch.write({ type: FRAME_TYPES.LOAD, id: 0, header });
  }

  post(request: Request): void {
    this.#ch.write({ type: FRAME_TYPES.CALL, id: request[1], body: serialize(request) });
  }

  stats(): Record<string, number> {
    return this.#ch.stats();
  }

  async close(graceMs: number): Promise<void> {
    await this.#ch.shutdown(graceMs);
    this.#closeContext();
  }

  kill(): void {
    this.#ch.kill();
  }

  /** A MessagePort look-alike carrying the Comlink messages of the context API. */
  contextPort(): MessagePort {
    const port = {
      postMessage: (message: unknown) => {
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
              value: { name: "PluginError", code: "ERR_INVALID_INPUT", message: "Unclonable" },
            },
          });
        }
        this.#ch.write({ type: FRAME_TYPES.CONTEXT_REPLY, id: 0, body });
      },
      addEventListener: (_t: string, l: Listener) => this.#ctx.add(l),
      removeEventListener: (_t: string, l: Listener) => this.#ctx.delete(l),
      start: () => {},
      close: () => this.#ctx.clear(),
    };
    return port as unknown as MessagePort;
  }

  #closeContext(): void {
    const close = this.#onClose;
    this.#onClose = undefined;
    close?.();
    this.#ctx.clear();
  }

  #violation(what: string): void {
    this.#sink?.violation(what);
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case FRAME_TYPES.RESULT: {
        let reply: unknown;
        try {
          reply = deserialize(frame.body);
        } catch {
          return this.#violation("a reply that cannot be decoded");
        }
        if (isOutOfMemory(reply)) {
          // Bun turns an allocation refused by RLIMIT_DATA into a RangeError inside the plugin;
          // its heap is then unreliable, so the plugin is stopped as the worker tier's OOM is.
          return this.#sink?.fail(
            new PluginError(
              "ERR_RESOURCE_LIMIT",
              `Cannot continue plugin "${this.#name}": it ran out of memory (limit reached)`,
              { hint: "Raise limits.heapMb or fix the plugin", plugin: this.#name },
            ),
            "heap",
          );
        }
        return this.#sink?.reply(reply);
      }
      case FRAME_TYPES.CONTEXT_GET: {
        let data: unknown;
        try {
          data = deserialize(frame.body);
        } catch {
          return this.#violation("a context message that cannot be decoded");
        }
        for (const l of this.#ctx) l({ data } as MessageEvent);
        return;
      }
      case FRAME_TYPES.READY: {
        if (this.#started) return this.#violation("a second sandbox report");
        this.#started = true;
        const arg = frame.header.landlock;
        try {
          this.#ch.pid = this.#onStarted({
            nsPid: Number(frame.header.pid),
            seccomp: frame.header.seccomp === true,
            landlock: typeof arg === "object" && arg !== null ? arg : null,
          });
        } catch (error) {
          this.#sink?.fail(error as PluginError, "crash");
        }
        return;
      }
      case FRAME_TYPES.FAIL: {
        const code = String(frame.header.code);
        this.#sink?.fail(
          new PluginError(
            isErrorCode(code) ? code : "ERR_SANDBOX",
            `Cannot start plugin "${this.#name}": ${String(frame.header.message).slice(0, 2000)}`,
            { plugin: this.#name },
          ),
          "crash",
        );
        return;
      }
      default:
        return this.#violation(`an unexpected frame of type ${frame.type}`);
    }
  }

  #onEnd(end: ChildEnd): void {
    this.#closeContext();
    const how = ChildChannel.describe(end);
    const tail = this.#ch.stderrTail();
    if (!this.#started) {
      this.#sink?.fail(
        new PluginError(
          end.spawnError !== null || end.code === 126 ? "ERR_SANDBOX" : "ERR_PLUGIN_CRASHED",
          `Cannot start plugin "${this.#name}": ${how}${tail}`,
          { plugin: this.#name, hint: "The sandbox or the runtime failed to start" },
        ),
        "crash",
      );
      return;
    }
    const heap = this.#ch.stderrSaysOutOfMemory();
    this.#sink?.fail(
      new PluginError(
        "ERR_PLUGIN_CRASHED",
        `Cannot continue plugin "${this.#name}": ${how}${heap ? " (out of memory)" : ""}${tail}`,
        {
          hint: "Check the plugin for uncaught errors, memory exhaustion or process.exit()",
          plugin: this.#name,
        },
      ),
      heap ? "heap" : "crash",
    );
  }
}

function isOutOfMemory(reply: unknown): boolean {
  if (!Array.isArray(reply) || reply[1] !== 0) return false;
  const e = reply[2] as { name?: unknown; message?: unknown } | null;
  return typeof e === "object" && e !== null && e.name === "RangeError" &&
    /^(out of memory|array buffer allocation failed)$/i.test(String(e.message));
}
