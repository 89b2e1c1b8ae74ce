/**
 * The enforcement reports of the two child tiers, from what the launcher and the kernel actually
 * accepted: the process tier (JS plugins in a sandboxed child) and the native tier (a C library
 * in a sandboxed child). Pure functions, beside the worker tier's `describeEnforcement`.
 *
 * @example
 * ```ts
 * import { describeProcessTier } from "./child_enforcement.ts";
 * describeProcessTier("node", { landlock: true, seccomp: true, namespaces: ["user", "pid", "net"],
 *   network: "none", notes: [] }).filesystem.enforced; // true
 * ```
 * @module
 */

import type { Enforcement, EnforcementEntry, RuntimeName } from "./enforcement.ts";

/** A manifest's network declaration. */
export type NetworkDeclaration = "none" | "full" | readonly string[];

function netnsOrPid(namespaces: readonly string[]): boolean {
  return namespaces.includes("pid");
}

/**
 * Signals and the host's process state, for a child: a pid namespace means the plugin cannot
 * name any host process, and the child has its own stdin (the IPC channel), descriptors, cwd,
 * title and priority.
 */
function childProcessAreas(pidns: boolean): Pick<Enforcement, "signals" | "process"> {
  return {
    signals: pidns
      ? entry("pid-namespace", true, "the plugin sees only its own processes")
      : entry("none", false, "no pid namespace: the plugin can signal processes of its uid"),
    process: entry("process", true, "a child process shares no descriptors, stdin or state"),
  };
}

function entry(mechanism: string, enforced: boolean, note?: string): EnforcementEntry {
  return note === undefined ? { mechanism, enforced } : { mechanism, enforced, note };
}

/**
 * The enforcement report of the process tier, from what the kernel actually accepted.
 *
 * @param runtime host runtime
 * @param s what was applied: Landlock, seccomp, namespaces, and the manifest's network grant
 * @returns the report (tier "process")
 * @example
 * ```ts
 * describeProcessTier("bun", { landlock: true, seccomp: true, namespaces: ["user", "net"],
 *   network: "none", notes: [] }).network.mechanism; // "netns"
 * ```
 */
export function describeProcessTier(
  runtime: RuntimeName,
  s: {
    landlock: boolean;
    seccomp: boolean;
    namespaces: string[];
    network: NetworkDeclaration;
    notes: string[];
  },
): Enforcement {
  const netns = s.namespaces.includes("net");
  const list = Array.isArray(s.network);
  const notes = s.notes.join("; ") || undefined;
  return {
    runtime,
    tier: "process",
    filesystem: s.landlock
      ? entry(
        "landlock",
        true,
        "the plugin directory, the runtime, its libraries and bulkhead's own code are readable" +
          (runtime === "bun"
            ? "; directory names anywhere are listable (Bun's resolver needs it), file contents are not"
            : ""),
      )
      : entry("none", false, notes ?? "the kernel has no Landlock"),
    network: s.network === "full"
      ? entry("none", true, "full network was declared")
      : netns
      ? entry(
        list ? "netns+broker" : "netns",
        true,
        list ? "listed hosts via ctx.fetch only" : undefined,
      )
      : s.landlock
      ? entry("landlock-tcp", false, "TCP is denied but UDP is not: no network namespace")
      : entry("none", false, notes),
    env: entry("clean-env", true, "the child's environment holds only the declared variables"),
    subprocess: s.seccomp
      ? entry("seccomp", true, "execve is denied; fork is bounded by RLIMIT_NPROC")
      : entry("none", false),
    ffi: entry(
      "process",
      s.landlock && s.seccomp,
      "native code can load but stays inside the same sandbox",
    ),
    memory: entry("rlimit", true, "RLIMIT_DATA plus the runtime's heap flag"),
    cpu: entry("deadline+sigkill", true, "a call past its deadline kills the plugin process"),
    ...childProcessAreas(netnsOrPid(s.namespaces)),
  };
}

/** The sandbox's own report (sandbox/launcher.ts `SandboxReport`), as this file reads it. */
export interface SandboxSummary {
  /** Whether a launcher wraps the child at all. */
  sandboxed: boolean;
  /** `landlock` or `none`. */
  filesystem: string;
  /** `netns`, `landlock-ports` or `none`. */
  network: string;
  /** The memory mechanism, e.g. `rlimit+watchdog`. */
  memory: string;
  /** The CPU mechanism, e.g. `watchdog+deadline`. */
  cpu: string;
  /** `rlimit` (RLIMIT_NPROC under its own uid) or `none`. */
  processes: string;
  /** `rlimit` or `none`. */
  fileDescriptors: string;
  /** `seccomp` or `none`. */
  syscalls: string;
  /** Linux namespaces the child runs in. */
  namespaces: string[];
  /** What the launcher could not apply, in sentences. */
  notes: string[];
}

/**
 * Converts the sandbox's report of a native plugin's child into the host's enforcement report
 * (tier `native`).
 *
 * @param runtime host runtime
 * @param e the launcher's report
 * @param network the manifest's network grant
 * @returns the report
 */
export function describeNativeTier(
  runtime: RuntimeName,
  e: SandboxSummary,
  network: NetworkDeclaration,
): Enforcement {
  const notes = e.notes.join("; ");
  return {
    runtime,
    tier: "native",
    filesystem: entry(e.filesystem, e.filesystem === "landlock"),
    network: network === "full" ? entry("none", true, "full network was declared") : entry(
      e.network,
      e.network === "netns",
      e.network === "landlock-ports" ? "TCP ports only; host names are not checked" : undefined,
    ),
    env: entry("clean-env", true, "the child gets PATH and the declared variables only"),
    subprocess: entry(
      e.processes === "rlimit" ? "rlimit+seccomp" : "none",
      e.processes === "rlimit",
    ),
    ffi: entry("process", true, "native code runs only in the sandboxed child"),
    memory: entry(e.memory, true, notes || undefined),
    cpu: entry(e.cpu, true),
    ...childProcessAreas(e.sandboxed && e.namespaces.includes("pid")),
  };
}
