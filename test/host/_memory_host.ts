// A host in its own process for memory_truth.test.ts: loads one worker-tier plugin with a 50 MB
// heap, runs one memory attack, and prints what happened. If the attack aborts the runtime, the
// parent sees the exit code instead of the line.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";

const [dir, mode] = process.argv.slice(-2) as [string, string];
const plugin = join(dir, `mem-${mode}`);
mkdirSync(plugin, { recursive: true });
writeFileSync(
  join(plugin, "plugin.json"),
  JSON.stringify({
    name: `mem-${mode}`,
    version: "1.0.0",
    entry: "./mod.js",
    isolation: "worker",
    limits: { heapMb: 50, cpuTimeMs: 20_000 },
  }),
);
writeFileSync(
  join(plugin, "mod.js"),
  `const keep = [];
export default { methods: {
  // One allocation far past the heap limit (about 160 MB of doubles).
  array: () => { keep.push(new Array(2e7).fill(0.5)); return keep.length; },
  // Memory outside the V8 heap: 16 x 32 MiB of ArrayBuffers, touched.
  offheap: () => {
    for (let i = 0; i < 16; i++) keep.push(new Uint8Array(32 * 1024 * 1024).fill(1));
    return keep.length;
  },
} };`,
);
// The worker tier is asked for: Bun and Deno leave parts of it unenforced (allowed, warned).
const host = new PluginHost({ allowUnenforced: true });
const p = await host.load(plugin);
const enforced = p.info.enforcement?.memory.enforced;
const outcome = await p.call(mode).then(
  () => "answered",
  (e: { code?: string }) => e.code ?? "error",
);
process.stdout.write(`${JSON.stringify({ enforced, outcome, status: p.status })}\n`);
await host.close();
