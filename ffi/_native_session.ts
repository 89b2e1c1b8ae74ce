/**
 * The public {@link NativePlugin} handle over the call engine and {@link NativeTransport}:
 * calls, close after the queued calls, kill, metrics and the exit report.
 * @module
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { PluginError } from "../lib/errors.ts";
import { CallEngine } from "../lib/tiers/engine.ts";
import type { ChildEnd } from "../lib/tiers/child_channel.ts";
import type { PluginInstance } from "../lib/tiers/types.ts";
import { KIND_CALL } from "../lib/protocol/messages.ts";
import type { SandboxReport } from "../sandbox/launcher.ts";
import type { NativeMetrics } from "./native_types.ts";
import type { NativeExit, NativePlugin } from "./native_types.ts";
import { NativeTransport, type SessionOptions } from "./_session.ts";

/** See {@link NativePlugin}: the public handle over the call engine. */
export class NativeSession implements NativePlugin {
  readonly name: string;
  enforcement: SandboxReport;
  #t: NativeTransport;
  #engine: CallEngine;
  #o: SessionOptions;
  #reason: NativeExit["reason"] | undefined;
  #closing = false;
  #exit: NativeExit | undefined;
  #listeners = new Set<(exit: NativeExit) => void>();

  constructor(child: ChildProcessWithoutNullStreams, options: SessionOptions) {
    this.name = options.name;
    this.enforcement = options.enforcement;
    this.#o = options;
    this.#t = new NativeTransport(child, options);
    this.#engine = new CallEngine({
      name: options.name,
      transport: this.#t,
      shutdownGraceMs: options.shutdownTimeoutMs,
      anyMethod: true,
      ...(options.calls !== undefined ? { calls: options.calls } : {}),
      onFailure: (instance, failure) => {
        this.#reason ??= failure.kind === "heap" ? "resource" : failure.kind;
        options.onFailure?.(instance, failure);
      },
    });
    void this.#t.channel.exited.then((end) => this.#onExit(end));
  }

  /** The call engine, as the host's tiers see a plugin. @internal */
  get instance(): PluginInstance {
    return this.#engine;
  }

  /** Host pid of the process that loaded the library. */
  get pid(): number {
    return this.#t.channel.pid;
  }

  /** Waits for READY; rejects with the child's FAIL code, or a start error. @internal */
  async ready(timeoutMs: number): Promise<Record<string, unknown>> {
    try {
      await this.#engine.start(timeoutMs);
    } catch (error) {
      this.#reason ??= "crash";
      await this.#engine.terminate(error as PluginError);
      throw error;
    }
    return this.#t.readyHeader ?? {};
  }

  /** Records the real pid and final enforcement, starts sampling baselines. @internal */
  activate(pid: number, enforcement: SandboxReport): void {
    this.#t.activate(pid);
    this.enforcement = enforcement;
  }

  call(method: string, input?: unknown): Promise<unknown> {
    if (typeof method !== "string") throw new TypeError("Method name must be a string");
    const args = input === undefined ? [] : [input];
    return this.#engine.send(KIND_CALL, method, args, this.#o.callTimeoutMs);
  }

  async close(): Promise<void> {
    if (this.#exit !== undefined) return;
    this.#closing = true;
    await this.#engine.drain(this.#o.shutdownTimeoutMs);
    await this.#engine.terminate(this.#stopped("closed"));
  }

  kill(): void {
    if (this.#exit !== undefined) return;
    this.#reason ??= "killed";
    this.#t.kill();
    void this.#engine.terminate(this.#stopped("killed"));
  }

  metrics(): NativeMetrics | null {
    return this.#t.metrics();
  }

  onExit(listener: (exit: NativeExit) => void): () => void {
    if (this.#exit !== undefined) queueMicrotask(() => listener(this.#exit as NativeExit));
    else this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #stopped(how: string): PluginError {
    return new PluginError(
      "ERR_PLUGIN_NOT_ACTIVE",
      `Cannot finish call: native plugin "${this.name}" was ${how}`,
      { plugin: this.name },
    );
  }

  #onExit(end: ChildEnd): void {
    const clean = this.#closing && end.code === 0;
    let reason = this.#reason ?? (clean ? "closed" : "crash");
    if (this.#reason === undefined && end.signal === "SIGXCPU") reason = "resource";
    this.#exit = { code: end.code, signal: end.signal, crashed: !clean, reason };
    for (const listener of this.#listeners) listener(this.#exit);
    this.#listeners.clear();
  }
}
