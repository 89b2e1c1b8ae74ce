// Registry behaviour with real workers: lifecycle, hooks, dependencies, pause, hot reload.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginError, PluginHost } from "../../mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const hookPlugin = (tag: string, priority?: number) => `
export default {
  async init(ctx) {
    ${
  priority === undefined
    ? ""
    : `await ctx.hooks.on("on_request", (d) => ({ ...d, seen: [...(d.seen ?? []), "${tag}"] }), { priority: ${priority} });`
}
  },
  hooks: {
    ${
  priority === undefined
    ? `on_request: (d) => ({ ...d, seen: [...(d.seen ?? []), "${tag}"] }),`
    : ""
}
    lookup: (d) => (d.key === "${tag}" ? "found-by-${tag}" : undefined),
    // Past the run deadline (200 ms) but within the host hook deadline (500 ms): reported, not fatal.
    slow: () => new Promise((r) => setTimeout(() => r("late"), 300)),
  },
  methods: { tag: () => "${tag}" },
};`;

describe("host registry", () => {
  let root: string;
  let host: PluginHost;
  const events: string[] = [];

  before(async () => {
    root = tempDir();
    writePlugin(root, "auth-core", { version: "2.3.0", entry: "./mod.ts" }, {
      "mod.ts": hookPlugin("auth"),
    });
    writePlugin(root, "api", {
      entry: "./mod.ts",
      dependencies: { "auth-core": "^2.1.0" },
      hooks: { on_request: 300 },
    }, { "mod.ts": hookPlugin("api") });
    writePlugin(root, "early", { entry: "./mod.ts" }, { "mod.ts": hookPlugin("early", 50) });
    writePlugin(root, "tie-a", { entry: "./mod.ts" }, { "mod.ts": hookPlugin("tie-a", 200) });
    writePlugin(root, "tie-b", { entry: "./mod.ts" }, { "mod.ts": hookPlugin("tie-b", 200) });
    writePlugin(root, "needs-new-auth", {
      entry: "./mod.ts",
      dependencies: { "auth-core": "^3.0.0" },
    }, { "mod.ts": "export default {}" });
    writePlugin(root, "needs-missing", { entry: "./mod.ts", dependencies: { ghost: "^1.0.0" } }, {
      "mod.ts": "export default {}",
    });
    writePlugin(root, "cycle-a", { entry: "./mod.ts", dependencies: { "cycle-b": "*" } }, {
      "mod.ts": "export default {}",
    });
    writePlugin(root, "cycle-b", { entry: "./mod.ts", dependencies: { "cycle-a": "*" } }, {
      "mod.ts": "export default {}",
    });
    writePlugin(root, "future", { entry: "./mod.ts", engine: "^2.0.0" }, {
      "mod.ts": "export default {}",
    });
    // development: the worker tier on every runtime, as these tests assume (Bun and Deno leave
    // parts of it unenforced, which that policy allows and warns about).
    host = new PluginHost({ pluginDirs: [root], hookTimeoutMs: 500, policy: "development" });
    host.events.on("state_change", (c) => {
      events.push(`${c.plugin}:${c.from}->${c.to}`);
    });
    host.events.on("after_load", (e) => {
      events.push(`loaded:${e.plugin}`);
    });
    await host.discover();
  });

  after(async () => {
    await host?.close();
    removeDir(root);
  });

  it("loads dependencies first", async () => {
    await host.load("api");
    assert.ok(host.isLoaded("auth-core"));
    assert.ok(events.indexOf("loaded:auth-core") < events.indexOf("loaded:api"));
    assert.ok(events.includes("api:available->loading") && events.includes("api:loading->active"));
  });

  it("refuses an unsatisfied range, a missing dependency and a cycle with ERR_DEPENDENCY", async () => {
    await assert.rejects(
      host.load("needs-new-auth"),
      (e: unknown) =>
        e instanceof PluginError && e.code === "ERR_DEPENDENCY" && e.message.includes("^3.0.0"),
    );
    await assert.rejects(host.load("needs-missing"), { code: "ERR_DEPENDENCY" });
    await assert.rejects(
      host.load("cycle-a"),
      (e: unknown) =>
        e instanceof PluginError && e.code === "ERR_DEPENDENCY" &&
        /cycle-a -> cycle-b -> cycle-a|cycle-b -> cycle-a -> cycle-b/.test(e.message),
    );
  });

  it("refuses an engine range that excludes this host", async () => {
    await assert.rejects(host.load("future"), { code: "ERR_ENGINE" });
    assert.equal(host.info("future")?.status, "failed");
  });

  it("runs hooks in priority order with ties in registration order (waterfall)", async () => {
    await host.load("early");
    await host.load("tie-a");
    await host.load("tie-b");
    const r = await host.hooks.run("on_request", { path: "/" });
    // auth-core: default 200, registered first; api: manifest 300; early: 50 via ctx.hooks.on.
    assert.deepEqual((r.value as unknown as { seen: string[] }).seen, [
      "early",
      "auth",
      "tie-a",
      "tie-b",
      "api",
    ]);
  });

  it("runUntil stops at the first answer and runParallel collects all", async () => {
    const u = await host.hooks.runUntil("lookup", { key: "tie-b" });
    assert.equal(u.value, "found-by-tie-b");
    assert.equal(u.plugin, "tie-b");
    const p = await host.hooks.runParallel("lookup", { key: "api" });
    assert.equal(p.results.length, 5);
    assert.ok(p.results.some((x) => x.plugin === "api" && x.value === "found-by-api"));
  });

  it("a handler past its deadline is reported with its plugin name", async () => {
    const r = await host.hooks.run("slow", {}, { timeoutMs: 200, onError: "skip" });
    assert.ok(r.errors.every((e) => e.plugin !== undefined));
    assert.ok(r.errors.length >= 1);
    assert.equal(r.errors[0]?.code, "ERR_CALL_TIMEOUT");
    await assert.rejects(host.hooks.run("slow", {}, { timeoutMs: 200, onError: "abort" }), {
      code: "ERR_CALL_TIMEOUT",
    });
  });

  it("pause stops calls and hook delivery; resume restores them", async () => {
    await new Promise((r) => setTimeout(r, 400)); // let the late handlers finish
    const tieA = host.get("tie-a");
    assert.ok(tieA);
    await host.pause("tie-a");
    assert.equal(tieA.status, "inactive");
    await assert.rejects(tieA.call("tag"), { code: "ERR_PLUGIN_NOT_ACTIVE" });
    const r = await host.hooks.run("on_request", {});
    assert.ok(!(r.value as unknown as { seen: string[] }).seen.includes("tie-a"));
    await host.resume("tie-a");
    assert.equal(await tieA.call("tag"), "tie-a");
    await assert.rejects(host.resume("tie-a"), { code: "ERR_STATE" });
  });

  it("unloading removes handlers at once; dependents need cascade", async () => {
    await assert.rejects(host.unload("auth-core"), { code: "ERR_DEPENDENCY" });
    await host.unload("tie-b");
    const r = await host.hooks.run("on_request", {});
    assert.ok(!(r.value as unknown as { seen: string[] }).seen.includes("tie-b"));
    await host.unload("auth-core", { cascade: true });
    assert.equal(host.isLoaded("api"), false);
    assert.equal(host.isLoaded("auth-core"), false);
    assert.equal(host.info("api")?.status, "unloaded");
  });

  it("keeps a bounded transition history and refuses illegal transitions", () => {
    const info = host.info("tie-a");
    assert.equal(info?.status, "active");
    const p = host.get("tie-a");
    assert.ok(p);
    const h = p.history;
    assert.deepEqual(h.map((t) => t.to), ["loading", "active", "inactive", "active"]);
    assert.ok(h.every((t) => typeof t.at === "number" && t.reason.length > 0));
  });

  it("answers queries by state", () => {
    const c = host.counts();
    assert.equal(c.total, 10);
    assert.ok(host.loaded().some((i) => i.name === "tie-a"));
    assert.ok(host.failed().some((i) => i.name === "future"));
    assert.ok(host.available().some((i) => i.name === "api"));
  });
});

describe("hot reload", () => {
  it("switches versions under load without losing a call, and rolls back a broken version", async () => {
    const root = tempDir();
    const code = (v: string, extra = "") => `
      let count = 0;
      export default {
        ${extra}
        snapshot() { return { count }; },
        restore(s) { count = s.count; },
        methods: { hit: async () => { count++; await new Promise((r) => setTimeout(r, 2)); return { v: "${v}", count }; } },
      };`;
    const dir = writePlugin(root, "live", { entry: "./mod.ts" }, { "mod.ts": code("1") });
    const host = new PluginHost({ pluginDirs: [root], policy: "development" });
    const stop = host.watch({ intervalMs: 50 });
    try {
      await host.discover();
      const p = await host.load("live");
      const seen: string[] = [];
      let failures = 0;
      let calls = 0;
      let running = true;
      const client = (async () => {
        while (running) {
          try {
            const r = await p.call("hit") as { v: string; count: number };
            calls++;
            if (seen[seen.length - 1] !== r.v) seen.push(r.v);
          } catch {
            failures++;
          }
        }
      })();
      await new Promise((r) => setTimeout(r, 150));
      writeFileSync(join(dir, "mod.ts"), code("2"));
      writeFileSync(
        join(dir, "plugin.json"),
        JSON.stringify({ name: "live", version: "1.1.0", entry: "./mod.ts" }),
      );
      const deadline = Date.now() + 10_000;
      while (p.version !== "1.1.0" && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25));
      }
      await new Promise((r) => setTimeout(r, 150));
      // A broken version: init throws. The old one must keep serving.
      const errors: string[] = [];
      host.events.on("error", (e) => {
        errors.push((e.error as PluginError).code);
      });
      writeFileSync(
        join(dir, "mod.ts"),
        code("3", "init() { throw new Error('broken release'); },"),
      );
      const deadline2 = Date.now() + 10_000;
      while (errors.length === 0 && Date.now() < deadline2) {
        await new Promise((r) => setTimeout(r, 25));
      }
      await new Promise((r) => setTimeout(r, 100));
      running = false;
      await client;
      assert.equal(failures, 0, "no call failed during the switch");
      assert.deepEqual(
        seen,
        ["1", "2"],
        "the version switched exactly once and the broken one never served",
      );
      assert.ok(calls > 20);
      assert.equal(p.version, "1.1.0");
      assert.equal(p.status, "active");
      assert.deepEqual(errors, ["ERR_PLUGIN_INIT"]);
      const last = await p.call("hit") as { count: number };
      assert.equal(last.count, calls + 1, "state was handed over with snapshot/restore");
    } finally {
      stop();
      await host.close();
      removeDir(root);
    }
  });
});
