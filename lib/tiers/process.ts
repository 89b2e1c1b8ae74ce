/**
 * The process isolation tier for JS/TS plugins: the plugin runs in a child process of the same
 * runtime, inside the native plugins' launcher chain (own uid when the host is root, user/pid/
 * net/mount/ipc/uts namespaces, rlimits, no capabilities, no_new_privs), with Landlock and the
 * seccomp allow-list applied before the runtime starts (`lib/guest/process_stage1.ts`) and a
 * stacked filter that denies execve before the plugin is imported (`lib/guest/process_child.ts`).
 * The kernel enforces the manifest on every runtime,
 * Bun included. The call engine drives it through {@link ProcessTransport} (frames over the
 * child's stdio, shared plumbing in `child_channel.ts`); `ffi/` is imported lazily.
 *
 * `ctx` in the child is a proxy whose get/set/log/fetch/hooks.on travel over the IPC channel to
 * the same {@link createContextApi} checks the worker tier uses (ctx.fetch is the only route to an
 * allow-listed host: the child's network namespace has no route out).
 * @module
 */

import { spawn } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PluginError } from "../errors.ts";
import type { Manifest } from "../manifest.ts";
import type { Logger } from "../logger.ts";
import { exposeGuarded } from "../broker/guarded_endpoint.ts";
import type { CallLimits, InstanceCallbacks, PluginBudgets, PluginInstance } from "./types.ts";
import { CallEngine } from "./engine.ts";
import { createBroker, declaredEnv, packageJsonAbove } from "./_broker.ts";
import { findUp } from "../find_up.ts";
import { shareCopyWithSandbox } from "./_share.ts";
import { ProcessTransport } from "./_process_transport.ts";
import { PROXY_PORT } from "../protocol/messages.ts";
import { describeProcessTier } from "../../permissions/child_enforcement.ts";
import { deriveGrants } from "../../permissions/grants.ts";
import type { Enforcement, RuntimeName } from "../../permissions/enforcement.ts";

/** What {@link startProcessInstance} needs (the same host services as the worker tier). */
export interface ProcessStartOptions extends InstanceCallbacks {
  /** Manifest; `entry` and filesystem grants are absolute paths. */
  manifest: Manifest;
  /** Host runtime; the child runs the same one. */
  runtime: RuntimeName;
  store: Map<string, unknown>;
  logger: Logger;
  /** Refuse (ERR_SANDBOX / ERR_RUNTIME_UNSUPPORTED) when namespaces or Landlock are missing. */
  requireSandbox: boolean;
  loadTimeoutMs: number;
  /** How long a stopping child may take before it is killed. Default 2000. */
  shutdownTimeoutMs?: number;
  /** In-flight and queue bounds of calls. */
  calls?: CallLimits;
  /** Bounds on context values and log lines. */
  budgets?: PluginBudgets;
  /** True when `manifest.dir` is the host's private copy of the verified bytes. */
  privateCopy?: boolean;
}

/** Threads the JS runtime adds on top of the launcher's base (libuv/tokio/Bun pools, koffi). */
const JS_EXTRA_THREADS = 16;
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
const STAGE1_HEAP_MB = 32;

/**
 * Starts a JS/TS plugin in a sandboxed child process and waits until its `init` returned.
 *
 * @param options manifest, runtime, host services and callbacks
 * @returns the ready instance and its enforcement report (tier "process")
 * @throws {PluginError} ERR_RUNTIME_UNSUPPORTED when not on Linux
 * @throws {PluginError} ERR_SANDBOX when `requireSandbox` and namespaces or Landlock are missing,
 *   or the launcher / kernel refused a restriction
 * @throws {PluginError} ERR_PLUGIN_INIT when the entry fails to import or `init()` throws
 * @throws {PluginError} ERR_CALL_TIMEOUT when the plugin is not ready within `loadTimeoutMs`
 * @example
 * ```ts
 * const { instance, enforcement } = await startProcessInstance({ manifest, runtime: "bun",
 *   store, logger, requireSandbox: true, onDenied, onLimit, onHook, onFailure,
 *   loadTimeoutMs: 10_000 });
 * await instance.send(KIND_CALL, "greet", ["Ada"], 5000);
 * ```
 */
export async function startProcessInstance(
  options: ProcessStartOptions,
): Promise<{ instance: PluginInstance; enforcement: Enforcement }> {
  const { manifest } = options;
  const name = manifest.name;
  if (manifest.entry === undefined) {
    throw new TypeError(`Cannot start plugin "${name}": the manifest has no entry`);
  }
  if (process.platform !== "linux") {
    throw new PluginError(
      "ERR_RUNTIME_UNSUPPORTED",
      `Cannot start plugin "${name}" in the process tier: "${process.platform}" has no sandbox`,
      { hint: 'Use isolation "worker" on this platform', plugin: name },
    );
  }
  const [{ probeSandbox }, launcher, { runtimeCommand }, { jsLandlockPolicy }, procfs] =
    await Promise.all([
      import("../../sandbox/probe.ts"),
      import("../../sandbox/launcher.ts"),
      import("../../sandbox/runtime_cmd.ts"),
      import("../../sandbox/js_policy.ts"),
      import("../../sandbox/procfs.ts"),
    ]);
  const hostUid = process.getuid?.() ?? -1;
  const sandboxUid = launcher.allocateSandboxUid();
  // A root host's verified copy is root-owned 0700: share it read-only with this child's group.
  if (hostUid === 0 && options.privateCopy === true) shareCopyWithSandbox(manifest.dir, sandboxUid);
  const probe = probeSandbox(hostUid, sandboxUid);
  if (!probe.namespaces && options.requireSandbox) {
    throw new PluginError(
      "ERR_SANDBOX",
      `Cannot start plugin "${name}" in the process tier: namespaces are unavailable (${probe.reason})`,
      { hint: "Enable unprivileged user namespaces and install util-linux", plugin: name },
    );
  }
  const root = frameworkRoot();
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : p);
  const fs = manifest.permissions.filesystem;
  const network = manifest.permissions.network;
  const policy = jsLandlockPolicy({
    execPath: real(process.execPath),
    frameworkRoot: root,
    nodeModules: [
      ...["koffi", "@koromix", "comlink"].flatMap((pkg) => findPackage(root, pkg)),
      // Node reads the nearest package.json above the child's entry to decide its module type;
      // installed from npm, that is the package's own, one level above dist/.
      ...packageJsonAbove(root),
      // Likewise for the plugin's own modules (a `.js`/`.ts` entry's type comes from it): the
      // first package.json at or above the plugin directory, read-only. It is metadata of
      // whatever project holds the plugin, so the plugin can read that one file.
      ...packageJsonAbove(real(manifest.dir)),
    ],
    pluginDir: real(manifest.dir),
    read: fs.read.map(real),
    write: fs.write.map(real),
    network,
    listAll: options.runtime === "bun",
  });
  const limits = manifest.limits;
  const stage1 = runtimeCommand(join(root, "lib", "guest", `process_stage1${ext()}`), {
    heapMb: STAGE1_HEAP_MB,
  });
  const stage2 = runtimeCommand(join(root, "lib", "guest", `process_child${ext()}`), {
    heapMb: limits.heapMb,
  });
  const runtimeEnv: Record<string, string> = { ...stage2.env };
  // Deno needs a cache directory; an unusable one disables the cache (nothing to poison).
  if (stage2.name === "deno") runtimeEnv.DENO_DIR = "/dev/null/bulkhead-no-cache";
  const declared = declaredEnv(manifest.permissions.env);
  const stage1Config = {
    landlock: policy,
    keepEnv: [...Object.keys(runtimeEnv), ...Object.keys(declared)],
  };
  const { argv, enforcement: report } = launcher.buildLauncher({
    runtime: stage2.name,
    runtimeArgv: [...stage1.argv, JSON.stringify(stage1Config), ...stage2.argv],
    platform: process.platform,
    hostUid,
    namespaces: probe.namespaces,
    sandboxUid,
    limits: {
      heapMb: limits.heapMb,
      cpuTimeMs: limits.cpuTimeMs,
      threads: limits.threads + JS_EXTRA_THREADS,
      fileDescriptors: limits.fileDescriptors,
      connections: limits.connections,
    },
    network: network === "full" ? "full" : "none",
  });
  const grants = deriveGrants({
    pluginDir: manifest.dir,
    network,
    filesystem: { read: fs.read, write: fs.write },
    env: manifest.permissions.env,
  });
  const broker = createBroker({ ...options, network: grants.network });
  const api = broker.api;
  const get = api.get;
  api.get = async (key: string) => {
    const value = await get(key);
    const port = proxyPort(value);
    if (port === null) return value;
    port.close();
    throw new PluginError(
      "ERR_RUNTIME_UNSUPPORTED",
      `Cannot read context key "${key}" in plugin "${name}": values with methods cannot cross to the process tier`,
      {
        hint: "Store plain data under this key, or run the plugin in the worker tier",
        plugin: name,
      },
    );
  };
  const child = spawn(argv[0] as string, argv.slice(1), {
    stdio: ["pipe", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...runtimeEnv, ...declared },
    cwd: "/",
  });
  let landlocked = false;
  let seccomp = false;
  const transport = new ProcessTransport(child, {
    name,
    maxFrameBytes: MAX_FRAME_BYTES,
    onStarted: (start) => {
      landlocked = start.landlock?.filesystem === true;
      seccomp = start.seccomp;
      if (options.requireSandbox && !landlocked) {
        throw new PluginError(
          "ERR_SANDBOX",
          `Cannot start plugin "${name}" in the process tier: the kernel has no Landlock`,
          { hint: "Use a kernel with Landlock (5.13+)", plugin: name },
        );
      }
      return child.pid === undefined
        ? -1
        : (procfs.findDescendant(child.pid, start.nsPid) ?? child.pid);
    },
  });
  const session = new CallEngine({
    name,
    transport,
    onFailure: (inst, failure) => options.onFailure(inst, failure),
    shutdownGraceMs: options.shutdownTimeoutMs ?? 2000,
    ...(options.calls !== undefined ? { calls: options.calls } : {}),
  });
  broker.attach(session);
  const closeContext = exposeGuarded(api, transport.contextPort(), {
    plugin: name,
    onRefused: (r) =>
      options.onDenied({ plugin: name, what: "proxy", target: `${r.type} ${r.path}` }),
  });
  transport.onClose(closeContext);
  const ready = session.start(options.loadTimeoutMs);
  transport.load({
    name,
    version: manifest.version,
    entryUrl: pathToFileURL(manifest.entry).href,
    maxFrameBytes: MAX_FRAME_BYTES,
    dropEnv: Object.keys(runtimeEnv).filter((k) => !(k in declared)),
  });
  try {
    await ready;
  } catch (error) {
    await session.terminate(error as PluginError);
    throw error;
  }
  const enforcement = describeProcessTier(options.runtime, {
    landlock: landlocked,
    seccomp,
    namespaces: report.namespaces,
    network,
    notes: report.notes,
  });
  return { instance: session, enforcement };
}

function proxyPort(value: unknown): MessagePort | null {
  if (typeof value !== "object" || value === null || !(PROXY_PORT in value)) return null;
  return (value as Record<string, MessagePort>)[PROXY_PORT] ?? null;
}

function ext(): string {
  return import.meta.url.endsWith(".js") ? ".js" : ".ts";
}

function frameworkRoot(): string {
  return dirname(dirname(dirname(fileURLToPath(import.meta.url))));
}

/** The package directory (real path) of `pkg` as Node resolution would find it from `from`. */
function findPackage(from: string, pkg: string): string[] {
  const found = findUp(from, join("node_modules", pkg));
  return found === undefined ? [] : [realpathSync(found)];
}
