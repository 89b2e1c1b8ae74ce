/**
 * Deno plugin thread entry (a `worker_threads` worker inside the loader). Module loading is
 * checked by Deno's permissions, inherited from the loader; the thread's ambient authority is
 * locked down before anything imports a `node:` module (Deno fixes a module's named exports when
 * it first evaluates), then the plugin is served.
 * @module
 */

import { lockdown } from "./_lockdown.ts";
import type { WorkerInitData } from "../protocol/messages.ts";
import { serveLocked } from "./_serve_locked.ts";

const { workerData } = (globalThis as unknown as {
  process: { getBuiltinModule(id: "node:worker_threads"): { workerData: unknown } };
}).process.getBuiltinModule("node:worker_threads");
const data = workerData as {
  init: WorkerInitData & { declaredEnv?: string[] };
  call: MessagePort;
  ctx: MessagePort;
};
let failure: unknown;
try {
  lockdown({ plugin: data.init.name, env: data.init.declaredEnv });
} catch (error) {
  failure = error;
}
await serveLocked(data, failure);
