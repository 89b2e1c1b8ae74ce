/**
 * Deno adapter. Each plugin runs in a `node:worker_threads` worker created *by a loader Web
 * Worker that already holds the plugin's permissions*:
 *
 * - Deno checks a worker's static imports against the thread that created it, not the worker's
 *   own permissions, so creating the plugin thread from an `-A` host would let its imports read
 *   anything. The loader closes that hole.
 * - A Web Worker has no heap limit (an OOM kills the host); a `worker_threads` worker honours
 *   `resourceLimits` and inherits the loader's restrictions.
 *
 * Either way the plugin thread's entry locks down what Deno's permissions leave reachable
 * (`Deno.kill`, stdin, signal listeners, process state: see `AUDIT.md`) before the plugin loads.
 *
 * The host needs `--unstable-worker-options` (or deno.json `"unstable": ["worker-options"]`) and
 * should run with `--no-prompt`.
 * @module
 */

import { PluginError, type SerializedError } from "../errors.ts";
import { entryUrl } from "./_entry_url.ts";
import { exitOnce } from "./_exit_once.ts";
import { dirname, fileURLToPath } from "./_paths.ts";
import type { RuntimeAdapter, SpawnRequest, WorkerHandle } from "./types.ts";

type LoaderMessage =
  | { t: "hello" }
  | { t: "exit"; code: number }
  | { t: "error"; error: SerializedError }
  | { t: "terminated" };

/**
 * @returns the Deno adapter
 * @example
 * ```ts
 * const adapter = createDenoAdapter();
 * ```
 */
export function createDenoAdapter(): RuntimeAdapter {
  return {
    name: "deno",
    // Paths under node_modules skip Deno's read check, so only lib/ is needed.
    frameworkRead: () => [dirname(dirname(fileURLToPath(import.meta.url)))],
    spawn: (req) => spawnDeno(req),
  };
}

function spawnDeno(req: SpawnRequest): WorkerHandle {
  let worker: Worker;
  try {
    // Without a heap limit the plugin runs in this Web Worker itself: its entry is our code (loaded
    // with the host's permissions) and it imports the plugin with a computed import(), which Deno
    // checks against the worker's own permissions. With one, a loader holding the plugin's
    // permissions creates a heap-limited worker_threads worker (slow: nested workers start in
    // ~600 ms on Deno 2.9).
    const entry = req.heapLimit ? "./_deno_loader" : "./_web_worker";
    worker = new Worker(entryUrl(import.meta.url, entry), {
      type: "module",
      name: `bulkhead:${req.name}`,
      deno: { permissions: req.grants.deno },
    } as WorkerOptions);
  } catch (cause) {
    throw new PluginError(
      "ERR_RUNTIME_UNSUPPORTED",
      `Cannot start plugin "${req.name}": Deno refused the worker permissions`,
      {
        hint:
          "Run the host with --unstable-worker-options and grant the host every permission the plugin declares",
        cause,
        plugin: req.name,
      },
    );
  }
  const exit = exitOnce();
  const finish = exit.finish;
  let onTerminated: (() => void) | undefined;
  worker.onerror = (event) => {
    // Unhandled, a worker error propagates to the host and ends it.
    event.preventDefault();
    finish({ code: undefined, error: { name: "Error", message: event.message ?? "worker error" } });
  };
  worker.onmessage = (event: MessageEvent<LoaderMessage>) => {
    const m = event.data;
    if (m.t === "hello") {
      worker.postMessage(
        {
          // The declared variable names, for the environment view of the lockdown.
          init: { ...req.init, declaredEnv: [...req.grants.env] },
          call: req.callPort,
          ctx: req.ctxPort,
          heapMb: req.heapMb,
          url: entryUrl(import.meta.url, "./_deno_worker").href,
        },
        [req.callPort, req.ctxPort],
      );
    } else if (m.t === "exit") finish({ code: m.code, error: undefined });
    else if (m.t === "error") finish({ code: undefined, error: m.error });
    else if (m.t === "terminated") onTerminated?.();
  };
  return {
    async terminate() {
      if (!exit.done && req.heapLimit) {
        await new Promise<void>((resolve) => {
          onTerminated = resolve;
          worker.postMessage({ t: "terminate" });
          setTimeout(resolve, 500);
        });
      }
      worker.terminate();
      finish({ code: 1, error: undefined });
    },
    onExit: exit.onExit,
  };
}
