/**
 * Native plugin costs, with raw baselines measured in the same run:
 * - call round trip host -> sandboxed child -> .so -> host, sequential and pipelined;
 * - the same .so called in-process through koffi (the floor of FFI cost);
 * - a raw echo child over the same transport (stdio socketpairs, same frames): `cat`, and a
 *   JavaScript echo run by the same runtime;
 * - start-up: launcher chain vs a plain spawn, and a sandboxed vs an unsandboxed plugin.
 *
 * Run: `node bench/native.bench.ts`, `bun bench/native.bench.ts`, `deno run -A bench/native.bench.ts`.
 * Linux only (memfd loading).
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeFrame, FRAME_TYPES, FrameDecoder } from "../lib/protocol/frames.ts";
import { startNativePlugin } from "../ffi/native_plugin.ts";
import type { NativePluginOptions } from "../ffi/native_plugin.ts";
import { runtimeCommand } from "../sandbox/runtime_cmd.ts";
import { buildLauncher } from "../sandbox/launcher.ts";
import { buildFixtures } from "../test/fixtures/native/build.ts";

const N = 2000;
const BATCH = 1000;
const STARTS = 5;
const payload = new TextEncoder().encode("x".repeat(64));

function us(ms: number, n: number): number {
  return Math.round((ms * 1000 / n) * 10) / 10;
}

async function rawEcho(argv: string[]): Promise<{ seq: number; batch: number }> {
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
  const decoder = new FrameDecoder();
  const waiting = new Map<number, () => void>();
  child.stdout.on("data", (chunk: Uint8Array) => {
    for (const f of decoder.push(chunk)) waiting.get(f.id)?.();
  });
  let id = 0;
  const call = () =>
    new Promise<void>((resolve) => {
      const n = ++id;
      waiting.set(n, () => {
        waiting.delete(n);
        resolve();
      });
      child.stdin.write(
        encodeFrame({ type: FRAME_TYPES.CALL, id: n, header: { method: "echo" }, body: payload }),
      );
    });
  for (let i = 0; i < 200; i++) await call();
  let t = performance.now();
  for (let i = 0; i < N; i++) await call();
  const seq = us(performance.now() - t, N);
  t = performance.now();
  await Promise.all(Array.from({ length: BATCH }, call));
  const batch = us(performance.now() - t, BATCH);
  child.kill("SIGKILL");
  return { seq, batch };
}

async function main(): Promise<void> {
  if (process.platform !== "linux") {
    console.log("native.bench: Linux only");
    return;
  }
  const built = buildFixtures(["echo"]);
  try {
    const options: NativePluginOptions = {
      name: "bench",
      libraryPath: built.lib("echo"),
      limits: { heapMb: 64, cpuTimeMs: 60_000, threads: 4, fileDescriptors: 32, connections: 0 },
      permissions: { network: "none", filesystem: "none" },
      callTimeoutMs: 60_000,
    };
    const runtime = runtimeCommand("/dev/null", { heapMb: 32 }).name;

    // 1. In-process koffi (the bench is not host code: importing koffi here is fine).
    const koffi = ((await import("koffi")) as unknown as { default: typeof import("koffi") })
      .default;
    const lib = koffi.load(built.lib("echo"));
    const call = lib.func(
      "int bh_call(const char* m, const void* in, size_t n, _Out_ void** out, _Out_ size_t* len)",
    );
    const free = lib.func("void bh_free(void* p)");
    const out: [bigint | null] = [null];
    const len: [number] = [0];
    for (let i = 0; i < 1000; i++) free((call("echo", payload, payload.length, out, len), out[0]));
    let t = performance.now();
    for (let i = 0; i < N * 10; i++) {
      call("echo", payload, payload.length, out, len);
      new Uint8Array(koffi.view(out[0] as bigint, len[0])).slice();
      free(out[0]);
    }
    const inProcess = us(performance.now() - t, N * 10);

    // 2. Raw echo children over the same frames and stdio socketpairs.
    const cat = await rawEcho(["cat"]);
    const script = join(built.dir, "echo_child.mjs");
    writeFileSync(script, "process.stdin.on('data', (d) => process.stdout.write(d));\n");
    const jsEcho = await rawEcho(runtimeCommand(script, { heapMb: 32 }).argv);

    // 3. Through the sandboxed child.
    const plugin = await startNativePlugin(options);
    for (let i = 0; i < 200; i++) await plugin.call("echo", payload);
    t = performance.now();
    for (let i = 0; i < N; i++) await plugin.call("echo", payload);
    const seq = us(performance.now() - t, N);
    t = performance.now();
    await Promise.all(Array.from({ length: BATCH }, () => plugin.call("echo", payload)));
    const batch = us(performance.now() - t, BATCH);
    t = performance.now();
    for (let i = 0; i < 1000; i++) plugin.metrics();
    const sample = us(performance.now() - t, 1000);
    await plugin.close();

    // 4. Start-up: launcher chain around `true` vs plain `true`; plugin sandboxed vs not.
    const launcher = buildLauncher({
      runtime,
      runtimeArgv: ["true"],
      platform: "linux",
      hostUid: process.getuid?.() ?? -1,
      namespaces: true,
      sandboxUid: 1_499_999_999,
      limits: options.limits,
      network: "none",
    }).argv;
    const timeSpawn = (argv: string[]) => {
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) spawnSync(argv[0] as string, argv.slice(1), { stdio: "ignore" });
      return (performance.now() - t0) / 20;
    };
    const plain = timeSpawn(["true"]);
    const chained = timeSpawn(launcher);
    const startMs = async (sandbox: boolean) => {
      const t0 = performance.now();
      for (let i = 0; i < STARTS; i++) {
        await (await startNativePlugin({ ...options, sandbox })).close();
      }
      return (performance.now() - t0) / STARTS;
    };
    const sandboxedStart = await startMs(true);
    const plainStart = await startMs(false);

    const r = (a: number, b: number) => (a / b).toFixed(1);
    console.log(`native.bench on ${runtime} (µs per call, ${N} sequential / ${BATCH} pipelined)`);
    console.table({
      "in-process koffi": { seq: inProcess, pipelined: inProcess, "x koffi": "1.0" },
      "raw echo: cat": { seq: cat.seq, pipelined: cat.batch, "x koffi": r(cat.seq, inProcess) },
      [`raw echo: ${runtime}`]: {
        seq: jsEcho.seq,
        pipelined: jsEcho.batch,
        "x koffi": r(jsEcho.seq, inProcess),
      },
      "native plugin": { seq, pipelined: batch, "x koffi": r(seq, inProcess) },
    });
    console.log(
      `native plugin / raw ${runtime} echo: ${r(seq, jsEcho.seq)}x sequential, ` +
        `${r(batch, jsEcho.batch)}x pipelined; / cat: ${r(seq, cat.seq)}x`,
    );
    console.log(`metrics() sample: ${sample} µs`);
    console.log(
      `spawn true: plain ${plain.toFixed(2)} ms, through the launcher ${chained.toFixed(2)} ms ` +
        `(+${(chained - plain).toFixed(2)} ms, ${r(chained, plain)}x)`,
    );
    console.log(
      `plugin start to ready: sandboxed ${sandboxedStart.toFixed(1)} ms, unsandboxed ` +
        `${plainStart.toFixed(1)} ms (${r(sandboxedStart, plainStart)}x)`,
    );
  } finally {
    built.remove();
  }
}

await main();
