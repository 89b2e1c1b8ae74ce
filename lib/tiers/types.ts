/**
 * The vocabulary every isolation tier shares: what the host holds of a running plugin
 * ({@link PluginInstance}), why one failed ({@link InstanceFailure}), what it reports back
 * ({@link InstanceCallbacks}), and the small {@link Transport} interface the one call engine
 * (`engine.ts`) drives, the way Comlink's core drives an `Endpoint`.
 * @module
 */

import type { PluginError } from "../errors.ts";
import type { Denial, LimitDetail, PluginBudgets } from "../broker/context.ts";
import type { ReadyInfo, Request } from "../protocol/messages.ts";

/**
 * What the host needs from a running plugin, whatever runs it: a worker in this process, a JS
 * plugin in a sandboxed child, or a native library in a sandboxed child. Requests use the kinds
 * of `lib/protocol/messages.ts`.
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
  /** Sends one request (call, hook, lifecycle, stats) and resolves with the reply. */
  send(kind: number, name: string, payload: unknown, timeoutMs: number): Promise<unknown>;
  /** Resolves when no call is pending, or after `timeoutMs` (false then). */
  drain(timeoutMs: number): Promise<boolean>;
  /** Stops it and rejects every pending call with `error`. */
  terminate(error: PluginError): Promise<void>;
}

/**
 * Why an instance failed: `timeout` (a deadline passed), `crash` (the worker or process died),
 * `heap` (it ran out of memory or hit a resource limit), `protocol` (it sent a malformed
 * message: hostile or broken).
 */
export type FailureKind = "timeout" | "crash" | "heap" | "protocol";

/** Why an instance failed, as the host sees it. */
export interface InstanceFailure {
  /** The error every pending call of the instance was rejected with. */
  error: PluginError;
  /** What kind of failure, for the violation tracker. */
  kind: FailureKind;
}

/** How many requests the engine sends one plugin at once and lets wait (host options). */
export interface CallLimits {
  /** Calls and hooks sent at once; more wait host-side. Default 256. */
  maxInFlight?: number;
  /** Calls that may wait; one more is refused with `ERR_BUSY`. Default 10,000. */
  maxQueued?: number;
}

/** What the host bounds of what one plugin sends it, passed to every tier's broker. */
export type { PluginBudgets };

/** What every tier reports back to the host about an instance it started. */
export interface InstanceCallbacks {
  /** A permission the host refused on the plugin's behalf. */
  onDenied: (denial: Denial) => void;
  /** The plugin hit a limit the host enforces (brokered connections). */
  onLimit: (detail: LimitDetail) => void;
  /** The plugin registered a hook handler (`priority` -1: use the default). */
  onHook: (instance: PluginInstance, name: string, priority: number) => void;
  /** The instance failed (timeout, crash, resource limit, protocol violation). */
  onFailure: (instance: PluginInstance, failure: InstanceFailure) => void;
}

/** What a transport reports to the engine. Everything in `reply` is untrusted plugin input. */
export interface TransportSink {
  /** A reply arrived (any value: the engine validates its shape). */
  reply(message: unknown): void;
  /** The transport failed on its own: the plugin exited, crashed or broke the frame format. */
  fail(error: PluginError, kind: FailureKind): void;
  /**
   * The plugin sent something the protocol does not allow (`what`, e.g. "a second sandbox
   * report"): the engine fails it with the one `ERR_IPC` error of every tier.
   */
  violation(what: string): void;
}

/**
 * How the call engine reaches one plugin: a worker's MessagePort, or frames to a sandboxed
 * child. A transport moves requests and replies and reports its own end; it keeps no pending
 * table, no deadlines and no error text of its own.
 */
export interface Transport {
  /** Name of the plugin's OS thread in this process, when the runtime applies one. */
  readonly threadName?: string | undefined;
  /** Called once by the engine before any request. */
  connect(sink: TransportSink): void;
  /**
   * Sends one request. Throws when the payload cannot be encoded (not structured-cloneable, not
   * JSON for the native tier): the engine turns that into `ERR_INVALID_INPUT`.
   */
  post(request: Request): void;
  /**
   * Resource sample measured by the host (procfs for child tiers), or undefined when the guest
   * reports its own (the worker tier).
   */
  stats?(): Record<string, number> | undefined;
  /** Asks the plugin to stop, waits at most `graceMs`, then kills it. Resolves when it is gone. */
  close(graceMs: number): Promise<void>;
  /** Stops the plugin at once (SIGKILL of the real pid, or worker termination). */
  kill(): void;
}
