/**
 * Node worker entry: restricts module loading to the plugin's roots, then serves the plugin.
 *
 * Node 26's permission model does not check module loading (verified: a restricted worker can
 * `import()` any file), so `module.registerHooks` refuses `file:` URLs outside the roots. Hooks
 * registered later by the plugin run first but must call the next hook to load a file, so they
 * reach this check.
 * @module
 */

import { registerHooks } from "node:module";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import { workerData } from "node:worker_threads";
import { PluginError } from "../errors.ts";
import { servePlugin } from "../worker/serve.ts";
import type { WorkerInitData } from "../worker/protocol.ts";

const data = workerData as { init: WorkerInitData; call: MessagePort; ctx: MessagePort };
const roots = data.init.importRoots.map((r) => r.endsWith(sep) ? r : r + sep);

registerHooks({
  load(url, context, nextLoad) {
    if (url.startsWith("file:")) {
      const path = fileURLToPath(url);
      if (!roots.some((r) => path.startsWith(r))) {
        throw new PluginError(
          "ERR_PERMISSION_DENIED",
          `Cannot import "${path}": outside the plugin's read grant`,
          {
            hint:
              "Declare the directory in permissions.filesystem.read, or move the module into the plugin",
            plugin: data.init.name,
          },
        );
      }
    }
    return nextLoad(url, context);
  },
});

await servePlugin(data.init, { call: data.call, ctx: data.ctx });
