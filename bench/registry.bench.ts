/**
 * Registry benchmarks, each against a raw baseline measured in the same run:
 *
 * 1. Dependency resolution of 1,000 plugins (random DAG, semver ranges): `resolveLoadOrder`
 *    vs `semver.satisfies` on every edge plus a hand-written Kahn sort. Target: ratio ≤ 2.
 * 2. Hook dispatch through 10 async handlers: `HookRegistry.run` (default: 5 s deadline and
 *    timing stats; then deadlines off; then timing off too) vs awaiting the 10 functions in a
 *    plain loop. The handlers do nothing, so this shows the registry's fixed cost per handler;
 *    a real handler forwards to a worker (10–35 µs per round trip), which dwarfs it.
 *
 * Run: `node bench/registry.bench.ts`, `bun bench/registry.bench.ts`, `deno run -A bench/registry.bench.ts`.
 * Prints medians of interleaved rounds; trust the ratios, not the absolute numbers.
 *
 * @module
 */

import process from "node:process";
import semver from "semver";
import { type Catalog, type CatalogEntry, resolveLoadOrder } from "../lib/dependencies.ts";
import { HookRegistry } from "../lib/hooks.ts";

const PLUGINS = 1000;
const ROUNDS = 15;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function makeCatalog(n: number, seed: number): Map<string, CatalogEntry> {
  const rand = lcg(seed);
  const catalog = new Map<string, CatalogEntry>();
  for (let i = 0; i < n; i++) {
    const dependencies: Record<string, string> = {};
    const count = Math.floor(rand() * 6);
    for (let k = 0; k < count && i > 0; k++) {
      const j = Math.floor(rand() * i);
      const major = (j % 5) + 1;
      const minor = j % 7;
      const r = rand();
      dependencies[`plugin-${j}`] = r < 0.4
        ? `^${major}.${minor}.0`
        : r < 0.7
        ? `~${major}.${j % 7}.0 || ^${major}.0.0`
        : `>=${major}.0.0 <${major + 1}.0.0`;
    }
    catalog.set(`plugin-${i}`, { version: `${(i % 5) + 1}.${i % 7}.${i % 11}`, dependencies });
  }
  return catalog;
}

/** The raw baseline: check every edge with semver.satisfies, then Kahn's algorithm. */
function baselineOrder(catalog: Catalog): string[] {
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const [name, entry] of catalog) {
    let deg = 0;
    for (const [dep, range] of Object.entries(entry.dependencies ?? {})) {
      const target = catalog.get(dep);
      if (target === undefined || !semver.satisfies(target.version, range)) {
        throw new Error(`unsatisfied ${name} -> ${dep}`);
      }
      deg++;
      const list = dependents.get(dep);
      if (list === undefined) dependents.set(dep, [name]);
      else list.push(name);
    }
    indegree.set(name, deg);
  }
  const queue: string[] = [];
  for (const [name, deg] of indegree) if (deg === 0) queue.push(name);
  for (let i = 0; i < queue.length; i++) {
    for (const d of dependents.get(queue[i] as string) ?? []) {
      const deg = (indegree.get(d) as number) - 1;
      indegree.set(d, deg);
      if (deg === 0) queue.push(d);
    }
  }
  if (queue.length !== catalog.size) throw new Error("cycle");
  return queue;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function fmt(n: number, unit: string): string {
  return `${n.toFixed(n < 10 ? 2 : 1)} ${unit}`;
}

function benchDependencies(): void {
  // A fresh catalog per round (same shape, new seed), so neither side profits from a warm cache of
  // its own strings; both see the same catalog within a round.
  const names = (c: Catalog) => [...c.keys()];
  const ours: number[] = [];
  const base: number[] = [];
  let edges = 0;
  for (let round = 0; round < ROUNDS + 3; round++) {
    const catalog = makeCatalog(PLUGINS, 1000 + round);
    const targets = names(catalog);
    const order = (round % 2 === 0) ? ["ours", "base"] : ["base", "ours"];
    for (const which of order) {
      const t0 = performance.now();
      const out = which === "ours" ? resolveLoadOrder(targets, catalog) : baselineOrder(catalog);
      const ms = performance.now() - t0;
      if (out.length !== PLUGINS) throw new Error("wrong length");
      if (round >= 3) (which === "ours" ? ours : base).push(ms);
    }
    if (round === 0) {
      for (const e of catalog.values()) edges += Object.keys(e.dependencies ?? {}).length;
    }
  }
  const o = median(ours);
  const b = median(base);
  console.log(
    `dependency resolution, ${PLUGINS} plugins, ~${edges} ranged edges (median of ${ROUNDS})`,
  );
  console.log(`  resolveLoadOrder           ${fmt(o, "ms")}`);
  console.log(`  baseline satisfies + Kahn  ${fmt(b, "ms")}`);
  console.log(`  ratio                      ${(o / b).toFixed(2)}x  (target <= 2x)`);
}

async function benchHooks(): Promise<void> {
  const HANDLERS = 10;
  const RUNS = 20_000;
  const fns: Array<(n: number) => Promise<number>> = [];
  // deno-lint-ignore require-await
  for (let i = 0; i < HANDLERS; i++) fns.push(async (n: number) => n + 1);
  const withDeadline = new HookRegistry();
  const noDeadline = new HookRegistry({ timeoutMs: Infinity });
  const bare = new HookRegistry({ timeoutMs: Infinity, timing: false });
  for (const [i, fn] of fns.entries()) {
    for (const hooks of [withDeadline, noDeadline, bare]) {
      hooks.register("on_request", { plugin: `p${i}`, handler: fn });
    }
  }

  const direct = async (): Promise<number> => {
    let sum = 0;
    for (let r = 0; r < RUNS; r++) {
      let v = r;
      for (let i = 0; i < fns.length; i++) {
        const out = await (fns[i] as (n: number) => Promise<number>)(v);
        if (out !== undefined) v = out;
      }
      sum += v;
    }
    return sum;
  };
  const through = (hooks: HookRegistry) => async (): Promise<number> => {
    let sum = 0;
    for (let r = 0; r < RUNS; r++) sum += (await hooks.run("on_request", r)).value;
    return sum;
  };
  const cases: Array<[string, () => Promise<number>]> = [
    ["direct loop", direct],
    ["run, 5 s deadline", through(withDeadline)],
    ["run, no deadline", through(noDeadline)],
    ["run, no deadline/timing", through(bare)],
  ];
  const times = new Map<string, number[]>(cases.map(([n]) => [n, []]));
  const expected = RUNS * (RUNS - 1) / 2 + RUNS * HANDLERS;
  for (let round = 0; round < 7; round++) {
    for (const [name, fn] of round % 2 === 0 ? cases : [...cases].reverse()) {
      const t0 = performance.now();
      const sum = await fn();
      const ms = performance.now() - t0;
      if (sum !== expected) throw new Error(`${name}: wrong sum ${sum}`);
      if (round >= 2) times.get(name)?.push(ms);
    }
  }
  const us = (name: string) => (median(times.get(name) as number[]) * 1000) / RUNS;
  const base = us("direct loop");
  console.log(`hook dispatch, ${HANDLERS} async handlers, ${RUNS} runs per round (median of 5)`);
  for (const [name] of cases) {
    const v = us(name);
    console.log(`  ${name.padEnd(26)} ${fmt(v, "µs/run")}  ratio ${(v / base).toFixed(2)}x`);
  }
}

const runtime = process.versions.deno !== undefined
  ? `deno ${process.versions.deno}`
  : process.versions.bun !== undefined
  ? `bun ${process.versions.bun}`
  : `node ${process.versions.node}`;
console.log(`# registry bench on ${runtime}`);
benchDependencies();
await benchHooks();

/**
 * Hook dispatch through 10 real worker plugins (host.hooks.run) vs 10 sequential raw
 * postMessage round trips to 10 echo workers over the same kind of channel.
 */
async function benchWorkerHooks(): Promise<void> {
  const { mkdtempSync, mkdirSync, rmSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { Worker } = await import("node:worker_threads");
  const { PluginHost } = await import("../mod.ts");
  const N = 10;
  const ROUNDS = 300;
  const root = mkdtempSync(join(tmpdir(), "bulkhead-hookbench-"));
  for (let i = 0; i < N; i++) {
    const dir = join(root, `h${i}`);
    mkdirSync(dir);
    writeFileSync(
      join(dir, "plugin.json"),
      JSON.stringify({ name: `h${i}`, version: "1.0.0", entry: "./mod.ts" }),
    );
    writeFileSync(join(dir, "mod.ts"), "export default { hooks: { on_request: (d) => d + 1 } };");
  }
  const host = new PluginHost({ pluginDirs: [root] });
  const echoUrl = new URL("./_echo_worker.ts", import.meta.url);
  const raws: { port: MessagePort; worker: InstanceType<typeof Worker> }[] = [];
  try {
    await host.discover();
    for (let i = 0; i < N; i++) await host.load(`h${i}`);
    for (let i = 0; i < N; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(echoUrl, {
        workerData: { port: port2 },
        transferList: [port2 as never],
      });
      await new Promise((r) => worker.once("message", r));
      port1.start();
      raws.push({ port: port1, worker });
    }
    const rawRun = async (data: number): Promise<number> => {
      let v = data;
      for (const { port } of raws) {
        v = await new Promise<number>((resolve) => {
          port.onmessage = (e: MessageEvent) =>
            resolve((e.data as [number, number, number])[2] + 1);
          port.postMessage([1, 1, "on_request", v]);
        });
      }
      return v;
    };
    const hookRun = async (data: number): Promise<number> =>
      (await host.hooks.run("on_request", data)).value as number;
    const measure = async (fn: (d: number) => Promise<number>): Promise<number> => {
      for (let i = 0; i < 50; i++) await fn(i);
      const t0 = performance.now();
      for (let i = 0; i < ROUNDS; i++) {
        if (await fn(i) !== i + N) throw new Error("wrong hook result");
      }
      return ((performance.now() - t0) * 1000) / ROUNDS;
    };
    const raw1 = await measure(rawRun);
    const hook1 = await measure(hookRun);
    const raw2 = await measure(rawRun);
    const hook2 = await measure(hookRun);
    const raw = Math.min(raw1, raw2);
    const hook = Math.min(hook1, hook2);
    console.log(`hook dispatch through ${N} worker plugins vs ${N} raw round trips (best of 2)`);
    console.log(
      `  raw ${fmt(raw, "µs/run")}  host.hooks.run ${fmt(hook, "µs/run")}  ratio ${
        (hook / raw).toFixed(2)
      }x`,
    );
  } finally {
    for (const { port, worker } of raws) {
      port.close();
      await worker.terminate();
    }
    await host.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await benchWorkerHooks();
