/**
 * The smallest host: discover the example plugins, load one, call it.
 *
 * Run: `node examples/quick_start.ts`, `bun examples/quick_start.ts`, or
 * `deno run -A --unstable-worker-options --no-prompt examples/quick_start.ts`.
 * @module
 */

import { fileURLToPath } from "node:url";
import { PluginHost } from "../mod.ts";

const host = new PluginHost({
  pluginDirs: [fileURLToPath(new URL("./plugins", import.meta.url))],
  context: { config: { greeting: "Hello" } },
});
try {
  await host.discover();
  const hello = await host.load("hello");
  console.log(await hello.call("greet", "Ada"));
  console.log(hello.info.enforcement?.filesystem);
} finally {
  await host.close();
}
