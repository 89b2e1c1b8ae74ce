/**
 * The small interface every runtime adapter implements. Nothing outside `lib/runtime/` touches a
 * runtime's worker API directly.
 * @module
 */

import type { SerializedError } from "../errors.ts";
import type { Grants } from "../../permissions/grants.ts";
import type { RuntimeName } from "../../permissions/enforcement.ts";
import type { WorkerInitData } from "../protocol/messages.ts";

/** What an adapter needs to start one plugin worker. */
export interface SpawnRequest {
  /** Plugin name, for error messages. */
  name: string;
  /** Derived grants. */
  grants: Grants;
  /**
   * Thread name (at most 15 bytes) so the host can find the worker's thread in
   * `/proc/self/task/*\/comm` and read its CPU time (Node and Bun honour it; Deno names threads
   * `worker-N`).
   */
  threadName: string;
  /**
   * Deno only: false starts the plugin in one restricted Web Worker (~40 ms) instead of a
   * heap-limited `worker_threads` worker inside a loader (~600 ms); the heap is then unlimited.
   */
  heapLimit: boolean;
  /** V8 heap limit in MiB (where the runtime honours one). */
  heapMb: number;
  /** Values of the declared environment variables, the only ones the worker sees. */
  env: Record<string, string>;
  /** Plain data for the worker. */
  init: WorkerInitData;
  /** Worker end of the call channel. */
  callPort: MessagePort;
  /** Worker end of the context channel. */
  ctxPort: MessagePort;
}

/** Why a worker went away. */
export interface ExitReason {
  /** Exit code when the thread exited. */
  code: number | undefined;
  /** The uncaught error, when it crashed. */
  error: SerializedError | undefined;
}

/** A running plugin worker. */
export interface WorkerHandle {
  /** Stops the worker (best effort where the runtime cannot stop a busy thread). */
  terminate(): Promise<void>;
  /** Called once when the worker exits or crashes. */
  onExit(callback: (reason: ExitReason) => void): void;
}

/** One runtime's way of starting plugin workers. */
export interface RuntimeAdapter {
  /** Which runtime this is. */
  readonly name: RuntimeName;
  /** Absolute paths of framework code a plugin thread needs read access to, to start. */
  frameworkRead(): string[];
  /** Starts a worker for a plugin. */
  spawn(request: SpawnRequest): WorkerHandle;
}
