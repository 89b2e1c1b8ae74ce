/**
 * Native plugins: a C shared library (ABI in `bulkhead_plugin.h`) run in a sandboxed child
 * process and called over length-prefixed frames. The host never maps plugin code: the child
 * receives the verified bytes over IPC and loads them from a sealed memfd.
 *
 * Faults are contained in the child. A crash rejects pending calls with `ERR_PLUGIN_CRASHED`
 * (with the signal), a call over its deadline with `ERR_CALL_TIMEOUT` (then the plugin is
 * SIGKILLed), a limit hit with `ERR_RESOURCE_LIMIT`, a broken frame with `ERR_IPC`.
 *
 * @example
 * ```ts
 * import { startNativePlugin } from "./native_plugin.ts";
 * const plugin = await startNativePlugin({
 *   name: "resizer",
 *   libraryPath: "/plugins/resizer/libresizer.so",
 *   limits: { heapMb: 64, cpuTimeMs: 2000, threads: 4, fileDescriptors: 32, connections: 0 },
 *   permissions: { network: "none", filesystem: "none" },
 *   callTimeoutMs: 5000,
 * });
 * try {
 *   await plugin.call("resize", { width: 10 }); // JSON in, JSON out
 *   await plugin.call("raw", new Uint8Array([1, 2])); // bytes in, bytes out
 * } finally {
 *   await plugin.close();
 * }
 * ```
 * @module
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PluginError } from "../lib/errors.ts";
import { runtimeCommand } from "../sandbox/runtime_cmd.ts";
import {
  allocateSandboxUid,
  buildLauncher,
  connectPorts,
  unsandboxedEnforcement,
} from "../sandbox/launcher.ts";
import type { NativeLimits, SandboxReport } from "../sandbox/launcher.ts";
import { probeSandbox } from "../sandbox/probe.ts";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FRAME_TYPES } from "../lib/protocol/frames.ts";
import { findDescendant } from "../sandbox/procfs.ts";
import { NativeSession } from "./_native_session.ts";
import type { NativePlugin } from "./native_types.ts";
import type { CallLimits, InstanceFailure, PluginInstance } from "../lib/tiers/types.ts";

export type { NativeLimits, SandboxReport } from "../sandbox/launcher.ts";
export type { NativeExit, NativeMetrics, NativePlugin } from "./native_types.ts";
export type { CallLimits } from "../lib/tiers/types.ts";

/** Filesystem grant: absolute paths only. */
export type NativeFilesystem = "none" | { read: string[]; write: string[] };

/** Options of {@link startNativePlugin}. */
export interface NativePluginOptions {
  /** Plugin name (errors, memfd name). */
  name: string;
  /** Path of the shared library; read by the host unless `libraryBytes` is given. */
  libraryPath: string;
  /** Verified library bytes; when given these are loaded, never the path. */
  libraryBytes?: Uint8Array;
  /** Resource limits. */
  limits: NativeLimits;
  /** What the plugin may reach. */
  permissions: { network: "none" | "full" | string[]; filesystem: NativeFilesystem };
  /**
   * Answers the plugin's context get/set. Throw a PluginError `ERR_PERMISSION_DENIED` to deny
   * (the plugin sees BH_ERR_DENIED); return undefined from a get for "not found".
   */
  context?: (op: "get" | "set", key: string, value?: unknown) => Promise<unknown>;
  /** Receives the plugin's log lines (level: "debug" | "info" | "warn" | "error"). */
  log?: (level: string, message: string) => void;
  /** true: refuse to start without namespaces and Landlock; "auto" (default): best effort. */
  sandbox?: boolean | "auto";
  /** Environment variables for the child (the manifest's declared ones); PATH is always set. */
  env?: Record<string, string>;
  /** Deadline of one call in ms (then SIGKILL). Default 30000. */
  callTimeoutMs?: number;
  /** Deadline for the child to load and initialise the plugin, ms. Default 15000. */
  startTimeoutMs?: number;
  /** Deadline for bh_shutdown() on close(), ms. Default 2000. */
  shutdownTimeoutMs?: number;
  /**
   * uid/gid for the child when the host is root. Default: a fresh uid per plugin from
   * `SANDBOX_UID_BASE`: RLIMIT_NPROC counts per uid, so plugins sharing one would share the limit.
   */
  sandboxUid?: number;
  /** Largest frame in bytes. Default 64 MiB. */
  maxFrameBytes?: number;
  /** In-flight and queue bounds of calls. */
  calls?: CallLimits;
}

/** Child entry next to this module, with this module's extension (.ts source, .js in dist/). */
function childEntry(): string {
  const ext = import.meta.url.endsWith(".js") ? ".js" : ".ts";
  return fileURLToPath(new URL(`../lib/guest/native_child${ext}`, import.meta.url));
}

/**
 * Starts a native plugin in its own (sandboxed) child process and waits until `bh_init()` returned.
 *
 * `call(method, input)`: a `Uint8Array` input is passed as bytes and the output returned as a
 * `Uint8Array`; any other input is JSON-encoded (UTF-8) and the output parsed as JSON (an empty
 * output gives `undefined`).
 *
 * @param options library, limits, permissions, host callbacks
 * @returns the running plugin
 * @throws {TypeError} when a path is not absolute or an option has the wrong type
 * @throws {PluginError} ERR_NATIVE_LOAD when the library cannot be read or loaded
 * @throws {PluginError} ERR_ABI when the library's ABI version is not 1 or an export is missing
 * @throws {PluginError} ERR_PLUGIN_INIT when bh_init() fails
 * @throws {PluginError} ERR_SANDBOX when `sandbox: true` and the kernel refuses a restriction,
 *   or the launcher cannot start the child
 * @example
 * ```ts
 * const p = await startNativePlugin({ name: "echo", libraryPath: "/abs/echo.so", limits,
 *   permissions: { network: "none", filesystem: "none" } });
 * new TextDecoder().decode(await p.call("echo", new TextEncoder().encode("hi")) as Uint8Array);
 * ```
 */
export function startNativePlugin(options: NativePluginOptions): Promise<NativePlugin> {
  return launchNativePlugin(options);
}

/**
 * {@link startNativePlugin} for the host's native tier: the same start, returning the session
 * whose call engine the host drives, with the host's failure callback.
 *
 * @param options as for startNativePlugin
 * @param onFailure the host's failure callback
 * @returns the running session
 * @internal
 */
export async function launchNativePlugin(
  options: NativePluginOptions,
  onFailure?: (instance: PluginInstance, failure: InstanceFailure) => void,
): Promise<NativeSession> {
  checkOptions(options);
  let bytes: Uint8Array;
  try {
    bytes = options.libraryBytes ?? readFileSync(options.libraryPath);
  } catch (cause) {
    throw new PluginError(
      "ERR_NATIVE_LOAD",
      `Cannot load native plugin "${options.name}": "${options.libraryPath}" is unreadable`,
      { cause, plugin: options.name },
    );
  }
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const script = childEntry();
  const runtime = runtimeCommand(script, { heapMb: 32 });
  const hostUid = process.getuid?.() ?? -1;
  const mode = options.sandbox ?? "auto";
  const sandboxUid = options.sandboxUid ?? allocateSandboxUid();
  const linux = process.platform === "linux";
  const probe = mode !== false && linux ? probeSandbox(hostUid, sandboxUid) : null;
  if (mode === true && (probe === null || !probe.namespaces)) {
    throw new PluginError(
      "ERR_SANDBOX",
      `Cannot start native plugin "${options.name}": the sandbox is unavailable (${
        probe?.reason ?? process.platform
      })`,
      { hint: 'Enable user namespaces and install util-linux, or pass sandbox: "auto"' },
    );
  }
  const network = options.permissions.network;
  let argv = runtime.argv;
  let enforcement = unsandboxedEnforcement(
    `No sandbox (${mode === false ? "sandbox: false" : process.platform})`,
  );
  if (probe !== null && probe.prlimit) {
    const launcher = buildLauncher({
      runtime: runtime.name,
      runtimeArgv: runtime.argv,
      platform: process.platform,
      hostUid,
      namespaces: probe.namespaces,
      sandboxUid,
      limits: options.limits,
      network,
    });
    argv = launcher.argv;
    enforcement = launcher.enforcement;
  }
  const fs = options.permissions.filesystem;
  const ports = connectPorts(network);
  const landlock = mode === false || !linux ? null : {
    read: fs === "none" ? [] : fs.read,
    write: fs === "none" ? [] : fs.write,
    network: network === "none" ? "none" : ports !== null ? "ports" : "full",
    connectPorts: ports ?? [],
  };
  const env: Record<string, string> = {
    ...options.env,
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    ...runtime.env,
  };
  // Deno needs a cache directory; an unusable one disables its cache, so no plugin can poison
  // the transpiled child code another plugin will run.
  if (runtime.name === "deno") env.DENO_DIR = "/dev/null/bulkhead-no-cache";
  // Every host fd without close-on-exec reaches the child through exec (Node and Deno leave many
  // open, and so may the host's parent). Their numbers are the same in the child: it closes them
  // before it loads the plugin.
  const leaked = linux ? inheritableFds() : [];
  const child = spawn(argv[0] as string, argv.slice(1), {
    stdio: ["pipe", "pipe", "pipe"],
    env,
    cwd: "/",
  });
  const session = new NativeSession(child, {
    name: options.name,
    limits: options.limits,
    enforcement,
    maxFrameBytes,
    callTimeoutMs: options.callTimeoutMs ?? 30_000,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 2000,
    countSockets: network !== "none",
    ...(options.calls !== undefined ? { calls: options.calls } : {}),
    sandboxed: enforcement.sandboxed,
    ...(onFailure === undefined ? {} : { onFailure }),
    ...(options.context === undefined ? {} : { context: options.context }),
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  child.stdin.write(
    encodeFrame({
      type: FRAME_TYPES.LOAD,
      id: 0,
      header: { name: options.name, maxFrameBytes, landlock, closeFds: leaked },
      body: bytes,
    }, maxFrameBytes),
  );
  const ready = await session.ready(options.startTimeoutMs ?? 15_000);
  const nsPid = Number(ready.pid);
  const realPid = child.pid === undefined ? null : findDescendant(child.pid, nsPid);
  const applied = ready.landlock as { filesystem?: boolean; network?: boolean } | null;
  const filesystem = applied?.filesystem === true ? "landlock" : "none";
  const final: SandboxReport = {
    ...enforcement,
    filesystem,
    syscalls: ready.seccomp === true ? "seccomp" : "none",
  };
  if (applied?.network === true && final.network === "none") final.network = "landlock-ports";
  if (filesystem === "none" && mode !== false) final.notes.push("Landlock unavailable");
  if (mode === true && filesystem === "none") {
    session.kill();
    throw new PluginError(
      "ERR_SANDBOX",
      `Cannot start native plugin "${options.name}": the kernel has no Landlock`,
      { hint: 'Use a kernel with Landlock (5.13+) or pass sandbox: "auto"' },
    );
  }
  session.activate(realPid ?? child.pid ?? -1, final);
  return session;
}

function inheritableFds(): number[] {
  const out: number[] = [];
  try {
    for (const entry of readdirSync("/proc/self/fdinfo")) {
      const fd = Number(entry);
      if (!(fd > 2)) continue;
      try {
        const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
        if (flags !== null && (parseInt(flags[1] as string, 8) & 0o2000000) === 0) out.push(fd);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // no procfs: nothing known to close
  }
  return out;
}

function checkOptions(options: NativePluginOptions): void {
  if (typeof options.name !== "string" || options.name === "") {
    throw new TypeError('Option "name" must be a non-empty string');
  }
  if (options.libraryBytes !== undefined && !(options.libraryBytes instanceof Uint8Array)) {
    throw new TypeError('Option "libraryBytes" must be a Uint8Array');
  }
  const fs = options.permissions.filesystem;
  if (fs !== "none") {
    for (const p of [...fs.read, ...fs.write]) {
      if (typeof p !== "string" || !p.startsWith("/")) {
        throw new TypeError(`Filesystem grant "${String(p)}" must be an absolute path`);
      }
    }
  }
}
