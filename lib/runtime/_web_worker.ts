/**
 * Web Worker plugin entry (Bun, and Deno with `denoHeapLimit: false`): handshake, then serve.
 * Bun drops messages posted before the worker attached its listener, hence the hello. The plugin
 * is imported with a computed `import()`, so Deno checks it and its static imports against this
 * worker's own (the plugin's) permissions.
 * @module
 */

import { servePlugin } from "../worker/serve.ts";
import type { WorkerInitData } from "../worker/protocol.ts";

const scope = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};
scope.onmessage = (event: MessageEvent) => {
  scope.onmessage = null;
  const m = event.data as { init: WorkerInitData; call: MessagePort; ctx: MessagePort };
  void servePlugin(m.init, { call: m.call, ctx: m.ctx });
};
scope.postMessage({ t: "hello" });
