/**
 * The sandboxed-child plumbing the process and native tiers share: frames on the child's stdio
 * pipes, a bounded stderr tail for messages, exit/signal mapping (the init shell reports a signal
 * as 128+n), and SIGKILL of the real plugin pid behind the launcher chain. Tier-specific meaning
 * of frames stays in the tier's transport.
 * @module
 */

import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { constants } from "node:os";
import { PluginError } from "../errors.ts";
import { type ProcessSample, sampleProcess } from "../proc_sample.ts";
import { encodeFrame, FRAME_TYPES, FrameDecoder } from "../protocol/frames.ts";
import type { Frame } from "../protocol/frames.ts";

/** How the child ended. */
export interface ChildEnd {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  /** Signal name (also when the init shell reported 128+n). */
  signal: string | null;
  /** The spawn error, when the launcher did not start. */
  spawnError: Error | null;
}

/** Settings of a {@link ChildChannel}. */
export interface ChildChannelOptions {
  /** Plugin name, for messages. */
  name: string;
  /** Largest frame either way. */
  maxFrameBytes: number;
  /** One decoded frame from the child (untrusted). */
  onFrame: (frame: Frame) => void;
  /** The child broke the frame format. */
  onBroken: (error: PluginError) => void;
  /** The child is gone. */
  onEnd: (end: ChildEnd) => void;
}

const STDERR_KEEP = 8192;

/** See the module doc. */
export class ChildChannel {
  #child: ChildProcessWithoutNullStreams;
  #o: ChildChannelOptions;
  #decoder: FrameDecoder;
  #stderr = "";
  #end: ChildEnd | undefined;
  #pid = -1;
  /** Resolves once the child exited (or failed to spawn). */
  readonly exited: Promise<ChildEnd>;

  /**
   * @param child the launcher process, spawned with three pipes
   * @param options name, frame limit and handlers
   */
  constructor(child: ChildProcessWithoutNullStreams, options: ChildChannelOptions) {
    this.#child = child;
    this.#o = options;
    this.#decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    child.stdout.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    child.stderr.on("data", (chunk: Uint8Array) => {
      this.#stderr = (this.#stderr + new TextDecoder().decode(chunk)).slice(-STDERR_KEEP);
    });
    child.stdin.on("error", () => {}); // EPIPE after a crash: the exit handler reports it
    this.exited = new Promise((resolve) => {
      child.on("error", (error) => {
        // A spawn failure (ENOENT, EACCES) emits no "exit".
        if (child.pid === undefined) resolve(this.#onExit(null, null, error));
      });
      child.on("exit", (code, signal) => resolve(this.#onExit(code, signal, null)));
    });
  }

  /** Pid of the launcher (the direct child), or -1. */
  get launcherPid(): number {
    return this.#child.pid ?? -1;
  }

  /** Pid of the plugin's runtime in the host's pid namespace (-1 until known). */
  get pid(): number {
    return this.#pid;
  }

  set pid(pid: number) {
    this.#pid = pid;
  }

  /** Whether the child has exited. */
  get gone(): boolean {
    return this.#end !== undefined;
  }

  /**
   * Writes one frame; a no-op once the child is gone.
   *
   * @param frame the frame
   * @throws {PluginError} ERR_IPC when it is over the frame limit
   */
  write(frame: Parameters<typeof encodeFrame>[0]): void {
    if (this.#end !== undefined) return;
    this.#child.stdin.write(encodeFrame(frame, this.#o.maxFrameBytes));
  }

  /** The last lines the child wrote to stderr, ready to append to a message (or ""). */
  stderrTail(): string {
    const tail = this.#stderr.trim().slice(-400);
    return tail === "" ? "" : `; stderr: "${tail}"`;
  }

  /** Whether stderr says the runtime ran out of memory. */
  stderrSaysOutOfMemory(): boolean {
    return /out of memory|heap limit|allocation failed|OOM/i.test(this.#stderr);
  }

  /** A procfs sample of the plugin's process, or null before its pid is known or once it is gone. */
  sample(): ProcessSample | null {
    return this.#end !== undefined || this.#pid <= 0 ? null : sampleProcess(this.#pid);
  }

  /** The sample in the shape of a stats reply (`{}` when there is none). */
  stats(): Record<string, number> {
    const m = this.sample();
    return m === null ? {} : {
      rssBytes: m.rssBytes,
      cpuMs: m.cpuMs,
      threads: m.threads,
      fds: m.fdCount,
      connections: m.connectionCount,
    };
  }

  /** SIGKILLs the plugin and the launcher (unshare --kill-child takes the pid namespace along). */
  kill(): void {
    if (this.#end !== undefined) return;
    try {
      if (this.#pid > 0 && this.#pid !== this.#child.pid) process.kill(this.#pid, "SIGKILL");
    } catch {
      // already gone
    }
    this.#child.kill("SIGKILL");
  }

  /**
   * Sends SHUTDOWN and waits for the exit; SIGKILL after `graceMs`.
   *
   * @param graceMs how long the plugin may take to stop
   * @returns how the child ended
   */
  async shutdown(graceMs: number): Promise<ChildEnd> {
    if (this.#end !== undefined) return this.#end;
    this.write({ type: FRAME_TYPES.SHUTDOWN, id: 0 });
    const timer = setTimeout(() => this.kill(), graceMs);
    const end = await this.exited;
    clearTimeout(timer);
    return end;
  }

  /**
   * A sentence for how the child ended, e.g. "the process died of SIGSEGV".
   *
   * @param end how it ended
   * @returns the sentence
   */
  static describe(end: ChildEnd): string {
    return end.spawnError !== null
      ? `the launcher did not start (${end.spawnError.message})`
      : end.signal !== null
      ? `the process died of ${end.signal}`
      : `the process exited with code ${end.code}`;
  }

  #onData(chunk: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#o.onBroken(
        error instanceof PluginError ? error : new PluginError(
          "ERR_IPC",
          `Cannot continue plugin "${this.#o.name}": it broke the frame format`,
          { cause: error, plugin: this.#o.name },
        ),
      );
      return;
    }
    for (const frame of frames) {
      if (this.#end !== undefined) return;
      this.#o.onFrame(frame);
    }
  }

  #onExit(code: number | null, signal: string | null, spawnError: Error | null): ChildEnd {
    if (this.#end !== undefined) return this.#end;
    let sig = signal;
    let c = code;
    if (sig === null && c !== null && c > 128 && c < 160) {
      sig = signalName(c - 128);
      if (sig !== null) c = null;
    }
    const end: ChildEnd = { code: sig === null ? c : null, signal: sig, spawnError };
    this.#end = end;
    this.#o.onEnd(end);
    return end;
  }
}

/**
 * Name of a signal number.
 *
 * @param n signal number
 * @returns e.g. "SIGSEGV", or null
 */
export function signalName(n: number): string | null {
  for (const [name, value] of Object.entries(constants.signals)) if (value === n) return name;
  return null;
}
