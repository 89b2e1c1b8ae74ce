/**
 * The Landlock policy of a process-tier JS plugin: what the runtime needs to start and import
 * (read-only), plus the manifest's grants. Pure apart from `existsSync` (a rule for a missing
 * path is skipped anyway). Measured with strace on Linux 6.18 (Node 26.10, Bun 1.4.5, Deno
 * 2.9.6): see {@link RUNTIME_READ_PATHS}.
 *
 * @example
 * ```ts
 * const policy = jsLandlockPolicy({
 *   execPath: "/usr/bin/node", frameworkRoot: "/app/node_modules/@bulkhead/core",
 *   nodeModules: ["/app/node_modules/koffi"], pluginDir: "/plugins/p",
 *   read: [], write: ["/plugins/p/out"], network: "none",
 * });
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { LandlockPolicy } from "./landlock.ts";

/**
 * Paths every runtime opens at start (read-only). Without them: Node fails on
 * /etc/ssl/openssl.cnf, Bun aborts without /proc/self (statm, maps); the rest are read when
 * present (CPU count, memory policy, time zone).
 */
export const RUNTIME_READ_PATHS: readonly string[] = [
  "/lib",
  "/lib64",
  "/usr/lib",
  "/usr/lib64",
  "/etc/ld.so.cache",
  "/etc/ssl/openssl.cnf",
  "/etc/localtime",
  "/usr/share/zoneinfo",
  "/dev/urandom",
  "/dev/random",
  // Resolved by the kernel when the rule is added (in stage 1): /proc/<own pid>, which stays the
  // same across execve(). Other processes' entries stay closed.
  "/proc/self",
  "/proc/stat",
  "/proc/sys/vm/overcommit_memory",
  "/proc/sys/vm/mmap_min_addr",
  "/sys/devices/system/cpu/online",
  "/sys/kernel/mm/transparent_hugepage/enabled",
];

/** Extra read paths when the plugin has full network (name resolution, TLS roots). */
export const NETWORK_READ_PATHS: readonly string[] = [
  "/etc/resolv.conf",
  "/etc/hosts",
  "/etc/nsswitch.conf",
  "/etc/host.conf",
  "/etc/gai.conf",
  "/etc/ssl",
  "/etc/ca-certificates",
  "/usr/share/ca-certificates",
];

/** Files at the framework root the runtimes read to resolve modules (Deno config, package type). */
const ROOT_FILES = ["package.json", "deno.json", "deno.jsonc", "deno.lock", "tsconfig.json"];
/** Framework directories the child imports from. */
const ROOT_DIRS = ["lib", "ffi", "permissions", "sandbox"];

/** Input of {@link jsLandlockPolicy}; all paths absolute (real paths: rules follow symlinks). */
export interface JsPolicyInput {
  /** Real path of the runtime binary. */
  execPath: string;
  /** Directory holding bulkhead's `lib/`, `ffi/`, `permissions/` and package files. */
  frameworkRoot: string;
  /** Package directories the child needs (koffi and its prebuilt binary, comlink). */
  nodeModules: string[];
  /** The plugin's directory (its modules load from it). */
  pluginDir: string;
  /** Declared read grants. */
  read: string[];
  /** Declared write grants. */
  write: string[];
  /** The manifest's network grant. */
  network: "none" | "full" | string[];
  /**
   * Grant listing (directory names, not contents) of the whole tree: Bun's module resolver opens
   * every ancestor directory of an importing file, from "/" down, and fails without it.
   */
  listAll?: boolean;
}

/**
 * Builds the Landlock policy: read-only runtime and framework paths, the plugin directory and
 * declared reads, read-write declared writes; TCP denied unless the network is "full" (the net
 * namespace already cuts it; this also covers hosts without user namespaces).
 *
 * @param input paths and the network grant
 * @returns the policy for `process_stage1.ts`
 * @example
 * ```ts
 * jsLandlockPolicy(input).network; // "none" unless input.network === "full"
 * ```
 */
export function jsLandlockPolicy(input: JsPolicyInput): LandlockPolicy {
  const full = input.network === "full";
  const read = [
    input.execPath,
    ...RUNTIME_READ_PATHS,
    ...(full ? NETWORK_READ_PATHS : []),
    ...ROOT_FILES.map((f) => join(input.frameworkRoot, f)),
    ...ROOT_DIRS.map((d) => join(input.frameworkRoot, d)),
    ...input.nodeModules,
    input.pluginDir,
    ...input.read,
  ];
  return {
    read: [...new Set(read)].filter((p) => existsSync(p)),
    write: [...new Set(input.write)],
    network: full ? "full" : "none",
    connectPorts: [],
    ...(input.listAll === true ? { list: ["/"] } : {}),
  };
}
