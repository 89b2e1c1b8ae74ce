// Process tier vs worker tier: load time and sequential call round trip, per runtime, with a raw
// child echo over the same transport (stdio pipes, lib/protocol/frames.ts frames, node:v8 bodies) as baseline.
// Run: node bench/process.bench.ts | bun bench/process.bench.ts |
//      deno run -A --unstable-worker-options --no-prompt bench/process.bench.ts
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { deserialize, serialize } from "node:v8";
import { PluginHost } from "../mod.ts";
import { encodeFrame, FRAME_TYPES, FrameDecoder } from "../lib/protocol/frames.ts";
import { KIND_CALL } from "../lib/protocol/messages.ts";
import { PluginError } from "../lib/errors.ts";
import { fixtures, removeDir, runtime, tempDir, writePlugin } from "../test/_helpers.ts";
import { startFixture } from "../test/process/_start.ts";

const CALLS = 500;
const LOADS = 3;

async function time(fn: () => Promise<unknown>, n: number): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - t) / n;
}

const root = tempDir();
const echo = join(root, "echo.ts");
writeFileSync(
  echo,
  `import { deserialize, serialize } from "node:v8";
import { encodeFrame, FrameDecoder } from ${
    JSON.stringify(join(process.cwd(), "lib", "protocol", "frames.ts"))
  };
const d = new FrameDecoder();
process.stdin.on("data", (c) => { for (const f of d.push(c)) {
  const [, id, , payload] = deserialize(f.body);
  process.stdout.write(encodeFrame({ type: 4, id: 0, body: serialize([id, 1, payload]) }));
} });
`,
);
try {
  // Raw child echo.
  const args = runtime === "deno" ? ["run", "-A", "--no-check"] : [];
  const t0 = performance.now();
  const child = spawn(process.execPath, [...args, echo], { stdio: ["pipe", "pipe", "inherit"] });
  const decoder = new FrameDecoder();
  let waiter: (() => void) | null = null;
  child.stdout.on("data", (c: Uint8Array) => {
    for (const f of decoder.push(c)) {
      deserialize(f.body);
      waiter?.();
    }
  });
  const rawCall = (i: number) =>
    new Promise<void>((r) => {
      waiter = r;
      child.stdin.write(
        encodeFrame({ type: FRAME_TYPES.CALL, id: i, body: serialize([0, i, "ping", []]) }),
      );
    });
  await rawCall(0);
  const rawLoad = performance.now() - t0;
  const raw = await time(() => rawCall(1), CALLS);
  child.kill();

  // Process tier.
  let procLoad = 0;
  let proc = 0;
  for (let i = 0; i < LOADS; i++) {
    const t = performance.now();
    const s = await startFixture({ name: `bench${i}` });
    procLoad += (performance.now() - t) / LOADS;
    if (i === 0) proc = await time(() => s.instance.send(KIND_CALL, "ping", [], 5000), CALLS);
    await s.instance.terminate(new PluginError("ERR_HOST_CLOSED", "Cannot continue: closed"));
  }

  // Worker tier through the public host.
  writePlugin(join(root, "plugins"), "wbench", { entry: "./mod.ts", isolation: "worker" }, {
    "mod.ts": { copy: join(fixtures, "process", "mod.ts") },
  });
  const host = new PluginHost({
    pluginDirs: [join(root, "plugins")],
    allowUnenforced: true, // the worker tier is the comparison point, even where it is unenforced
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  await host.discover();
  const t1 = performance.now();
  const p = await host.load("wbench");
  const workerLoad = performance.now() - t1;
  const worker = await time(() => p.call("ping"), CALLS);
  await host.close();

  const f = (n: number) => n.toFixed(n < 10 ? 3 : 1);
  console.log(
    `${runtime}: load ms  raw child ${f(rawLoad)} | worker ${f(workerLoad)} | ` +
      `process ${f(procLoad)}  (process/worker ${f(procLoad / workerLoad)}x)`,
  );
  console.log(
    `${runtime}: call ms  raw child ${f(raw)} | worker ${f(worker)} | process ${f(proc)}` +
      `  (process/raw ${f(proc / raw)}x, process/worker ${f(proc / worker)}x)`,
  );
} finally {
  removeDir(root);
}
