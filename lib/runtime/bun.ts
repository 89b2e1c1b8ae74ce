/**
 * Bun adapter. Bun has no permission system: the plugin runs in a Web Worker with a best-effort
 * guard preloaded and an `env` holding only declared variables, and the enforcement report says
 * that none of it is a guarantee. Use the process tier for hostile code on Bun.
 * @module
 */

import { entryUrl } from "./_entry_url.ts";
import { exitOnce } from "./_exit_once.ts";
import { dirname, fileURLToPath } from "./_paths.ts";
import type { RuntimeAdapter, SpawnRequest, WorkerHandle } from "./types.ts";

/**
 * @returns the Bun adapter
 * @example
 * ```ts
 * const adapter = createBunAdapter();
 * ```
 */
export function createBunAdapter(): RuntimeAdapter {
  return {
    name: "bun",
    frameworkRead: () => [dirname(dirname(fileURLToPath(import.meta.url)))],
    spawn: (req) => spawnBun(req),
  };
}

function spawnBun(req: SpawnRequest): WorkerHandle {
  const env: Record<string, string> = { ...req.env, BULKHEAD_GUARD_NET: req.grants.network.mode };
  const worker = new Worker(entryUrl(import.meta.url, "./_web_worker"), {
    type: "module",
    name: req.threadName,
    preload: [fileURLToPath(entryUrl(import.meta.url, "./_bun_guard"))],
    env,
  } as WorkerOptions);
  const exit = exitOnce();
  const finish = exit.finish;
  worker.onerror = (event) => {
    event.preventDefault();
    finish({ code: undefined, error: { name: "Error", message: event.message ?? "worker error" } });
  };
  worker.addEventListener("close", (event) => {
    finish({ code: (event as unknown as { code?: number }).code ?? 0, error: undefined });
  });
  worker.onmessage = (event: MessageEvent) => {
    // Bun drops messages posted before the worker attached its listener: wait for its hello.
    if ((event.data as { t?: string }).t === "hello") {
      worker.postMessage({ init: req.init, call: req.callPort, ctx: req.ctxPort }, [
        req.callPort,
        req.ctxPort,
      ]);
    }
  };
  return {
    terminate() {
      worker.terminate();
      finish({ code: 1, error: undefined });
      return Promise.resolve();
    },
    onExit: exit.onExit,
  };
}
