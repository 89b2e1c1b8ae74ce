/**
 * Reading Linux procfs files: one open/read/close per file, the `stat` parser and the clock-tick
 * unit. Private to lib/thread_cpu.ts (which re-exports the public parts) and lib/proc_sample.ts.
 *
 * @module
 */

import { closeSync, openSync, readSync } from "node:fs";
import { platform } from "node:os";

/** USER_HZ: the unit of utime/stime in procfs on every mainstream Linux architecture. */
export const CLOCK_TICKS_PER_SECOND = 100;

let scratch: Uint8Array | undefined;
const decoder = new TextDecoder();

/**
 * Whether this platform has Linux procfs. False on macOS and Windows, where every sampler here
 * returns null or an empty list.
 *
 * @returns true on Linux
 * @example
 * ```ts
 * if (!isProcfsAvailable()) logger.warn("resource sampling is off on this OS");
 * ```
 */
export function isProcfsAvailable(): boolean {
  return platform() === "linux";
}

/** Whether an fs error means the process or thread is gone. */
export function isGone(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ESRCH";
}

/** Reads a whole procfs file with one open/read/close, or null when it does not exist. */
export function readProc(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    if (isGone(e)) return null;
    throw e;
  }
  try {
    let buf: Uint8Array = scratch ??= new Uint8Array(16384);
    let len = 0;
    for (;;) {
      const room = buf.length - len;
      const n = readSync(fd, buf, len, room, null);
      len += n;
      // procfs (seq_file) fills the buffer until EOF: a short read is the end, which saves the
      // extra read(2) that would return 0.
      if (n < room) break;
      const bigger: Uint8Array = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = scratch = bigger;
    }
    return decoder.decode(buf.subarray(0, len));
  } catch (e) {
    // The process can exit between open and read: ESRCH.
    if (isGone(e)) return null;
    throw e;
  } finally {
    closeSync(fd);
  }
}

/** The fields of `stat` that the samplers use. */
export interface StatFields {
  name: string;
  state: string;
  utime: number;
  stime: number;
  startTicks: number;
}

/** Parses `stat`; comm may contain spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): StatFields | null {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  const f = text.slice(close + 2).split(" ");
  // f[0] is field 3 (state); utime is field 14, stime 15, starttime 22.
  return {
    name: text.slice(open + 1, close),
    state: f[0] ?? "?",
    utime: Number(f[11]),
    stime: Number(f[12]),
    startTicks: Number(f[19]),
  };
}

/** Converts procfs clock ticks to ms. */
export function ticksToMs(ticks: number, hz: number): number {
  return (ticks * 1000) / hz;
}

/** Validates a `clockTicks` option. */
export function checkHz(hz: number): number {
  if (!(Number.isSafeInteger(hz) && hz > 0)) {
    throw new RangeError(`Cannot sample: clockTicks "${hz}" is not a positive integer`);
  }
  return hz;
}
