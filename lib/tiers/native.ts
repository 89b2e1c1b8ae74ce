/**
 * The native tier: the library's verified bytes go to a sandboxed child process (`ffi/`), and
 * the call engine drives it like every other tier. Context access goes through the same broker
 * (`createContextApi`) as the worker and process tiers. `ffi/` (and koffi) is imported only
 * here, lazily.
 * @module
 */

import { PluginError } from "../errors.ts";
import type { Manifest } from "../manifest.ts";
import type { Logger } from "../logger.ts";
import type { CallLimits, InstanceCallbacks, PluginBudgets, PluginInstance } from "./types.ts";
import { createBroker, declaredEnv } from "./_broker.ts";
import { PROXY_PORT } from "../protocol/messages.ts";
import { deriveGrants } from "../../permissions/grants.ts";
import { describeNativeTier } from "../../permissions/child_enforcement.ts";
import type { Enforcement } from "../../permissions/enforcement.ts";
import type { RuntimeName } from "../../permissions/enforcement.ts";

/** The platform key of this machine, as used in a manifest's `native` map. */
export function platformKey(): string {
  return `${process.platform}-${process.arch}`;
}

/** What {@link startNativeInstance} needs. */
export interface NativeStartOptions extends InstanceCallbacks {
  manifest: Manifest;
  /** Verified bytes of the library for this platform. */
  library: Uint8Array;
  /** Absolute path the bytes came from (for messages). */
  libraryPath: string;
  runtime: RuntimeName;
  store: Map<string, unknown>;
  logger: Logger;
  /** Refuse to start without namespaces and Landlock. */
  requireSandbox: boolean;
  /** How long the library may take to load and initialise. */
  loadTimeoutMs: number;
  /** How long bh_shutdown() may take. */
  shutdownTimeoutMs: number;
  /** In-flight and queue bounds of calls. */
  calls?: CallLimits;
  /** Bounds on context values and log lines. */
  budgets?: PluginBudgets;
}

/**
 * Starts a native plugin in its child process and wraps it as an instance.
 *
 * @param options manifest, verified library bytes, host services
 * @returns the instance and its enforcement report
 * @throws {PluginError} ERR_NATIVE_LOAD, ERR_ABI, ERR_PLUGIN_INIT, ERR_SANDBOX
 */
export async function startNativeInstance(
  options: NativeStartOptions,
): Promise<{ instance: PluginInstance; enforcement: Enforcement }> {
  const { manifest } = options;
  const name = manifest.name;
  const grants = deriveGrants({
    pluginDir: manifest.dir,
    network: manifest.permissions.network,
    filesystem: manifest.permissions.filesystem,
    env: manifest.permissions.env,
  });
  const broker = createBroker({ ...options, network: grants.network });
  const api = broker.api;
  const { launchNativePlugin } = await import("../../ffi/native_plugin.ts");
  const fs = manifest.permissions.filesystem;
  const session = await launchNativePlugin({
    name,
    libraryPath: options.libraryPath,
    libraryBytes: options.library,
    limits: { ...manifest.limits },
    permissions: {
      network: manifest.permissions.network,
      filesystem: fs.read.length + fs.write.length === 0
        ? "none"
        : { read: fs.read, write: fs.write },
    },
    context: async (op, key, value) => {
      if (op === "set") return await api.set(key, value);
      const got = await api.get(key);
      if (typeof got === "object" && got !== null && PROXY_PORT in got) {
        (got as Record<string, MessagePort>)[PROXY_PORT]?.close();
        throw new PluginError(
          "ERR_RUNTIME_UNSUPPORTED",
          `Cannot read context key "${key}" in plugin "${name}": values with methods cannot cross to a native plugin`,
          { hint: "Store plain data under this key", plugin: name },
        );
      }
      return got;
    },
    log: (level, message) => void api.log(level, message),
    sandbox: options.requireSandbox ? true : "auto",
    env: declaredEnv(manifest.permissions.env),
    callTimeoutMs: manifest.limits.cpuTimeMs,
    startTimeoutMs: options.loadTimeoutMs,
    shutdownTimeoutMs: options.shutdownTimeoutMs,
    ...(options.calls !== undefined ? { calls: options.calls } : {}),
  }, (inst, failure) => options.onFailure(inst, failure));
  broker.attach(session.instance);
  return {
    instance: session.instance,
    enforcement: describeNativeTier(
      options.runtime,
      session.enforcement,
      manifest.permissions.network,
    ),
  };
}
