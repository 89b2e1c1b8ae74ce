/**
 * The worker tier: the plugin runs in a worker thread of this process with the permissions the
 * runtime enforces for it (Deno worker permissions, Node's per-worker permission model). This
 * file computes the grants and the enforcement report, wires the context broker, starts the
 * worker through the runtime adapter, and hands the call engine a transport over the worker's
 * dedicated MessagePort.
 * @module
 */

import { sep } from "node:path";
import { pathToFileURL } from "node:url";
import { PluginError } from "../errors.ts";
import type { Manifest } from "../manifest.ts";
import type { Logger } from "../logger.ts";
import { exposeGuarded } from "../broker/guarded_endpoint.ts";
import { findEscapingSymlinks, realOrSelf } from "../symlinks.ts";
import type {
  CallLimits,
  InstanceCallbacks,
  PluginBudgets,
  PluginInstance,
  Transport,
  TransportSink,
} from "./types.ts";
import { CallEngine } from "./engine.ts";
import { createBroker, declaredEnv, packageJsonAbove } from "./_broker.ts";
import type { Request } from "../protocol/messages.ts";
import { deriveGrants } from "../../permissions/grants.ts";
import {
  describeEnforcement,
  type Enforcement,
  type EnforcementArea,
  unenforcedAreas,
} from "../../permissions/enforcement.ts";
import type { ExitReason, RuntimeAdapter, WorkerHandle } from "../runtime/types.ts";

/** Areas `requireEnforcement: true` checks. */
export const PERMISSION_AREAS: readonly EnforcementArea[] = [
  "filesystem",
  "network",
  "env",
  "subprocess",
  "ffi",
  "signals",
];

let threadSeq = 0;

/** What {@link startWorkerInstance} needs. */
export interface WorkerStartOptions extends InstanceCallbacks {
  /** Manifest whose entry and reads point at the code to run. */
  manifest: Manifest;
  adapter: RuntimeAdapter;
  store: Map<string, unknown>;
  logger: Logger;
  /** Areas that must be enforced, or empty. */
  requireAreas: readonly EnforcementArea[];
  loadTimeoutMs: number;
  /** How long a stopping worker may take before it is terminated. */
  shutdownTimeoutMs: number;
  /** In-flight and queue bounds of calls. */
  calls?: CallLimits;
  /** Bounds on context values and log lines. */
  budgets?: PluginBudgets;
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
export async function startWorkerInstance(
  options: WorkerStartOptions,
): Promise<{ instance: PluginInstance; enforcement: Enforcement }> {
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
      // Node reads the plugin's nearest package.json for its module type (see packageJsonAbove).
      filesystem: { read: [...read, ...packageJsonAbove(pluginDir)], write },
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
      {
        hint: 'Set "isolation": "process" in plugin.json (the kernel enforces it on Linux), ' +
          "or relax requireEnforcement",
        plugin: name,
      },
    );
  }
  const env = declaredEnv(grants.env);
  const threadName = `bh-${(++threadSeq).toString(36)}`;
  const call = new MessageChannel();
  const ctx = new MessageChannel();
  const broker = createBroker({ ...options, network: grants.network });
  const api = broker.api;
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
  const instance = new CallEngine({
    name,
    transport: new WorkerTransport({
      worker,
      port: call.port1,
      closeContext,
      threadName: adapter.name === "deno" ? undefined : threadName,
      name,
    }),
    onFailure: (inst, failure) => options.onFailure(inst, failure),
    shutdownGraceMs: options.shutdownTimeoutMs,
    ...(options.calls !== undefined ? { calls: options.calls } : {}),
  });
  broker.attach(instance);
  try {
    await instance.start(options.loadTimeoutMs);
  } catch (error) {
    await instance.terminate(error as PluginError);
    throw error;
  }
  return { instance, enforcement };
}

/** The worker's dedicated call port and its exit, as the engine's transport. */
class WorkerTransport implements Transport {
  readonly threadName: string | undefined;
  #worker: WorkerHandle;
  #port: MessagePort;
  #closeContext: () => void;
  #name: string;
  #closed: Promise<void> | undefined;

  constructor(o: {
    worker: WorkerHandle;
    port: MessagePort;
    closeContext: () => void;
    threadName: string | undefined;
    name: string;
  }) {
    this.#worker = o.worker;
    this.#port = o.port;
    this.#closeContext = o.closeContext;
    this.threadName = o.threadName;
    this.#name = o.name;
  }

  connect(sink: TransportSink): void {
    this.#port.onmessage = (event: MessageEvent) => sink.reply(event.data);
    this.#port.onmessageerror = () => sink.violation("a message that cannot be read");
    this.#worker.onExit((reason) => sink.fail(crashError(this.#name, reason), heapOf(reason)));
  }

  post(request: Request): void {
    this.#port.postMessage(request);
  }

  close(_graceMs: number): Promise<void> {
    this.#closed ??= (async () => {
      this.#closeContext();
      this.#port.onmessage = null;
      this.#port.close();
      await this.#worker.terminate();
    })();
    return this.#closed;
  }

  kill(): void {
    void this.close(0);
  }
}

function heapOf(reason: ExitReason): "heap" | "crash" {
  return reason.error?.code === "ERR_WORKER_OUT_OF_MEMORY" ? "heap" : "crash";
}

function crashError(name: string, reason: ExitReason): PluginError {
  const detail = reason.error !== undefined
    ? `${reason.error.name}: ${reason.error.message}`
    : `exit code ${reason.code ?? "unknown"}`;
  return new PluginError(
    "ERR_PLUGIN_CRASHED",
    `Cannot continue plugin "${name}": its worker died (${detail})`,
    {
      hint: "Check the plugin for uncaught errors, heap exhaustion or process.exit()",
      plugin: name,
    },
  );
}
