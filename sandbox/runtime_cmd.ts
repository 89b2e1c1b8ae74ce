/**
 * The one place that decides how to start a child with the runtime running the host.
 * Reads `process.versions` only (present in Node, Bun and Deno): no runtime globals.
 *
 * @example
 * ```ts
 * const { name, argv } = runtimeCommand("/abs/lib/guest/native_child.ts", { heapMb: 32 });
 * ```
 * @module
 */

import type { RuntimeName } from "../permissions/enforcement.ts";
import { detectRuntime } from "../lib/runtime/detect.ts";

export type { RuntimeName };

/** How to start a child script. */
export interface RuntimeCommand {
  /** Runtime running the host (and the child). */
  name: RuntimeName;
  /** argv: executable, flags, script. */
  argv: string[];
  /** Environment variables the runtime needs in the child (besides PATH). */
  env: Record<string, string>;
}

/**
 * Builds the argv that runs `script` with the host's runtime.
 *
 * @param script absolute path of the `.ts` entry
 * @param options `heapMb`: JS heap cap for the child's own JavaScript (V8 runtimes only)
 * @returns runtime name, argv and environment
 * @example
 * ```ts
 * runtimeCommand("/x/_child.ts", { heapMb: 32 }).argv[0] === process.execPath; // true
 * ```
 */
export function runtimeCommand(script: string, options: { heapMb: number }): RuntimeCommand {
  const name = detectRuntime();
  const heap = `--max-old-space-size=${options.heapMb}`;
  if (name === "deno") {
    return {
      name,
      argv: [
        process.execPath,
        "run",
        "-A",
        "--no-prompt",
        "--no-check",
        `--v8-flags=${heap}`,
        script,
      ],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    };
  }
  if (name === "bun") return { name, argv: [process.execPath, script], env: {} };
  // No libuv io_uring ring for file I/O: the child's seccomp filter denies io_uring (its socket
  // and connect operations would bypass the filter). libuv 1.52 still creates its epoll-batching
  // rings; the child never touches them after the filter is on, and exits with _exit().
  return { name, argv: [process.execPath, heap, script], env: { UV_USE_IO_URING: "0" } };
}
