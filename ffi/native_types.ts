/**
 * Public types of a running native plugin (implemented in `_session.ts`, created by
 * `startNativePlugin()` in `native_plugin.ts`).
 *
 * @example
 * ```ts
 * import type { NativePlugin } from "./native_types.ts";
 * function stop(p: NativePlugin): Promise<void> {
 *   return p.close();
 * }
 * ```
 * @module
 */
import type { SandboxReport } from "../sandbox/launcher.ts";
import type { ProcessSample } from "../lib/proc_sample.ts";

/** One resource sample of a native plugin's process (the one procfs sampler's, bytes and ms). */
export type NativeMetrics = ProcessSample;

/** Why the child ended. */
export interface NativeExit {
  /** Exit code (128+n codes from the init shell are turned into `signal`). */
  code: number | null;
  /** Signal name that ended the plugin, e.g. "SIGSEGV". */
  signal: string | null;
  /** True unless the plugin exited cleanly after close(). */
  crashed: boolean;
  /** What bulkhead did: "timeout", "resource", "protocol", "killed", "closed" or "crash". */
  reason: "timeout" | "resource" | "protocol" | "killed" | "closed" | "crash";
}

/** A running native plugin. */
export interface NativePlugin {
  /** Plugin name. */
  readonly name: string;
  /** Host pid of the process that loaded the library (behind the launcher chain). */
  readonly pid: number;
  /** What the sandbox enforces. */
  readonly enforcement: SandboxReport;
  /**
   * Calls a method. A Uint8Array input is passed as bytes and the output returned as a
   * Uint8Array; anything else is JSON-encoded and the output parsed as JSON (empty: undefined).
   *
   * @param method method name passed to bh_call()
   * @param input bytes, or any JSON-serialisable value
   * @returns the output
   * @throws {PluginError} ERR_METHOD_NOT_FOUND (BH_ERR_METHOD), ERR_PERMISSION_DENIED
   *   (BH_ERR_DENIED), ERR_RESOURCE_LIMIT (BH_ERR_RESOURCE or a watchdog limit), ERR_PLUGIN_THREW
   *   (other statuses, non-JSON output), ERR_CALL_TIMEOUT, ERR_PLUGIN_CRASHED (with `signal`),
   *   ERR_IPC, ERR_HOST_CLOSED
   */
  call(method: string, input?: unknown): Promise<unknown>;
  /** Calls bh_shutdown() after the queued calls and waits for the exit; kills at the deadline. */
  close(): Promise<void>;
  /** SIGKILLs the plugin now; pending calls reject with ERR_HOST_CLOSED. */
  kill(): void;
  /** Samples the plugin process (null once it is gone or off Linux). */
  metrics(): NativeMetrics | null;
  /**
   * Registers an exit listener (called once; at once if the plugin already exited).
   *
   * @param listener receives the exit reason
   * @returns a function that removes the listener
   */
  onExit(listener: (exit: NativeExit) => void): () => void;
}
