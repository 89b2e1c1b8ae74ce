// Large and many frames through the real children: the process tier's JS child (koffi async read
// into one reused buffer) and the native child (blocking read(2) into one reused buffer).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import { PluginHost } from "../../mod.ts";
import type { Plugin } from "../../mod.ts";
import { startNativePlugin } from "../../ffi/native_plugin.ts";
import type { NativePlugin } from "../../ffi/native_plugin.ts";
import { buildFixtures } from "../fixtures/native/build.ts";
import type { BuiltFixtures } from "../fixtures/native/build.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const linux = process.platform === "linux" ? false : "child tiers need Linux";
const KiB = 1024;
const MiB = 1024 * KiB;

/** Deterministic xorshift32, so a failure reproduces on every run and runtime. */
function random(seed: number): (below: number) => number {
  let x = seed >>> 0 || 1;
  return (below) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % below;
  };
}

/** ASCII noise: no period a read size could line up with, one byte per char on the wire. */
function noiseText(length: number, seed: number): string {
  const next = random(seed);
  const parts: string[] = [];
  const codes = new Array<number>(Math.min(length, 8192));
  for (let done = 0; done < length; done += codes.length) {
    const n = Math.min(codes.length, length - done);
    for (let i = 0; i < n; i++) codes[i] = 33 + next(94);
    parts.push(String.fromCharCode(...codes.slice(0, n)));
  }
  return parts.join("");
}

function noiseBytes(length: number, seed: number): Uint8Array {
  const next = random(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = next(256);
  return out;
}

/** Equality without a multi-megabyte diff in the failure message. */
function assertSame(actual: unknown, expected: string | Uint8Array, what: string): void {
  const a = actual as ArrayLike<unknown> & { [i: number]: unknown };
  assert.equal(typeof a, typeof expected, `${what}: type`);
  assert.equal(a.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (a[i] !== expected[i]) assert.fail(`${what}: first difference at index ${i}`);
  }
}

const ECHO_PLUGIN = `export default {
  methods: {
    echo: (value) => value,
    size: (length) => "z".repeat(length),
  },
};
`;

describe("process tier frames through the host", { skip: linux }, () => {
  let root: string;
  let host: PluginHost;
  let plugin: Plugin;

  before(async () => {
    root = tempDir();
    // The sandboxed child runs as its own uid: the plugin directory must be world-readable.
    chmodSync(root, 0o755);
    writePlugin(root, "frames", {
      entry: "./mod.js",
      isolation: "process",
      limits: { heapMb: 256, cpuTimeMs: 20_000 },
    }, { "mod.js": ECHO_PLUGIN });
    host = new PluginHost({ pluginDirs: [root] });
    await host.discover();
    plugin = await host.load("frames");
  });

  after(async () => {
    await host?.close();
    removeDir(root);
  });

  it("answers 1,000 concurrent small calls, each with its own value", async () => {
    const next = random(1000);
    const inputs = Array.from({ length: 1000 }, (_, i) => ({ i, text: noiseText(next(4000), i) }));
    const outputs = await Promise.all(inputs.map((input) => plugin.call("echo", input)));
    assert.deepEqual(outputs, inputs);
  });

  for (
    const [label, length] of [
      ["1 B", 1],
      ["64 KiB", 64 * KiB],
      ["200 KiB", 200 * KiB],
      ["1 MiB", MiB],
      ["8 MiB", 8 * MiB],
    ] as const
  ) {
    it(`echoes a ${label} string both ways intact`, async () => {
      const text = noiseText(length, length);
      assertSame(await plugin.call("echo", text), text, `${label} echo`);
    });
  }

  it("returns a large result to a small call", async () => {
    assertSame(await plugin.call("size", 3 * MiB + 5), "z".repeat(3 * MiB + 5), "3 MiB result");
  });
});

describe("native child frames", { skip: linux }, () => {
  let built: BuiltFixtures;
  let plugin: NativePlugin;

  before(async () => {
    built = buildFixtures(["echo"]);
    plugin = await startNativePlugin({
      name: "echo",
      libraryPath: built.lib("echo"),
      limits: { heapMb: 64, cpuTimeMs: 10_000, threads: 4, fileDescriptors: 32, connections: 0 },
      permissions: { network: "none", filesystem: "none" },
      callTimeoutMs: 20_000,
    });
  });

  after(async () => {
    await plugin?.close();
    built?.remove();
  });

  for (const [label, length] of [["1 B", 1], ["200 KiB", 200 * KiB], ["1 MiB", MiB]] as const) {
    it(`echoes ${label} of bytes both ways intact`, async () => {
      const bytes = noiseBytes(length, length);
      assertSame(await plugin.call("echo", bytes), bytes, `${label} echo`);
    });
  }

  it("answers 1,000 pipelined small calls in order", async () => {
    const inputs = Array.from({ length: 1000 }, (_, i) => noiseBytes(1 + (i % 97), i));
    const outputs = await Promise.all(inputs.map((input) => plugin.call("echo", input)));
    outputs.forEach((out, i) => assertSame(out, inputs[i] as Uint8Array, `call ${i}`));
  });
});
