/**
 * Web Worker plugin entry (Bun, and Deno with `denoHeapLimit: false`): handshake, lock down
 * (Deno; Bun's guard is preloaded), then serve. Bun drops messages posted before the worker
 * attached its listener, hence the hello. The plugin is imported with a computed `import()`, so
 * Deno checks it and its static imports against this worker's own (the plugin's) permissions.
 * @module
 */

import { serializeError } from "../errors.ts";
import { lockdown } from "./_lockdown.ts";
import type { Reply, WorkerInitData } from "../protocol/messages.ts";

const scope = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
  Deno?: unknown;
};
scope.onmessage = async (event: MessageEvent) => {
  scope.onmessage = null;
  const m = event.data as {
    init: WorkerInitData & { declaredEnv?: string[] };
    call: MessagePort;
    ctx: MessagePort;
  };
  try {
    if (scope.Deno !== undefined) lockdown({ plugin: m.init.name, env: m.init.declaredEnv });
  } catch (error) {
    m.call.postMessage([0, 0, serializeError(error)] satisfies Reply);
    return;
  }
  const { servePlugin } = await import("../guest/serve.ts");
  await servePlugin(m.init, { call: m.call, ctx: m.ctx });
};
scope.postMessage({ t: "hello" });
