// A plugin's hook is registered once per hook name: exporting it and registering it again with
// ctx.hooks.on, or registering it with a new priority, replaces the handler (one call per run,
// the newest priority).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const plugin = (name: string) =>
  `let ctx; let calls = 0;
const handler = (d) => { calls++; return { order: [...(d.order ?? []), "${name}"] }; };
export default {
  async init(c) { ctx = c; await ctx.hooks.on("order", handler, { priority: 200 }); },
  hooks: { order: handler },
  methods: {
    calls: () => calls,
    async raise() { await ctx.hooks.on("order", handler, { priority: 50 }); return true; },
  },
};`;

describe("hook registrations of one plugin", () => {
  let root: string;
  let host: PluginHost;
  before(async () => {
    root = tempDir();
    for (const name of ["alpha", "beta"]) {
      writePlugin(join(root, "plugins"), name, { entry: "./mod.js" }, { "mod.js": plugin(name) });
    }
    // development: the worker tier on every runtime (Bun and Deno leave parts of it unenforced,
    // which that policy allows and warns about).
    host = new PluginHost({ pluginDirs: [join(root, "plugins")], policy: "development" });
    await host.discover();
    await host.load("alpha");
    await host.load("beta");
  });
  after(async () => {
    await host?.close();
    removeDir(root);
  });

  it("calls an exported and ctx.hooks.on-registered hook once per run", async () => {
    const r = await host.hooks.run("order", {});
    assert.deepEqual((r.value as { order: string[] }).order, ["alpha", "beta"]);
    assert.equal(await host.get("alpha")?.call("calls"), 1);
    assert.equal(host.hooks.handlers("order").filter((h) => h.plugin === "alpha").length, 1);
  });

  it("takes a new priority from a repeated ctx.hooks.on", async () => {
    assert.equal(await host.get("beta")?.call("raise"), true);
    const r = await host.hooks.run("order", {});
    assert.deepEqual((r.value as { order: string[] }).order, ["beta", "alpha"]);
    assert.equal(host.hooks.handlers("order").filter((h) => h.plugin === "beta").length, 1);
  });
});
