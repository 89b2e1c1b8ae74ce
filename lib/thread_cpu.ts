/**
 * Linux procfs sampling: per-thread CPU time and names (whole-process samples: see
 * lib/proc_sample.ts, re-exported here).
 *
 * Threads: `/proc/<pid>/task/<tid>/stat` (utime + stime) and `.../comm` (name, ≤ 15 bytes). CPU
 * ticks are converted with {@link CLOCK_TICKS_PER_SECOND} = 100: procfs reports in USER_HZ, which
 * the kernel fixes at 100 for its user ABI on x86, arm, arm64, riscv, powerpc and s390 whatever
 * CONFIG_HZ is (`getconf CLK_TCK` prints it). Pass `clockTicks` if you run somewhere else.
 * Resolution is therefore 10 ms.
 *
 * Processes: {@link sampleProcess} and {@link sampleProcesses} live in lib/proc_sample.ts and are
 * re-exported here.
 *
 * Mapping a worker to its thread (measured on Linux 6.18, see the tests):
 * - Node 26 `node:worker_threads` and Bun 1.4 (`node:worker_threads` and Web `Worker`) set the
 *   thread's comm to the worker's `name` option (truncated to 15 bytes; default "WorkerThread" in
 *   Node, "Worker" in Bun): give each worker a unique short name, then {@link findThreads}.
 * - Deno 2.9 always names worker threads `worker-N` (N counts every worker the process created,
 *   nested ones included) and ignores `name`. Diff {@link listThreads} before creation and after
 *   the worker's ready handshake ({@link findNewThreads}); serialize worker creation or the diff
 *   is ambiguous. Do not diff right after the constructor: a tokio thread is briefly also called
 *   `worker-N` before it renames itself `tokio-runtime-w`.
 * - Inside a worker, {@link currentThreadId} (sync `readlink /proc/thread-self`) gives the tid in
 *   Node, Bun and unrestricted Deno; a Deno worker with restricted permissions is refused (Deno
 *   requires "all" permissions for `/proc/thread-self`), so it returns null there.
 * - Bun starts helper threads per worker (`JSCWarmUp`, `JITWorker`): JIT work done for a worker
 *   is not on its thread and is not attributed to it.
 *
 * Every function returns null / an empty list on non-Linux platforms ({@link isProcfsAvailable}).
 *
 * @example
 * ```ts
 * import { listThreads } from "./thread_cpu.ts";
 * for (const t of listThreads()) console.log(t.tid, t.name, t.cpuMs);
 * ```
 * @module
 */

import { readdirSync, readlinkSync } from "node:fs";
import {
  checkHz,
  CLOCK_TICKS_PER_SECOND,
  isGone,
  isProcfsAvailable,
  parseStat,
  readProc,
  ticksToMs,
} from "./_procfs.ts";

export { CLOCK_TICKS_PER_SECOND, isProcfsAvailable } from "./_procfs.ts";
export {
  type ProcessSample,
  sampleProcess,
  sampleProcesses,
  type SampleProcessOptions,
  type SocketCounts,
} from "./proc_sample.ts";

/** CPU time and name of one thread. */
export interface ThreadCpu {
  /** Kernel thread id. */
  tid: number;
  /** Thread name from `comm` (≤ 15 bytes). */
  name: string;
  /** utime + stime, milliseconds (10 ms resolution). */
  cpuMs: number;
  /** Start time in clock ticks since boot: with `tid`, identifies the thread across tid reuse. */
  startTicks: number;
}

/** Options naming the process whose threads to read. */
export interface ThreadOptions {
  /** Process id; default `"self"`. */
  pid?: number | "self";
  /** Clock ticks per second; default {@link CLOCK_TICKS_PER_SECOND}. */
  clockTicks?: number;
}

/**
 * Reads one thread's CPU time and name.
 *
 * @param tid thread id
 * @param options process (default self), clock ticks
 * @returns the thread, or null when it is gone (or not on Linux)
 * @example
 * ```ts
 * readThread(4021)?.cpuMs;
 * ```
 */
export function readThread(tid: number, options: ThreadOptions = {}): ThreadCpu | null {
  if (!isProcfsAvailable()) return null;
  const hz = checkHz(options.clockTicks ?? CLOCK_TICKS_PER_SECOND);
  const base = `/proc/${options.pid ?? "self"}/task/${tid}`;
  const stat = readProc(`${base}/stat`);
  if (stat === null) return null;
  const s = parseStat(stat);
  if (s === null || s.state === "Z" || s.state === "X") return null;
  // comm is the live name (stat's copy is the same field, but comm is the documented interface).
  const comm = readProc(`${base}/comm`);
  return {
    tid,
    name: comm === null ? s.name : comm.replace(/\n$/, ""),
    cpuMs: ticksToMs(s.utime + s.stime, hz),
    startTicks: s.startTicks,
  };
}

/**
 * Lists the threads of a process with their CPU time and names.
 *
 * @param options process (default self), clock ticks
 * @returns threads in tid order; empty when the process is gone or not on Linux
 * @example
 * ```ts
 * listThreads().filter((t) => t.name.startsWith("worker-"));
 * ```
 */
export function listThreads(options: ThreadOptions = {}): ThreadCpu[] {
  if (!isProcfsAvailable()) return [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${options.pid ?? "self"}/task`);
  } catch (e) {
    if (isGone(e)) return [];
    throw e;
  }
  const out: ThreadCpu[] = [];
  for (const t of tids) {
    const info = readThread(Number(t), options);
    if (info !== null) out.push(info);
  }
  return out.sort((a, b) => a.tid - b.tid);
}

/**
 * Threads of a process whose name matches.
 *
 * @param name exact comm (compare with at most 15 bytes) or a pattern
 * @param options process (default self), clock ticks
 * @returns matching threads
 * @example
 * ```ts
 * // Node/Bun: new Worker(url, { name: "bh:7" }) then
 * findThreads("bh:7")[0]?.tid;
 * ```
 */
export function findThreads(name: string | RegExp, options: ThreadOptions = {}): ThreadCpu[] {
  return listThreads(options).filter((t) =>
    typeof name === "string" ? t.name === name : name.test(t.name)
  );
}

/**
 * Threads that exist now but did not in `before` (compared by tid and start time).
 *
 * @param before an earlier {@link listThreads} result
 * @param options process (default self), clock ticks, and an optional name filter
 * @returns the new threads, e.g. the `worker-N` thread of a Deno worker created in between
 * @example
 * ```ts
 * const before = listThreads();
 * // create the worker, await its ready message
 * const [t] = findNewThreads(before, { name: /^worker-\d+$/ });
 * ```
 */
export function findNewThreads(
  before: readonly ThreadCpu[],
  options: ThreadOptions & { name?: string | RegExp } = {},
): ThreadCpu[] {
  const known = new Set(before.map((t) => `${t.tid}:${t.startTicks}`));
  const { name } = options;
  return listThreads(options).filter((t) =>
    !known.has(`${t.tid}:${t.startTicks}`) &&
    (name === undefined || (typeof name === "string" ? t.name === name : name.test(t.name)))
  );
}

/**
 * The calling thread's tid, from a synchronous `readlink("/proc/thread-self")` (which the
 * kernel resolves for the calling thread; an async read would run on a pool thread).
 *
 * @returns the tid, or null when not on Linux or when the runtime refuses the read (a Deno
 *   worker without "all" read permission gets NotCapable)
 * @example
 * ```ts
 * // inside a worker: parentPort.postMessage({ tid: currentThreadId() });
 * ```
 */
export function currentThreadId(): number | null {
  if (!isProcfsAvailable()) return null;
  let link: string;
  try {
    link = readlinkSync("/proc/thread-self");
  } catch (e) {
    if ((e as { name?: unknown } | null)?.name === "NotCapable" || isGone(e)) return null;
    throw e;
  }
  const tid = Number(link.slice(link.lastIndexOf("/") + 1));
  return Number.isSafeInteger(tid) && tid > 0 ? tid : null;
}

/** One reading of {@link ThreadCpuSampler}. */
export interface ThreadCpuReading {
  /** Thread name now. */
  name: string;
  /** Cumulative CPU time, ms. */
  cpuMs: number;
  /** CPU time since the previous reading (since construction for the first), ms. */
  deltaMs: number;
}

/**
 * Attributes CPU time to one thread (e.g. a worker) across readings, and notices when the
 * thread is gone or its tid was reused by a new thread.
 *
 * @example
 * ```ts
 * const sampler = new ThreadCpuSampler(tid);
 * setInterval(() => {
 *   const r = sampler.sample();
 *   if (r === null) return; // thread ended
 *   metrics.setGauges({ cpuTimeMs: r.cpuMs });
 * }, 1000);
 * ```
 */
export class ThreadCpuSampler {
  /** Thread id followed. */
  readonly tid: number;
  #options: ThreadOptions;
  #startTicks: number | undefined;
  #lastMs = 0;

  /**
   * Starts following a thread; the first {@link sample} reports the CPU used since now.
   *
   * @param tid thread id (from {@link currentThreadId}, {@link findThreads} or
   *   {@link findNewThreads})
   * @param options process (default self), clock ticks
   * @throws {RangeError} when tid is not a positive integer
   */
  constructor(tid: number, options: ThreadOptions = {}) {
    if (!(Number.isSafeInteger(tid) && tid > 0)) {
      throw new RangeError(`Cannot sample thread: tid "${tid}" is not a positive integer`);
    }
    this.tid = tid;
    this.#options = options;
    const first = readThread(tid, options);
    if (first !== null) {
      this.#startTicks = first.startTicks;
      this.#lastMs = first.cpuMs;
    }
  }

  /**
   * Reads the thread now.
   *
   * @returns cumulative and delta CPU time, or null when the thread is gone, was never found,
   *   or its tid now belongs to a different thread
   */
  sample(): ThreadCpuReading | null {
    const t = readThread(this.tid, this.#options);
    if (t === null || t.startTicks !== this.#startTicks) return null;
    const deltaMs = t.cpuMs - this.#lastMs;
    this.#lastMs = t.cpuMs;
    return { name: t.name, cpuMs: t.cpuMs, deltaMs };
  }
}
