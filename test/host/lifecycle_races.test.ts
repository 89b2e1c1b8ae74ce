// Lifecycle under concurrency (issue 18): close during load and reload, unload during reload,
// concurrent loads of one plugin and of plugins sharing a dependency, a rescan during a load,
// load timeouts as violations, and a load queue that lets hundreds of loads succeed. Real workers
// (and sandboxed children where the machine has them) through the public host API.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginError, PluginHost } from "../../mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const SLOW_INIT = (ms: number) =>
  `export default { init() { return new Promise((r) => setTimeout(r, ${ms})); },
    methods: { ping: () => "pong", pid: () => globalThis.process?.pid ?? 0 } };`;
const ECHO = `export default { methods: { ping: () => "pong" } };`;
const childTiers = process.platform === "linux";

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (error) {
    return error instanceof PluginError ? error.code : String(error);
  }
}

describe("lifecycle under concurrency", () => {
  let root: string;

  before(() => {
    root = tempDir();
    chmodSync(root, 0o755);
    writePlugin(root, "slow", { entry: "./mod.js" }, { "mod.js": SLOW_INIT(600) });
    writePlugin(root, "slow-process", { entry: "./mod.js", isolation: "process" }, {
      "mod.js": SLOW_INIT(600),
    });
    writePlugin(root, "base", { entry: "./mod.js" }, { "mod.js": SLOW_INIT(200) });
    writePlugin(root, "left", { entry: "./mod.js", dependencies: { base: "^1.0.0" } }, {
      "mod.js": ECHO,
    });
    writePlugin(root, "right", { entry: "./mod.js", dependencies: { base: "^1.0.0" } }, {
      "mod.js": ECHO,
    });
    writePlugin(root, "hangs", { entry: "./mod.js" }, { "mod.js": SLOW_INIT(60_000) });
    writePlugin(root, "limited", { entry: "./mod.js", limits: { cpuTimeMs: 3000 } }, {
      "mod.js": `export default {
        init() { return new Promise((r) => setTimeout(r, 300)); },
        methods: { sleep: (ms) => new Promise((r) => setTimeout(() => r("done"), ms)) },
      };`,
    });
  });
  after(() => removeDir(root));

  for (const name of ["slow", ...(childTiers ? ["slow-process"] : [])]) {
    it(`close() during load() of "${name}" leaves nothing running`, async () => {
      const host = new PluginHost({ pluginDirs: [root] });
      await host.discover();
      const loading = host.load(name);
      await new Promise((r) => setTimeout(r, 50));
      await host.close();
      assert.equal(await codeOf(loading), "ERR_HOST_CLOSED");
      assert.notEqual(host.info(name)?.status, "active");
      assert.equal(host.loaded().length, 0);
    });
  }

  it("unload() and close() during reload() leave nothing running", async () => {
    const host = new PluginHost({ pluginDirs: [root] });
    try {
      await host.discover();
      const p = await host.load("slow");
      const reloading = host.reload("slow");
      await new Promise((r) => setTimeout(r, 50));
      await host.unload("slow");
      await reloading.catch(() => {});
      assert.equal(host.info("slow")?.status, "unloaded");
      assert.equal(await codeOf(p.call("ping")), "ERR_PLUGIN_NOT_ACTIVE");
      await host.load("slow");
      const again = host.reload("slow");
      await new Promise((r) => setTimeout(r, 50));
      await host.close();
      assert.equal(await codeOf(again), "ERR_HOST_CLOSED");
      assert.equal(host.loaded().length, 0);
    } finally {
      await host.close();
    }
  });

  it("concurrent loads of one plugin share one load", async () => {
    const host = new PluginHost({ pluginDirs: [root] });
    try {
      await host.discover();
      const [a, b, c] = await Promise.all([
        host.load("slow"),
        host.load("slow"),
        host.load("slow"),
      ]);
      assert.equal(a, b);
      assert.equal(b, c);
      assert.equal(await a.call("ping"), "pong");
      await assert.rejects(host.load("slow"), { code: "ERR_DUPLICATE" });
    } finally {
      await host.close();
    }
  });

  it("concurrent loads of plugins sharing a dependency both succeed", async () => {
    const host = new PluginHost({ pluginDirs: [root] });
    try {
      await host.discover();
      const [l, r] = await Promise.all([host.load("left"), host.load("right")]);
      assert.equal(await l.call("ping"), "pong");
      assert.equal(await r.call("ping"), "pong");
      assert.equal(host.info("base")?.status, "active");
    } finally {
      await host.close();
    }
  });

  it("discover() during a load keeps the limits the policy tightened", async () => {
    const host = new PluginHost({
      pluginDirs: [root],
      policy: { extends: "development", tightenLimits: { cpuTimeMs: 300 } },
    });
    try {
      await host.discover();
      const loading = host.load("limited");
      await host.discover();
      const p = await loading;
      await host.discover();
      assert.equal(host.info("limited")?.limits.cpuTimeMs, 300);
      assert.equal(await codeOf(p.call("sleep", 1200)), "ERR_CALL_TIMEOUT");
    } finally {
      await host.close();
    }
  });

  it("a load timeout (hanging init) is recorded as a violation", async () => {
    const host = new PluginHost({ pluginDirs: [root], loadTimeoutMs: 300 });
    const violations: string[] = [];
    host.events.on("violation", (v) => {
      violations.push(`${v.plugin}:${v.kind}`);
    });
    try {
      await host.discover();
      assert.equal(await codeOf(host.load("hangs")), "ERR_CALL_TIMEOUT");
      assert.deepEqual(violations, ["hangs:timeout"]);
      assert.equal(host.info("hangs")?.status, "failed");
    } finally {
      await host.close();
    }
  });

  it("a load whose start() fails leaves no instance serving", async () => {
    const dir = writePlugin(root, "bad-start", { entry: "./mod.js" }, {
      "mod.js":
        `export default { start() { throw new Error("no"); }, methods: { ping: () => 1 } };`,
    });
    const host = new PluginHost();
    try {
      assert.equal(await codeOf(host.load(dir)), "ERR_PLUGIN_INIT");
      assert.equal(host.info("bad-start")?.status, "failed");
      assert.equal(host.get("bad-start"), undefined);
    } finally {
      await host.close();
    }
  });

  it("Promise.all of 32 loads under a load queue of 4: every plugin loads", async () => {
    const many = join(root, "many");
    for (let i = 0; i < 32; i++) {
      writePlugin(many, `p${i}`, { entry: "./mod.js", limits: { cpuTimeMs: 10_000 } }, {
        "mod.js": ECHO,
      });
    }
    writeFileSync(join(many, "README"), "not a plugin");
    // The load timeout is shorter than the whole batch takes: it runs from each start, not
    // from the moment the load was asked for. development: the worker tier on every runtime, as
    // the 5 s budget assumes (auto takes Deno's and Bun's process tier, seconds per start on a
    // busy machine; that policy allows and warns about what their worker tiers leave unenforced).
    const host = new PluginHost({
      pluginDirs: [many],
      loadConcurrency: 4,
      loadTimeoutMs: 5000,
      policy: "development",
    });
    try {
      await host.discover();
      const plugins = await Promise.all(host.list().map((i) => host.load(i.name)));
      assert.equal(plugins.length, 32);
      const answers = await Promise.all(plugins.map((p) => p.call("ping")));
      assert.ok(answers.every((a) => a === "pong"));
    } finally {
      await host.close();
    }
  });
});
