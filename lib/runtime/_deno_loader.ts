/**
 * Deno loader Web Worker: created with the plugin's permissions, it creates the plugin's
 * `worker_threads` worker (which inherits those permissions, so the plugin's static imports are
 * checked against them) with a heap limit, and relays its exit to the host.
 * @module
 */

import { Worker } from "node:worker_threads";
import { serializeError } from "../errors.ts";

interface Start {
  init: unknown;
  call: MessagePort;
  ctx: MessagePort;
  heapMb: number;
  url: string;
}

const scope = globalThis as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};
let inner: Worker | undefined;

scope.onmessage = (event: MessageEvent) => {
  const m = event.data as Start | { t: "terminate" };
  if ("t" in m) {
    const done = () => scope.postMessage({ t: "terminated" });
    if (inner) inner.terminate().then(done, done);
    else done();
    return;
  }
  try {
    inner = new Worker(new URL(m.url), {
      workerData: { init: m.init, call: m.call, ctx: m.ctx },
      transferList: [m.call as never, m.ctx as never],
      resourceLimits: {
        maxOldGenerationSizeMb: m.heapMb,
        maxYoungGenerationSizeMb: Math.min(16, Math.max(1, m.heapMb >> 3)),
      },
    });
  } catch (error) {
    scope.postMessage({ t: "error", error: serializeError(error) });
    return;
  }
  inner.on("error", (error) => scope.postMessage({ t: "error", error: serializeError(error) }));
  inner.on("exit", (code) => scope.postMessage({ t: "exit", code }));
};
scope.postMessage({ t: "hello" });
