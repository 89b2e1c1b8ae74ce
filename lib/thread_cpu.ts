/**
 * Linux procfs sampling: per-thread CPU time and names, and cheap whole-process samples.
 *
 * Threads: `/proc/<pid>/task/<tid>/stat` (utime + stime) and `.../comm` (name, ≤ 15 bytes). CPU
 * ticks are converted with {@link CLOCK_TICKS_PER_SECOND} = 100: procfs reports in USER_HZ, which
 * the kernel fixes at 100 for its user ABI on x86, arm, arm64, riscv, powerpc and s390 whatever
 * CONFIG_HZ is (`getconf CLK_TCK` prints it). Pass `clockTicks` if you run somewhere else.
 * Resolution is therefore 10 ms.
 *
 * Processes: {@link sampleProcess} reads `stat` (utime, stime), `status` (VmRSS, VmHWM, Threads),
 * the fd count (the size of `fd/`, one stat(2) on Linux ≥ 6.2; a directory listing before), and
 * `net/sockstat` + `net/sockstat6`: about 60 µs per process. {@link sampleProcesses} reads the
 * sockstat files once per network namespace and gets a pass over 100 processes to about 4 ms.
 * `net/tcp` is read only on request: it walks the kernel's global TCP hash and costs about a
 * millisecond or more per read even in an empty network namespace.
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
 * import { listThreads, sampleProcess } from "./thread_cpu.ts";
 * for (const t of listThreads()) console.log(t.tid, t.name, t.cpuMs);
 * const s = sampleProcess(12345); // null once the process is gone
 * ```
 * @module
 */

import { closeSync, openSync, readdirSync, readlinkSync, readSync, statSync } from "node:fs";
import { platform } from "node:os";

/** USER_HZ: the unit of utime/stime in procfs on every mainstream Linux architecture. */
export const CLOCK_TICKS_PER_SECOND = 100;

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

/** Socket counts from `net/sockstat` and `net/sockstat6` ("inuse" lines). */
export interface SocketCounts {
  /** IPv4 TCP sockets (listening ones included). */
  tcp: number;
  /** IPv4 UDP sockets. */
  udp: number;
  /** IPv6 TCP sockets. */
  tcp6: number;
  /** IPv6 UDP sockets. */
  udp6: number;
}

/** One sample of a process. */
export interface ProcessSample {
  /** Process id sampled. */
  pid: number;
  /** State letter from `stat` (R, S, D, T, t, ...; never Z or X, those return null). */
  state: string;
  /** Resident set (VmRSS), bytes. */
  rssBytes: number;
  /** Peak resident set (VmHWM), bytes. */
  peakRssBytes: number;
  /** Threads (`Threads:` in status). */
  threads: number;
  /** User CPU time, ms. */
  userMs: number;
  /** System CPU time, ms. */
  systemMs: number;
  /** userMs + systemMs. */
  cpuMs: number;
  /** Entries in `/proc/<pid>/fd`. */
  fdCount: number;
  /**
   * IP sockets in use in the process's network namespace (sum of {@link sockets}). This is
   * namespace-wide: it is the plugin's own count only when the plugin has a network namespace of
   * its own (the sandbox launcher's `--net`); otherwise it counts the whole host.
   */
  connectionCount: number;
  /** The per-protocol counts behind {@link connectionCount}. */
  sockets: SocketCounts;
  /**
   * With `{ tcp: true }` only: TCP sockets (IPv4 and IPv6, any state but LISTEN) whose inode is
   * one of this process's fds. Exact and per process, but costs milliseconds.
   */
  tcpConnections?: number;
}

/** Options for {@link sampleProcess}. */
export interface SampleProcessOptions {
  /** Also count the process's own TCP connections from `net/tcp`/`net/tcp6` (slow). */
  tcp?: boolean;
  /** Clock ticks per second for utime/stime; default {@link CLOCK_TICKS_PER_SECOND}. */
  clockTicks?: number;
  /**
   * Socket counts per network namespace (key: the `ns/net` link, e.g. `net:[4026531840]`).
   * Pass one fresh Map per monitor pass to read `sockstat` once per namespace instead of once
   * per process; {@link sampleProcesses} does this for you.
   */
  socketCache?: Map<string, SocketCounts>;
}

/** Options naming the process whose threads to read. */
export interface ThreadOptions {
  /** Process id; default `"self"`. */
  pid?: number | "self";
  /** Clock ticks per second; default {@link CLOCK_TICKS_PER_SECOND}. */
  clockTicks?: number;
}

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

function isGone(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ESRCH";
}

/** Reads a whole procfs file with one open/read/close, or null when it does not exist. */
function readProc(path: string): string | null {
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

interface StatFields {
  name: string;
  state: string;
  utime: number;
  stime: number;
  startTicks: number;
}

/** Parses `stat`; comm may contain spaces and parentheses, so split after the last ')'. */
function parseStat(text: string): StatFields | null {
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

function ticksToMs(ticks: number, hz: number): number {
  return (ticks * 1000) / hz;
}

function checkHz(hz: number): number {
  if (!(Number.isSafeInteger(hz) && hz > 0)) {
    throw new RangeError(`Cannot sample: clockTicks "${hz}" is not a positive integer`);
  }
  return hz;
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

function statusKb(text: string, key: string): number {
  const i = text.indexOf(`\n${key}:`);
  if (i < 0) return 0; // kernel threads and exiting processes have no Vm* lines
  return parseInt(text.slice(i + key.length + 2, text.indexOf("\n", i + 1)), 10) || 0;
}

function inuse(text: string | null, proto: string): number {
  if (text === null) return 0;
  const i = text.indexOf(`${proto}: inuse `);
  if (i !== 0 && (i < 0 || text[i - 1] !== "\n")) return 0;
  return parseInt(text.slice(i + proto.length + 8), 10) || 0;
}

/** Socket inodes among a process's fds, via readlink (`socket:[123]`). */
function socketInodes(pid: number | "self"): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch (e) {
      if (isGone(e)) continue; // fd closed since readdir
      throw e;
    }
    if (link.startsWith("socket:[")) out.add(link.slice(8, -1));
  }
  return out;
}

/** Counts rows of net/tcp{,6} that are not LISTEN (state 0A) and whose inode is in `inodes`. */
function countTcp(text: string | null, inodes: Set<string>): number {
  if (text === null) return 0;
  let n = 0;
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const cols = lines[i]!.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    if (cols.length > 9 && cols[3] !== "0A" && inodes.has(cols[9]!)) n++;
  }
  return n;
}

/**
 * Open fds of a process. Linux ≥ 6.2 reports the count as the size of `/proc/<pid>/fd` (one
 * stat call); older kernels report 0, and then the directory is listed.
 */
function countFds(base: string, isSelf: boolean): number {
  const size = statSync(`${base}/fd`).size;
  if (size > 0) return size;
  // readdir opens an fd of its own, which shows up when listing our own fd directory.
  const listed = readdirSync(`${base}/fd`).length;
  return isSelf ? Math.max(0, listed - 1) : listed;
}

/** Socket counts of the process's network namespace, read once per namespace per cache. */
function readSockets(
  base: string,
  cache: Map<string, SocketCounts> | undefined,
): SocketCounts | null {
  let key: string | undefined;
  if (cache !== undefined) {
    key = readlinkSync(`${base}/ns/net`);
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
  }
  const v4 = readProc(`${base}/net/sockstat`);
  if (v4 === null) return null;
  const v6 = readProc(`${base}/net/sockstat6`);
  const counts: SocketCounts = {
    tcp: inuse(v4, "TCP"),
    udp: inuse(v4, "UDP"),
    tcp6: inuse(v6, "TCP6"),
    udp6: inuse(v6, "UDP6"),
  };
  if (key !== undefined) cache!.set(key, counts);
  return counts;
}

/**
 * Samples a process from procfs: memory, threads, CPU time, fds, sockets.
 *
 * @param pid process id (or `"self"`)
 * @param options `tcp: true` adds the exact per-process {@link ProcessSample.tcpConnections}
 *   (reads `net/tcp` and `net/tcp6`: milliseconds, not microseconds)
 * @returns the sample, or null when the process is gone or a zombie, or not on Linux
 * @throws {Error} the `node:fs` error (e.g. EACCES) when procfs refuses a read for another reason
 * @example
 * ```ts
 * const s = sampleProcess(child.pid!);
 * const max = limits.fileDescriptors;
 * if (s !== null && s.fdCount > max) tracker.record({ type: "fds", used: s.fdCount, limit: max });
 * ```
 */
export function sampleProcess(
  pid: number | "self",
  options: SampleProcessOptions = {},
): ProcessSample | null {
  if (pid !== "self" && !(Number.isSafeInteger(pid) && pid > 0)) {
    throw new RangeError(`Cannot sample process: pid "${pid}" is not a positive integer`);
  }
  if (!isProcfsAvailable()) return null;
  const hz = checkHz(options.clockTicks ?? CLOCK_TICKS_PER_SECOND);
  const base = `/proc/${pid}`;
  const statText = readProc(`${base}/stat`);
  if (statText === null) return null;
  const stat = parseStat(statText);
  if (stat === null || stat.state === "Z" || stat.state === "X") return null;
  const status = readProc(`${base}/status`);
  if (status === null) return null;
  let fdCount: number;
  let sockets: SocketCounts | null;
  try {
    fdCount = countFds(base, pid === "self");
    sockets = readSockets(base, options.socketCache);
  } catch (e) {
    if (isGone(e)) return null;
    throw e;
  }
  if (sockets === null) return null;
  const userMs = ticksToMs(stat.utime, hz);
  const systemMs = ticksToMs(stat.stime, hz);
  const sample: ProcessSample = {
    pid: pid === "self" ? Number(statText.slice(0, statText.indexOf(" "))) : pid,
    state: stat.state,
    rssBytes: statusKb(status, "VmRSS") * 1024,
    peakRssBytes: statusKb(status, "VmHWM") * 1024,
    threads: parseInt(status.slice(status.indexOf("\nThreads:") + 9), 10) || 0,
    userMs,
    systemMs,
    cpuMs: userMs + systemMs,
    fdCount,
    connectionCount: sockets.tcp + sockets.udp + sockets.tcp6 + sockets.udp6,
    sockets: { ...sockets },
  };
  if (options.tcp === true) {
    let inodes: Set<string>;
    try {
      inodes = socketInodes(pid);
    } catch (e) {
      if (isGone(e)) return null;
      throw e;
    }
    sample.tcpConnections = countTcp(readProc(`${base}/net/tcp`), inodes) +
      countTcp(readProc(`${base}/net/tcp6`), inodes);
  }
  return sample;
}

/**
 * One monitor pass: samples every pid, reading `net/sockstat{,6}` once per network namespace
 * rather than once per process (processes sharing a namespace see the same counts anyway).
 *
 * @param pids processes to sample
 * @param options as {@link sampleProcess} (a `socketCache` given here is used and filled)
 * @returns pid → sample, or null for a process that is gone
 * @throws {Error} as {@link sampleProcess}
 * @example
 * ```ts
 * for (const [pid, s] of sampleProcesses(plugins.map((p) => p.pid))) {
 *   if (s === null) markCrashed(pid);
 * }
 * ```
 */
export function sampleProcesses(
  pids: Iterable<number>,
  options: SampleProcessOptions = {},
): Map<number, ProcessSample | null> {
  const opts = { ...options, socketCache: options.socketCache ?? new Map() };
  const out = new Map<number, ProcessSample | null>();
  for (const pid of pids) out.set(pid, sampleProcess(pid, opts));
  return out;
}
