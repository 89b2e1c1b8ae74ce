/**
 * The last step of every worker bootstrap: once the lockdown ran, import the guest loop (only
 * then, so no plugin-reachable module is evaluated before the lockdown) and serve; if the lockdown
 * failed, report it as the load failure instead. Private to lib/runtime.
 * @module
 */

import { serializeError } from "../errors.ts";
import type { Reply, WorkerInitData } from "../protocol/messages.ts";

/** What a bootstrap received from the host. */
export interface BootstrapData {
  init: WorkerInitData;
  call: MessagePort;
  ctx: MessagePort;
}

/**
 * Serves the plugin, or reports why the lockdown failed.
 *
 * @param data the init data and ports from the host
 * @param failure what the lockdown threw, or undefined
 */
export async function serveLocked(data: BootstrapData, failure: unknown): Promise<void> {
  if (failure === undefined) {
    const { servePlugin } = await import("../guest/serve.ts");
    await servePlugin(data.init, { call: data.call, ctx: data.ctx });
  } else {
    data.call.postMessage([0, 0, serializeError(failure)] satisfies Reply);
  }
}
