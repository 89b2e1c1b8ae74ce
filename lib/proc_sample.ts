/**
 * Cheap whole-process samples from Linux procfs: memory, threads, CPU time, fds and sockets.
 *
 * {@link sampleProcess} reads `stat` (utime, stime), `status` (VmRSS, VmHWM, Threads), the fd
 * count (the size of `fd/`, one stat(2) on Linux ≥ 6.2; a directory listing before), and
 * `net/sockstat` + `net/sockstat6`: about 60 µs per process. {@link sampleProcesses} reads the
 * sockstat files once per network namespace and gets a pass over 100 processes to about 4 ms.
 * `net/tcp` is read only on request: it walks the kernel's global TCP hash and costs about a
 * millisecond or more per read even in an empty network namespace. CPU ticks are converted with
 * {@link CLOCK_TICKS_PER_SECOND} (see lib/thread_cpu.ts).
 *
 * Samples are null on non-Linux platforms.
 *
 * @example
 * ```ts
 * import { sampleProcess } from "./proc_sample.ts";
 * const s = sampleProcess(12345); // null once the process is gone
 * ```
 * @module
 */

import { readdirSync, readlinkSync, statSync } from "node:fs";
import {
  checkHz,
  CLOCK_TICKS_PER_SECOND,
  isGone,
  isProcfsAvailable,
  parseStat,
  readProc,
  ticksToMs,
} from "./_procfs.ts";

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
