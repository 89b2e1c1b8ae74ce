// Smaller things a new user hit (issue 15): the watcher's baseline is the loaded version, the
// reload event names both versions, watch() and startMonitor() both hand back stop(), discover()
// on a plugin's own directory finds it, and an unclonable result names the method.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const mod = (v: string) =>
  `export default { methods: { version: () => "${v}", fn: () => () => 1 } };`;

describe("watch baseline, reload versions, names", () => {
  let root: string;
  let dir: string;
  before(() => {
    root = tempDir();
    chmodSync(root, 0o755); // readable by a sandboxed child, wherever the host runs the plugin
    dir = writePlugin(root, "watched", { entry: "./mod.js" }, { "mod.js": mod("1.0.0") });
  });
  after(() => removeDir(root));

  it("an edit right after watch() starts is reloaded; the event names from and to", async () => {
    const host = new PluginHost({ pluginDirs: [root] });
    try {
      await host.discover();
      const p = await host.load("watched");
      const events: { from: string; to: string }[] = [];
      host.events.on("reload", (e) => {
        events.push({ from: e.from, to: e.to });
      });
      const watcher = host.watch({ intervalMs: 150 });
      // Edited before the first poll: the baseline must already be the loaded version.
      writeFileSync(join(dir, "mod.js"), mod("1.1.0"));
      writeFileSync(
        join(dir, "plugin.json"),
        JSON.stringify({ name: "watched", version: "1.1.0", entry: "./mod.js" }),
      );
      for (let i = 0; i < 100 && events.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(events, [{ from: "1.0.0", to: "1.1.0" }]);
      assert.equal(await p.call("version"), "1.1.0");
      assert.equal(typeof watcher, "function");
      assert.equal(typeof watcher.stop, "function");
      watcher.stop();
      const monitor = host.startMonitor({ intervalMs: 60_000 });
      assert.equal(typeof monitor.stop, "function");
      monitor.stop();
    } finally {
      await host.close();
    }
  });

  it("discover() on a plugin's own directory finds that plugin", async () => {
    const host = new PluginHost({ pluginDirs: [dir] });
    try {
      const found = await host.discover();
      assert.deepEqual(found.map((i) => i.name), ["watched"]);
    } finally {
      await host.close();
    }
  });

  it("an unclonable result names the plugin and method, not a call id", async () => {
    const host = new PluginHost();
    try {
      const p = await host.load(dir);
      await assert.rejects(p.call("fn"), (e: Error) => {
        assert.match(e.message, /"watched\.fn"/);
        assert.doesNotMatch(e.message, /call \d+/);
        return true;
      });
    } finally {
      await host.close();
    }
  });
});
