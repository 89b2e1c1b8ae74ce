/**
 * Starts one worker instance of a plugin: symlink check, grants, enforcement report, context
 * broker, worker, ready handshake. Private helper of the host.
 * @module
 */

import { sep } from "node:path";
import { pathToFileURL } from "node:url";
import { PluginError } from "./errors.ts";
import type { Manifest } from "./manifest.ts";
import type { Logger } from "./logger.ts";
import { createContextApi } from "./context.ts";
import { exposeGuarded } from "./guarded_endpoint.ts";
import { findEscapingSymlinks, realOrSelf } from "./symlinks.ts";
import { type InstanceCallbacks, WorkerInstance } from "./instance.ts";
import { deriveGrants } from "../permissions/grants.ts";
import {
  describeEnforcement,
  type Enforcement,
  type EnforcementArea,
  unenforcedAreas,
} from "../permissions/enforcement.ts";
import type { RuntimeAdapter } from "./runtime/types.ts";

/** Areas `requireEnforcement: true` checks. */
export const PERMISSION_AREAS: readonly EnforcementArea[] = [
  "filesystem",
  "network",
  "env",
  "subprocess",
  "ffi",
];

let threadSeq = 0;

/** What {@link spawnInstance} needs. */
export interface SpawnOptions extends InstanceCallbacks {
  /** Manifest whose entry and reads point at the code to run. */
  manifest: Manifest;
  adapter: RuntimeAdapter;
  store: Map<string, unknown>;
  logger: Logger;
  /** Areas that must be enforced, or empty. */
  requireAreas: readonly EnforcementArea[];
  loadTimeoutMs: number;
  /** Deno: false trades the heap limit for a fast start (`HostOptions.denoHeapLimit`). */
  heapLimit: boolean;
}

/**
 * Starts a worker for the plugin and waits until its `init` returned. The caller has read the
 * package with `readPackage` (which refuses symlinks inside it).
 *
 * @param options what to start and the host callbacks
 * @returns the ready instance and its enforcement report
 * @throws {PluginError} ERR_PERMISSION_DENIED, ERR_RUNTIME_UNSUPPORTED, ERR_PLUGIN_INIT,
 * ERR_CALL_TIMEOUT
 */
export async function spawnInstance(
  options: SpawnOptions,
): Promise<{ instance: WorkerInstance; enforcement: Enforcement }> {
  const { manifest, adapter } = options;
  const name = manifest.name;
  const pluginDir = await realOrSelf(manifest.dir);
  const read = await Promise.all(manifest.permissions.filesystem.read.map(realOrSelf));
  const write = await Promise.all(manifest.permissions.filesystem.write.map(realOrSelf));
  const granted = [pluginDir, ...read, ...write];
  // The package reader (`readPackage`, run before every start) already refused any link inside
  // the plugin directory; only grants outside it still need walking.
  const outside = [...read, ...write].filter((p) =>
    p !== pluginDir && !p.startsWith(pluginDir + sep)
  );
  const escapes = await findEscapingSymlinks(outside, granted);
  if (escapes.length > 0) {
    throw new PluginError(
      "ERR_PERMISSION_DENIED",
      `Cannot load plugin "${name}": symbolic link ${escapes[0]} leads outside its grants`,
      { hint: "Remove the link, or declare its target in permissions.filesystem", plugin: name },
    );
  }
  const frameworkRead = adapter.frameworkRead();
  const grants = deriveGrants(
    {
      pluginDir,
      network: manifest.permissions.network,
      filesystem: { read, write },
      env: manifest.permissions.env,
    },
    { frameworkRead },
  );
  const enforcement = describeEnforcement(adapter.name, {
    network: manifest.permissions.network,
    heapLimit: options.heapLimit,
  });
  const missing = unenforcedAreas(enforcement).filter((a) => options.requireAreas.includes(a));
  if (missing.length > 0) {
    throw new PluginError(
      "ERR_RUNTIME_UNSUPPORTED",
      `Cannot load plugin "${name}": ${adapter.name} does not enforce ${
        missing.join(", ")
      } in the worker tier`,
      { hint: "Run the host on Deno or Node, or relax requireEnforcement", plugin: name },
    );
  }
  const env: Record<string, string> = {};
  for (const k of grants.env) {
    const value = process.env[k];
    if (value !== undefined) env[k] = value;
  }
  const threadName = `bh-${(++threadSeq).toString(36)}`;
  const call = new MessageChannel();
  const ctx = new MessageChannel();
  const holder: { instance?: WorkerInstance } = {};
  const api = createContextApi({
    plugin: name,
    read: manifest.permissions.context.read,
    write: manifest.permissions.context.write,
    network: grants.network,
    connections: manifest.limits.connections,
    store: options.store,
    logger: options.logger,
    onDenied: options.onDenied,
    onLimit: options.onLimit,
    onHook: (hook, priority) => {
      if (holder.instance !== undefined) options.onHook(holder.instance, hook, priority);
    },
  });
  const closeContext = exposeGuarded(api, ctx.port1, {
    plugin: name,
    onRefused: (r) =>
      options.onDenied({ plugin: name, what: "proxy", target: `${r.type} ${r.path}` }),
  });
  const worker = adapter.spawn({
    name,
    grants,
    threadName,
    heapMb: manifest.limits.heapMb,
    heapLimit: options.heapLimit,
    env,
    init: {
      name,
      version: manifest.version,
      entryUrl: pathToFileURL(manifest.entry as string).href,
      importRoots: [pluginDir, ...read, ...frameworkRead],
    },
    callPort: call.port2,
    ctxPort: ctx.port2,
  });
  const instance = new WorkerInstance({
    name,
    threadName: adapter.name === "deno" ? undefined : threadName,
    worker,
    port: call.port1,
    closeContext,
    onFailure: (inst, failure) => options.onFailure(inst, failure),
  });
  holder.instance = instance;
  try {
    await instance.waitReady(options.loadTimeoutMs);
  } catch (error) {
    const e = error instanceof PluginError
      ? error
      : new PluginError("ERR_PLUGIN_INIT", `Cannot load plugin "${name}"`, {
        cause: error,
        plugin: name,
      });
    await instance.terminate(e);
    throw e;
  }
  return { instance, enforcement };
}
