/**
 * plugin.call round trip vs a raw postMessage echo over the same kind of channel, in the same run:
 * sequential, 1,000 concurrent, and load time vs a raw worker's first message.
 *
 * Run: node bench/call.bench.ts | bun bench/call.bench.ts |
 *      deno run -A --unstable-worker-options --no-prompt bench/call.bench.ts
 * @module
 */

import { Worker } from "node:worker_threads";
import { PluginHost } from "../mod.ts";

const runtime = process.versions.deno ? "deno" : process.versions.bun ? "bun" : "node";
const echoUrl = new URL("./_echo_worker.ts", import.meta.url);
const pluginDir = new URL("./fixtures/echo", import.meta.url).pathname;
const payload = { id: 42, name: "resize", args: [100, 200] };

interface Raw {
  call(v: unknown): Promise<unknown>;
  close(): Promise<void>;
}

async function startRaw(): Promise<{ raw: Raw; startupMs: number }> {
  const t0 = performance.now();
  const { port1, port2 } = new MessageChannel();
  const w = new Worker(echoUrl, { workerData: { port: port2 }, transferList: [port2 as never] });
  await new Promise((r) => w.once("message", r));
  const startupMs = performance.now() - t0;
  const pending = new Map<number, (v: unknown) => void>();
  let next = 1;
  port1.addEventListener("message", (e: MessageEvent) => {
    const [id, , value] = e.data as [number, number, unknown];
    const resolve = pending.get(id);
    pending.delete(id);
    resolve?.(value);
  });
  port1.start();
  return {
    startupMs,
    raw: {
      call: (v) =>
        new Promise((resolve) => {
          const id = next++;
          pending.set(id, resolve);
          port1.postMessage([0, id, "echo", [v]]);
        }),
      close: async () => {
        port1.close();
        await w.terminate();
      },
    },
  };
}

async function sequential(fn: (v: unknown) => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < 300; i++) await fn(payload);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(payload);
  return ((performance.now() - t0) * 1000) / n;
}

async function concurrent(
  fn: (v: unknown) => Promise<unknown>,
  width: number,
  rounds: number,
): Promise<number> {
  const batch = () => Promise.all(Array.from({ length: width }, () => fn(payload)));
  await batch();
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) await batch();
  return ((performance.now() - t0) * 1000) / (width * rounds);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const rows: [string, number, number][] = [];
// The worker tier is what this bench measures: on Bun and Deno it does not enforce the manifest,
// so the host must opt in (it warns once per load).
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const host = new PluginHost({ allowUnenforced: true, logger: quiet });
try {
  // Load time: raw worker to first message vs host.load() (manifest, grants, worker, init, ready).
  const rawStarts: number[] = [];
  const loads: number[] = [];
  for (let i = 0; i < 7; i++) {
    const { raw, startupMs } = await startRaw();
    rawStarts.push(startupMs);
    await raw.close();
    const t0 = performance.now();
    await host.load(pluginDir);
    loads.push(performance.now() - t0);
    await host.unload("bench-echo");
  }
  rows.push(["load (ms, median of 7)", median(rawStarts), median(loads)]);
  if (runtime === "deno") {
    const fast = new PluginHost({ denoHeapLimit: false, allowUnenforced: true, logger: quiet });
    const fastLoads: number[] = [];
    try {
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        await fast.load(pluginDir);
        fastLoads.push(performance.now() - t0);
        await fast.unload("bench-echo");
      }
    } finally {
      await fast.close();
    }
    rows.push(["load, denoHeapLimit: false", median(rawStarts), median(fastLoads)]);
  }

  const { raw } = await startRaw();
  const plugin = await host.load(pluginDir);
  const viaPlugin = (v: unknown) => plugin.call("echo", v);
  for (let rep = 0; rep < 2; rep++) {
    rows.push([
      `sequential (µs/call) #${rep + 1}`,
      await sequential(raw.call, 5000),
      await sequential(viaPlugin, 5000),
    ]);
  }
  // Alternating runs, median of each side: one 20-round run spread by ±25% on a shared VM.
  const rawRuns: number[] = [];
  const pluginRuns: number[] = [];
  for (let rep = 0; rep < 7; rep++) {
    rawRuns.push(await concurrent(raw.call, 1000, 20));
    pluginRuns.push(await concurrent(viaPlugin, 1000, 20));
  }
  rows.push(["1,000 concurrent (µs/call, med 7)", median(rawRuns), median(pluginRuns)]);
  await raw.close();
} finally {
  await host.close();
}

console.log(
  `\ncall.bench on ${runtime} ${
    process.versions.deno ?? process.versions.bun ?? process.versions.node
  }`,
);
console.log("measurement                      raw      bulkhead   ratio");
for (const [label, a, b] of rows) {
  console.log(
    `${label.padEnd(30)} ${a.toFixed(2).padStart(8)} ${b.toFixed(2).padStart(10)}   ${
      (b / a).toFixed(2)
    }x`,
  );
}
