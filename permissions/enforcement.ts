/**
 * The enforcement report: for each kind of restriction, which mechanism actually enforces it on a
 * given runtime and tier, and whether that is a real guarantee. Pure data, no runtime APIs.
 *
 * @example
 * ```ts
 * import { describeEnforcement } from "./enforcement.ts";
 * const e = describeEnforcement("bun", { network: "none" });
 * e.network.enforced; // false: Bun has no permission system
 * ```
 * @module
 */

/** The runtimes bulkhead hosts plugins on. */
export type RuntimeName = "deno" | "bun" | "node";

/** The restrictions a report covers. */
export type EnforcementArea =
  | "filesystem"
  | "network"
  | "env"
  | "subprocess"
  | "ffi"
  | "memory"
  | "cpu"
  | "signals"
  | "process";

/** How one area is enforced. */
export interface EnforcementEntry {
  /** The mechanism: `deno-permissions`, `node-permissions`, `broker`, `guard`, `lockdown`,
   * `worker-env`, `resource-limits`, `deadline`, `terminate`, or `none`. Several joined with `+`.
   * `lockdown` is the plugin thread's bootstrap removing what the runtime leaves reachable
   * (`lib/runtime/AUDIT.md`); `guard` is the same idea where it can be routed around. */
  mechanism: string;
  /** True only when the runtime or kernel guarantees the restriction against hostile code. */
  enforced: boolean;
  /** What is and is not covered, in a sentence, when it is not the obvious. */
  note?: string;
}

/** Per-plugin enforcement report. */
export interface Enforcement {
  /** The runtime the report describes. */
  runtime: RuntimeName;
  /**
   * `worker`: a thread of the host; `process`: a JS plugin in a sandboxed child process;
   * `native`: a native library in a sandboxed child process.
   */
  tier: "worker" | "process" | "native";
  /** Reads and writes outside the declared paths (the plugin directory is always readable). */
  filesystem: EnforcementEntry;
  /** Connections to hosts outside the declared network grant. */
  network: EnforcementEntry;
  /** Environment variables beyond the declared names. */
  env: EnforcementEntry;
  /** Starting child processes (never granted). */
  subprocess: EnforcementEntry;
  /** Loading native code through FFI or addons (never granted to worker plugins). */
  ffi: EnforcementEntry;
  /** The heap limit (`limits.heapMb`). */
  memory: EnforcementEntry;
  /** The call deadline (`limits.cpuTimeMs`) and stopping a plugin that overruns it. */
  cpu: EnforcementEntry;
  /**
   * Signalling the host or any other process (`process.kill`, `Deno.kill`), and signal listeners
   * that replace the host's default action.
   */
  signals: EnforcementEntry;
  /**
   * The host process's shared state and input: stdin, descriptors the host holds, the working
   * directory, title, priority, V8 flags, diagnostic reports and system information.
   */
  process: EnforcementEntry;
}

/** The parts of a plugin's requirements the report depends on. */
export interface EnforcementInput {
  /** The declared network access: `"none"`, `"full"`, or a list of host patterns. */
  network: "none" | "full" | readonly string[];
  /** Deno: false when the plugin runs in a Web Worker without a heap limit (default true). */
  heapLimit?: boolean;
}

// Tested by attack (test/host/memory_truth.test.ts): one allocation far past a worker's heap limit
// aborts the whole process (https://github.com/nodejs/node/issues/47224), and resourceLimits do
// not count ArrayBuffers (https://nodejs.org/api/worker_threads.html#new-workerfilename-options).
const HEAP_NOTE = "the V8 heap limit stops gradual growth only: one allocation far past it " +
  "aborts the whole host, and ArrayBuffers outside the heap are not counted; use the process tier";

/** Every {@link EnforcementArea}, in report order. */
export const ENFORCEMENT_AREAS: readonly EnforcementArea[] = [
  "filesystem",
  "network",
  "env",
  "subprocess",
  "ffi",
  "memory",
  "cpu",
  "signals",
  "process",
];

/**
 * Describes what the worker tier enforces for a plugin on a runtime.
 *
 * @param runtime the host runtime
 * @param input the plugin's network requirement (the rest does not change the mechanism)
 * @returns the report
 * @example
 * ```ts
 * describeEnforcement("deno", { network: ["api.example.com"] }).network.mechanism;
 * // "deno-permissions+broker"
 * ```
 */
export function describeEnforcement(runtime: RuntimeName, input: EnforcementInput): Enforcement {
  const list = Array.isArray(input.network);
  const full = input.network === "full";
  if (runtime === "deno") {
    return {
      runtime,
      tier: "worker",
      filesystem: {
        mechanism: "deno-permissions",
        // Deno skips its read check for imports of any path under a node_modules directory
        // (code and JSON, anywhere on the machine) when it runs with a node_modules directory,
        // and no import hook exists to close it in-process: tested by attack.
        enforced: false,
        note: "reads outside the grants are denied, but a plugin can import (code and JSON) " +
          "any file under any node_modules directory on the machine; use the process tier",
      },
      network: full ? { mechanism: "none", enforced: true, note: "full network was declared" } : {
        mechanism: list ? "deno-permissions+broker" : "deno-permissions",
        enforced: true,
      },
      env: { mechanism: "deno-permissions", enforced: true },
      subprocess: { mechanism: "deno-permissions", enforced: true },
      ffi: { mechanism: "deno-permissions", enforced: true },
      memory: input.heapLimit === false
        ? {
          mechanism: "none",
          enforced: false,
          note: "denoHeapLimit is off: a Web Worker has no heap limit and its OOM ends the host",
        }
        : { mechanism: "resource-limits", enforced: false, note: HEAP_NOTE },
      cpu: {
        mechanism: "deadline",
        enforced: false,
        note:
          "a call past its deadline fails and the plugin is unloaded, but Deno 2.9 cannot stop " +
          "a busy loop: the thread keeps a core until the host process exits (use the process tier)",
      },
      signals: {
        mechanism: "lockdown",
        enforced: true,
        note: "Deno.kill, process.kill and signal listeners are removed from the plugin thread " +
          "(run: false does not cover them there)",
      },
      process: {
        mechanism: "lockdown+deno-permissions",
        enforced: false,
        note: "stdin, the working directory, V8 flags, raw descriptors and CacheStorage are " +
          "removed, but process.title (not configurable in Deno 2.9) still rewrites the host's " +
          "command line",
      },
    };
  }
  if (runtime === "node") {
    return {
      runtime,
      tier: "worker",
      filesystem: {
        mechanism: "node-permissions+import-hooks+lockdown",
        enforced: true,
        note:
          "the plugin directory itself is readable; symlinks inside grants that point outside " +
          "are refused at load (Node follows them); the lockdown refuses descriptors the plugin " +
          "did not open, node:sqlite and the host's working directory (Node grants it to workers)",
      },
      network: full
        ? { mechanism: "none", enforced: true, note: "full network was declared" }
        : list
        ? {
          mechanism: "node-permissions+broker",
          enforced: true,
          note: "raw sockets are denied; listed hosts are reached through ctx.fetch only",
        }
        : { mechanism: "node-permissions", enforced: true },
      env: {
        mechanism: "worker-env",
        enforced: true,
        note: "the worker gets a copy holding only " +
          "the declared variables; /proc/self/environ is outside its filesystem grant",
      },
      subprocess: { mechanism: "node-permissions", enforced: true },
      ffi: { mechanism: "node-permissions", enforced: true },
      memory: { mechanism: "resource-limits", enforced: false, note: HEAP_NOTE },
      cpu: { mechanism: "deadline+terminate", enforced: true },
      signals: {
        mechanism: "lockdown",
        enforced: true,
        note: "process.kill is removed from the plugin thread (--permission does not cover it)",
      },
      process: {
        mechanism: "lockdown",
        enforced: true,
        note: "stdin and host descriptors, title, priority, V8 flags, diagnostic reports and " +
          "system information are removed; stdout and stderr stay (console output)",
      },
    };
  }
  const guard = "best-effort guard only: Bun has no permission system and Bun.fetch reaches any " +
    "host and any file:// URL";
  return {
    runtime,
    tier: "worker",
    filesystem: { mechanism: "none", enforced: false, note: guard },
    network: full ? { mechanism: "none", enforced: true, note: "full network was declared" } : {
      mechanism: "guard",
      enforced: false,
      note: guard,
    },
    env: {
      mechanism: "worker-env",
      enforced: false,
      note: "the worker's process.env holds only " +
        "the declared variables, but /proc/self/environ is readable",
    },
    subprocess: { mechanism: "guard", enforced: false, note: guard },
    ffi: { mechanism: "none", enforced: false, note: guard },
    memory: {
      mechanism: "none",
      enforced: false,
      note: "Bun ignores worker resourceLimits; use the process tier",
    },
    cpu: { mechanism: "deadline+terminate", enforced: true },
    signals: { mechanism: "guard", enforced: false, note: guard },
    process: { mechanism: "none", enforced: false, note: guard },
  };
}

/**
 * Lists the areas a report does not enforce.
 *
 * @param report an enforcement report
 * @returns the unenforced areas, empty when everything is enforced
 * @example
 * ```ts
 * unenforcedAreas(describeEnforcement("bun", { network: "none" })); // ["filesystem", ...]
 * unenforcedAreas(describeEnforcement("deno", { network: "none" })); // ["cpu", "process"]
 * ```
 */
export function unenforcedAreas(report: Enforcement): EnforcementArea[] {
  return ENFORCEMENT_AREAS.filter((a) => report[a]?.enforced !== true);
}
