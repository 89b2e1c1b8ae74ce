// Native plugins through the host: same load/call/metrics API, sandboxed child, ACL'd context.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";
import { buildFixtures, type BuiltFixtures } from "../fixtures/native/build.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const linux = process.platform === "linux" ? false : "native sandbox tests need Linux";
const key = `${process.platform}-${process.arch}`;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: unknown) => new TextDecoder().decode(b as Uint8Array);

describe("native plugins in the host", { skip: linux }, () => {
  let built: BuiltFixtures;
  let root: string;
  let host: PluginHost;

  before(() => {
    built = buildFixtures(["echo", "faults"]);
    root = tempDir();
    const echo = writePlugin(root, "native-echo", {
      native: { [key]: "./libecho.so" },
      permissions: { context: { read: ["config"] }, env: ["BULKHEAD_NATIVE_VISIBLE"] },
      limits: { cpuTimeMs: 5000 },
    }, {});
    copyFileSync(built.lib("echo"), join(echo, "libecho.so"));
    const faults = writePlugin(root, "native-faults", {
      native: { [key]: "./libfaults.so" },
      limits: { cpuTimeMs: 2000 },
    }, {});
    copyFileSync(built.lib("faults"), join(faults, "libfaults.so"));
    // A worker-tier neighbour, explicitly (Bun and Deno leave parts of that tier unenforced).
    writePlugin(root, "js-neighbour", { entry: "./mod.ts", isolation: "worker" }, {
      "mod.ts": "export default { methods: { ping: () => 'pong' } };",
    });
    process.env.BULKHEAD_NATIVE_VISIBLE = "shown";
    process.env.BULKHEAD_NATIVE_HIDDEN = "secret";
    host = new PluginHost({
      pluginDirs: [root],
      allowUnenforced: true,
      context: { config: { units: "metric" }, secret: "s3cret" },
    });
  });

  after(async () => {
    await host?.close();
    built?.remove();
    removeDir(root);
  });

  it("loads the verified library in a sandboxed child and calls it", async () => {
    await host.discover();
    const p = await host.load("native-echo");
    assert.equal(p.status, "active");
    assert.equal(dec(await p.call("upper", enc("shout"))), "SHOUT");
    assert.deepEqual(await p.call("echo", { a: 1 }), { a: 1 });
    const e = p.info.enforcement;
    assert.equal(e?.tier, "native");
    assert.equal(e?.filesystem.mechanism, "landlock");
    assert.equal(e?.network.mechanism, "netns");
  });

  it("answers context reads through the host's ACL", async () => {
    const p = host.get("native-echo");
    assert.ok(p);
    assert.deepEqual(JSON.parse(dec(await p.call("get", enc("config")))), { units: "metric" });
    // The host denied the read (audited as a denial); the plugin's status says so in its words.
    await assert.rejects(p.call("get", enc("secret")), {
      code: "ERR_PLUGIN_THREW",
      pluginCode: "ERR_PERMISSION_DENIED",
    });
  });

  it("passes only the declared environment variables to the child", async () => {
    const p = host.get("native-echo");
    assert.ok(p);
    assert.equal(dec(await p.call("env", enc("BULKHEAD_NATIVE_VISIBLE"))), "shown");
    assert.equal(dec(await p.call("env", enc("BULKHEAD_NATIVE_HIDDEN"))), "(unset)");
  });

  it("reports procfs metrics through the monitor", async () => {
    const monitor = host.startMonitor({ intervalMs: 60_000 });
    await monitor.sample();
    monitor.stop();
    const m = host.get("native-echo")?.metrics();
    assert.ok((m?.heapBytes ?? 0) > 0);
    assert.ok((m?.threadCount ?? 0) >= 1);
    assert.ok((m?.fdCount ?? 0) >= 1);
  });

  it("a segfault fails only that plugin", async () => {
    const js = await host.load("js-neighbour");
    const p = await host.load("native-faults");
    assert.equal(dec(await p.call("ping", new Uint8Array())), "pong");
    await assert.rejects(p.call("segv", new Uint8Array()), { code: "ERR_PLUGIN_CRASHED" });
    const end = Date.now() + 5000;
    while (p.status !== "failed" && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.equal(p.status, "failed");
    assert.equal(await js.call("ping"), "pong");
    assert.equal(dec(await host.get("native-echo")?.call("upper", enc("ok"))), "OK");
  });
});
