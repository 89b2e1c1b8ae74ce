/**
 * Deno plugin thread entry (a `worker_threads` worker inside the loader). Module loading is
 * checked by Deno's permissions, inherited from the loader.
 * @module
 */

import { workerData } from "node:worker_threads";
import { servePlugin } from "../worker/serve.ts";
import type { WorkerInitData } from "../worker/protocol.ts";

const data = workerData as { init: WorkerInitData; call: MessagePort; ctx: MessagePort };
await servePlugin(data.init, { call: data.call, ctx: data.ctx });
