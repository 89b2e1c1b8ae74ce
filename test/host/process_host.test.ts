// The process tier through the public host API: `isolation: "process"` and the strict policy.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PluginHost } from "../../mod.ts";
import { fixtures, removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

const linux = process.platform === "linux" ? false : "the process tier needs Linux";

describe("process tier through the host", { skip: linux }, () => {
  let root: string;
  let host: PluginHost;

  before(() => {
    root = tempDir();
    // The sandboxed child runs as its own uid: the plugin directory must be world-readable.
    chmodSync(root, 0o755);
    writeFileSync(join(root, "secret.txt"), "TOP SECRET");
    writePlugin(root, "boxed", {
      entry: "./mod.ts",
      isolation: "process",
      permissions: { context: { read: ["config"] } },
      limits: { cpuTimeMs: 3000 },
      hooks: { on_request: 10 },
    }, { "mod.ts": { copy: join(fixtures, "process", "mod.ts") } });
    host = new PluginHost({
      pluginDirs: [root],
      context: { config: { mode: "boxed" }, database: "x" },
    });
  });

  after(async () => {
    await host?.close();
    removeDir(root);
  });

  it("loads a JS plugin in a sandboxed child and reports the process tier", async () => {
    await host.discover();
    const p = await host.load("boxed");
    assert.equal(await p.call("add", 2, 3), 5);
    assert.equal(await p.call("ping"), "pong");
    const e = p.info.enforcement;
    assert.equal(e?.tier, "process");
    assert.equal(e?.runtime, runtime);
    assert.equal(e?.filesystem.mechanism, "landlock");
    assert.equal(e?.filesystem.enforced, true);
  });

  it("holds the filesystem on every runtime, Bun included", async () => {
    const p = host.get("boxed");
    assert.ok(p);
    assert.match(String(await p.call("read", join(root, "secret.txt"))), /^denied:/);
    assert.match(String(await p.call("read", "/etc/passwd")), /^denied:/);
    if (runtime === "bun") {
      assert.match(String(await p.call("bunFile", join(root, "secret.txt"))), /^denied:/);
      assert.match(
        String(await p.call("bunFetch", pathToFileURL(join(root, "secret.txt")).href)),
        /^denied:/,
      );
    }
  });

  it("checks context access host-side", async () => {
    const p = host.get("boxed");
    assert.ok(p);
    assert.equal(await p.call("ctxGet", "config"), 'allowed:{"mode":"boxed"}');
    assert.equal(await p.call("ctxGet", "database"), "denied:ERR_PERMISSION_DENIED");
  });

  it("is picked by the strict policy on Linux", () => {
    const strict = new PluginHost({ policy: "strict", trust: { pinnedKeys: [] } });
    assert.equal(strict.policy.isolation, "process");
    void strict.close();
  });
});
