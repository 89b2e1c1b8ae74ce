/**
 * Node 26 adapter: one `worker_threads` worker per plugin, restricted with permission-model
 * `execArgv` flags, `resourceLimits` and a scrubbed `env`; its entry (`_node_worker.ts`) removes
 * what `--permission` does not cover (signals, descriptors, process state: see `AUDIT.md`).
 * @module
 */

import { join } from "node:path";
import { dirname, fileURLToPath } from "./_paths.ts";
import { findUp } from "../find_up.ts";
import { Worker } from "node:worker_threads";
import { serializeError } from "../errors.ts";
import { entryUrl } from "./_entry_url.ts";
import { exitOnce } from "./_exit_once.ts";
import type { RuntimeAdapter, SpawnRequest, WorkerHandle } from "./types.ts";

/**
 * @returns the Node adapter
 * @example
 * ```ts
 * const adapter = createNodeAdapter();
 * ```
 */
export function createNodeAdapter(): RuntimeAdapter {
  return {
    name: "node",
    frameworkRead: () => frameworkDirs(import.meta.url),
    spawn: (req) => spawnNode(req),
  };
}

/**
 * The framework's `lib/` directory, comlink's package directory, and the framework's own
 * package.json (Node reads it for the module type of `dist/*.js`; the working directory's grant,
 * which used to cover it, is dropped in the worker).
 */
export function frameworkDirs(base: string): string[] {
  const lib = dirname(dirname(fileURLToPath(base)));
  const own = findUp(lib, "package.json");
  const comlinkFile = fileURLToPath(import.meta.resolve("comlink"));
  const marker = "/node_modules/comlink/";
  const i = comlinkFile.lastIndexOf(marker);
  const comlink = i >= 0 ? comlinkFile.slice(0, i + marker.length - 1) : dirname(comlinkFile);
  // Node's permission model checks the path as opened, through symlinks (pnpm, workspaces, a
  // linked node_modules): grant the lexical path Node resolves from as well as the real one.
  const lexical = findUp(dirname(lib), join("node_modules", "comlink"));
  const extra = lexical === undefined || lexical === comlink ? [] : [lexical];
  return [lib, comlink, ...extra, ...(own === undefined ? [] : [own])];
}

function spawnNode(req: SpawnRequest): WorkerHandle {
  const worker = new Worker(entryUrl(import.meta.url, "./_node_worker"), {
    name: req.threadName,
    execArgv: req.grants.nodeExecArgv,
    resourceLimits: {
      maxOldGenerationSizeMb: req.heapMb,
      maxYoungGenerationSizeMb: Math.min(16, Math.max(1, req.heapMb >> 3)),
    },
    env: req.env,
    workerData: { init: req.init, call: req.callPort, ctx: req.ctxPort },
    transferList: [req.callPort as never, req.ctxPort as never],
    stdout: false,
    stderr: false,
  });
  const exit = exitOnce();
  const finish = exit.finish;
  worker.on("error", (error) => finish({ code: undefined, error: serializeError(error) }));
  worker.on("exit", (code) => finish({ code, error: undefined }));
  return {
    async terminate() {
      await worker.terminate();
    },
    onExit: exit.onExit,
  };
}
