/**
 * Builds the command line that starts a native plugin's child in a sandbox, and reports what that
 * sandbox enforces. Pure: no I/O, so every combination is unit-testable. `probeSandbox()`
 * (separate, does I/O) tells whether the kernel and util-linux allow the namespaces.
 *
 * Linux chain, outermost first:
 * 1. `setpriv --reuid=U --regid=U --clear-groups` when the host is root: RLIMIT_NPROC is not
 *    enforced for root, even inside a user namespace mapped to root (FIELD_NOTES).
 * 2. `unshare --user --map-root-user --pid --fork --kill-child --mount-proc --ipc --uts --mount
 *    [--net]`: `--kill-child` so killing unshare kills the whole pid namespace.
 * 3. `prlimit --data --nofile --nproc --core=0 --fsize [--cpu]`, inside the user namespace so
 *    RLIMIT_NPROC counts only the plugin's own processes (without namespaces: before step 4).
 * 4. `setpriv --bounding-set=-all --inh-caps=-all --no-new-privs`: the namespace root has no
 *    capabilities left, so it cannot undo mounts or Landlock.
 * 5. `sh -c 'exec 3<&0; "$@" 0<&3 3<&- & wait $!'`: a tiny pid-1 init, because a runtime running as pid 1 ignores
 *    SIGTERM and misreports abort() (FIELD_NOTES); the shell exits with 128+signal instead.
 *
 * Limit formulas (measured on Linux 6.18, 2 vCPU, Node 26.10 / Bun 1.4.5 / Deno 2.9.6):
 * - RLIMIT_DATA = runtime floor + `heapMb`. V8 reserves its code range as private writable memory:
 *   Node and Deno abort ("Failed to reserve virtual memory for CodeRange") below ~600 MiB, so the
 *   floor is 704 MiB; Bun needs 320 MiB, floor 384 MiB.
 * - RLIMIT_NPROC = `threads` + {@link RUNTIME_BASE_THREADS} (runtime threads at idle: Node 7,
 *   Bun 6, Deno 6; the limit counts every thread of the uid, plus unshare and the init shell).
 * - RLIMIT_NOFILE = `fileDescriptors` + {@link RUNTIME_BASE_FDS} (Node and Deno hold 23 fds at
 *   idle, Bun 8).
 * - RLIMIT_CPU only when `cpuLifetimeMs` is set (a lifetime cap); the per-call `cpuTimeMs` is
 *   enforced by the host's watchdog (`native_plugin.ts`), because RLIMIT_CPU never resets.
 *
 * @example
 * ```ts
 * const { argv, enforcement } = buildLauncher({
 *   runtime: "node", runtimeArgv: ["/usr/bin/node", "/x/_child.ts"], platform: "linux",
 *   hostUid: 1000, namespaces: true, network: "none",
 *   limits: { heapMb: 64, cpuTimeMs: 1000, threads: 4, fileDescriptors: 32, connections: 0 },
 * });
 * ```
 * @module
 */
import type { RuntimeName } from "../permissions/enforcement.ts";
import type { Limits } from "../lib/limits.ts";

/** Resource limits of a native plugin: the one {@link Limits} plus two rlimits of its own. */
export interface NativeLimits extends Limits {
  /** Optional lifetime CPU cap in ms (RLIMIT_CPU; SIGXCPU then SIGKILL). */
  cpuLifetimeMs?: number;
  /** Largest file the plugin may write, in MiB (RLIMIT_FSIZE); default 256. */
  fileSizeMb?: number;
}

/** What the sandbox enforces, per resource. */
export interface SandboxReport {
  /** Whether any launcher wraps the child (false: plain child process). */
  sandboxed: boolean;
  /** "landlock": paths outside the grant are denied; "none": the plugin sees the host's files. */
  filesystem: "landlock" | "none";
  /** "netns": no network at all; "landlock-ports": TCP to granted ports only; "none": open. */
  network: "netns" | "landlock-ports" | "none";
  /** "rlimit+watchdog": RLIMIT_DATA and an RSS watchdog; "watchdog": only the RSS watchdog. */
  memory: "rlimit+watchdog" | "watchdog";
  /** CPU: host watchdog on per-call CPU time plus the call deadline; "+rlimit" with a lifetime cap. */
  cpu: "watchdog+deadline" | "rlimit+watchdog+deadline";
  /** Processes and threads: "rlimit" (RLIMIT_NPROC under a dedicated uid) or "none". */
  processes: "rlimit" | "none";
  /** File descriptors: "rlimit" or "none". */
  fileDescriptors: "rlimit" | "none";
  /** "seccomp": the allow-list of `seccomp.ts` on every thread (settled by the child). */
  syscalls: "seccomp" | "none";
  /** Linux namespaces the child runs in. */
  namespaces: string[];
  /** uid the child runs as when the host is root, else null. */
  uid: number | null;
  /** Human-readable caveats. */
  notes: string[];
}

/** Input of {@link buildLauncher}. */
export interface LauncherOptions {
  /** Runtime running host and child. */
  runtime: RuntimeName;
  /** argv that runs the child entry (from `runtimeCommand`). */
  runtimeArgv: string[];
  /** `process.platform`. */
  platform: string;
  /** uid of the host process. */
  hostUid: number;
  /** Whether user/pid/net namespaces work (from `probeSandbox()` in `probe.ts`); false: rlimits only. */
  namespaces: boolean;
  /** uid/gid to drop to when the host is root. */
  sandboxUid?: number;
  /** Resource limits. */
  limits: NativeLimits;
  /** Network grant of the manifest. */
  network: "none" | "full" | string[];
}

/** Launcher command and what it enforces (filesystem is settled later by the child). */
export interface Launcher {
  /** Full argv to spawn; `argv[0]` is the executable. */
  argv: string[];
  /** What the chain enforces. */
  enforcement: SandboxReport;
}

/** RLIMIT_DATA floor per runtime in MiB (below it the runtime cannot start). */
export const RUNTIME_DATA_FLOOR_MB: Readonly<Record<RuntimeName, number>> = {
  node: 704,
  deno: 704,
  bun: 384,
};
/** Threads the runtime, unshare and the init shell need, added to `limits.threads`. */
export const RUNTIME_BASE_THREADS = 12;
/** File descriptors the runtime holds, added to `limits.fileDescriptors`. */
export const RUNTIME_BASE_FDS = 32;
/** Default uid/gid for sandboxed children of a root host when none is given ("nobody"). */
export const DEFAULT_SANDBOX_UID = 65534;
/**
 * First uid of the range `startNativePlugin()` draws a fresh uid per plugin from (no passwd entry
 * needed). RLIMIT_NPROC counts all threads of a uid, so each plugin needs its own.
 */
export const SANDBOX_UID_BASE = 1_500_000_000;
/** Size of that range. */
export const SANDBOX_UID_COUNT = 1 << 24;

let uidSeq = 0;

/**
 * A fresh sandbox uid for the next child of this host, from one counter for every child tier
 * (process and native): RLIMIT_NPROC counts per uid, so two plugins must never share one. The
 * host's pid spreads hosts on one machine over the range.
 *
 * @returns a uid in `[SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_COUNT)`
 * @example
 * ```ts
 * allocateSandboxUid() !== allocateSandboxUid(); // true
 * ```
 */
export function allocateSandboxUid(): number {
  uidSeq = (uidSeq + 1) % 1024;
  return SANDBOX_UID_BASE + ((process.pid * 1024 + uidSeq) % SANDBOX_UID_COUNT);
}

/** The init shell: runs the runtime in the background and exits with its status (128+signal). */
// POSIX sh points a background job's stdin at /dev/null unless it is redirected explicitly.
const INIT_SCRIPT = 'exec 3<&0; "$@" 0<&3 3<&- & wait $!';

/** `unshare` with every namespace but the network one (added with `--net` when it is cut off). */
export const UNSHARE: readonly string[] = [
  "unshare",
  "--user",
  "--map-root-user",
  "--pid",
  "--fork",
  "--kill-child",
  "--mount-proc",
  "--ipc",
  "--uts",
  "--mount",
];

/** Drops every capability and sets no_new_privs before the runtime starts. */
export const DROP_CAPS: readonly string[] = [
  "setpriv",
  "--bounding-set=-all",
  "--inh-caps=-all",
  "--no-new-privs",
  "--",
];

/**
 * The `setpriv` prefix that runs the rest of the command as `uid` (and the same gid).
 *
 * @param uid the unprivileged uid
 * @returns the argv prefix
 */
export function dropToUid(uid: number): string[] {
  return ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--"];
}

/**
 * The report of a child that runs without the launcher.
 *
 * @param note why, in a sentence
 * @returns the enforcement report
 */
export function unsandboxedEnforcement(note: string): SandboxReport {
  return {
    sandboxed: false,
    filesystem: "none",
    network: "none",
    memory: "watchdog",
    cpu: "watchdog+deadline",
    processes: "none",
    fileDescriptors: "none",
    syscalls: "none",
    namespaces: [],
    uid: null,
    notes: [note],
  };
}

/**
 * Builds the launcher argv and the enforcement report.
 *
 * @param options runtime argv, platform, uid, limits and network grant
 * @returns argv and enforcement
 * @throws {RangeError} when a limit is not a positive finite number
 * @example
 * ```ts
 * buildLauncher({ ...options, platform: "darwin" }).enforcement.sandboxed; // false
 * ```
 */
export function buildLauncher(options: LauncherOptions): Launcher {
  const { limits } = options;
  for (const key of ["heapMb", "cpuTimeMs", "threads", "fileDescriptors"] as const) {
    const v = limits[key];
    if (!Number.isFinite(v) || v <= 0) {
      throw new RangeError(`Limit "${key}" must be a positive number, got ${v}`);
    }
  }
  if (options.platform !== "linux") {
    return {
      argv: [...options.runtimeArgv],
      enforcement: unsandboxedEnforcement(
        `No sandbox on "${options.platform}": only Linux has the launcher`,
      ),
    };
  }
  const notes: string[] = [];
  const argv: string[] = [];
  let uid: number | null = null;
  if (options.hostUid === 0) {
    uid = options.sandboxUid ?? DEFAULT_SANDBOX_UID;
    argv.push(...dropToUid(uid));
  }
  const dataMb = RUNTIME_DATA_FLOOR_MB[options.runtime] + Math.ceil(limits.heapMb);
  const nofile = Math.ceil(limits.fileDescriptors) + RUNTIME_BASE_FDS;
  const nproc = Math.ceil(limits.threads) + RUNTIME_BASE_THREADS;
  const fsize = (limits.fileSizeMb ?? 256) * 1024 * 1024;
  const prlimit = [
    "prlimit",
    `--data=${dataMb * 1024 * 1024}`,
    `--nofile=${nofile}`,
    `--nproc=${nproc}`,
    "--core=0",
    `--fsize=${fsize}`,
  ];
  if (limits.cpuLifetimeMs !== undefined) {
    const soft = Math.max(1, Math.ceil(limits.cpuLifetimeMs / 1000));
    prlimit.push(`--cpu=${soft}:${soft + 1}`);
  }
  prlimit.push("--");
  const namespaces: string[] = [];
  let network: SandboxReport["network"] = "none";
  if (options.namespaces) {
    namespaces.push("user", "pid", "mount", "ipc", "uts");
    argv.push(...UNSHARE);
    if (options.network === "none") {
      argv.push("--net");
      namespaces.push("net");
      network = "netns";
    }
    // prlimit inside the user namespace: since Linux 5.14 RLIMIT_NPROC is counted per user
    // namespace, against the limit in force when the namespace was created at the parent level.
    // Set inside, the small limit counts only this plugin's processes, not every process of the
    // host's uid (which made a non-root host's second plugin fail to start).
    argv.push("--", ...prlimit);
    argv.push(...DROP_CAPS);
  } else {
    argv.push(...prlimit);
    notes.push("User namespaces unavailable: no pid, mount or network isolation");
    if (options.hostUid !== 0) notes.push("RLIMIT_NPROC counts every process of the host's uid");
  }
  if (network === "none" && options.network !== "full") {
    const ports = connectPorts(options.network);
    network = ports === null ? "none" : "landlock-ports";
    if (ports === null) notes.push("Network allow-list cannot be enforced for native code");
  }
  argv.push("sh", "-c", INIT_SCRIPT, "sh", ...options.runtimeArgv);
  return {
    argv,
    enforcement: {
      sandboxed: true,
      filesystem: "none",
      network,
      memory: "rlimit+watchdog",
      cpu: limits.cpuLifetimeMs === undefined ? "watchdog+deadline" : "rlimit+watchdog+deadline",
      processes: uid !== null || options.hostUid !== 0 ? "rlimit" : "none",
      fileDescriptors: "rlimit",
      syscalls: "none",
      namespaces,
      uid,
      notes,
    },
  };
}

/**
 * TCP ports named by a network grant, for Landlock's connect rules: "host:port" entries give
 * their port; an entry without a port (or "none"/"full") gives null (ports cannot express it).
 *
 * @param network network grant
 * @returns ports, or null when the grant cannot be reduced to ports
 * @example
 * ```ts
 * connectPorts(["api.example.com:443"]); // [443]
 * connectPorts(["api.example.com"]); // null
 * ```
 */
export function connectPorts(network: "none" | "full" | string[]): number[] | null {
  if (!Array.isArray(network)) return null;
  const ports: number[] = [];
  for (const entry of network) {
    const match = /:(\d{1,5})$/.exec(entry);
    const port = match === null ? NaN : Number(match[1]);
    if (!(port > 0 && port < 65536)) return null;
    ports.push(port);
  }
  return ports;
}
