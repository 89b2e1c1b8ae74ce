/**
 * Bun plugin worker entry: handshake, then serve.
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
