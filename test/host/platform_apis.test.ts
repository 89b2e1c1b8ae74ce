// What a plugin sees of the platform, the same on every runtime and tier: undeclared environment
// variables read as absent (Deno threw NotCapable), declared ones keep their values, and
// node:os answers host questions harmlessly (lib/guest/platform_answers.ts) instead of throwing
// (Deno without `sys`, Node's worker lockdown, the process tier's homedir) or telling the truth.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";
import { removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

const SECRET = "bulkhead-undeclared-node-env";
const DECLARED = "declared-value";

const CODE = `import os from "node:os";
const g = globalThis;
export default { methods: {
  env() {
    const r = {};
    const t = (k, f) => { try { r[k] = f(); } catch (e) { r[k] = "threw:" + (e.code ?? e.name); } };
    t("nodeEnv", () => process.env.NODE_ENV ?? null);
    t("declared", () => process.env.DECLARED_VAR ?? null);
    t("hasNodeEnv", () => "NODE_ENV" in process.env);
    t("hasDeclared", () => "DECLARED_VAR" in process.env);
    t("keys", () => Object.keys(process.env).sort());
    t("spread", () => JSON.stringify({ ...process.env }));
    t("write", () => {
      process.env.PLUGIN_SET = 1;
      const v = process.env.PLUGIN_SET;
      delete process.env.PLUGIN_SET;
      return [v, process.env.PLUGIN_SET ?? null];
    });
    return r;
  },
  denoEnv() {
    const env = g.Deno.env;
    return [env.get("NODE_ENV") ?? null, env.get("DECLARED_VAR") ?? null, env.has("NODE_ENV"),
      Object.keys(env.toObject())];
  },
  os() {
    const r = {};
    const t = (k, f) => { try { r[k] = f(); } catch (e) { r[k] = "threw:" + (e.code ?? e.name); } };
    for (const k of ["cpus", "availableParallelism", "homedir", "hostname", "tmpdir", "platform",
      "userInfo"]) t(k, () => os[k]());
    return r;
  },
} };`;

const ENV = {
  nodeEnv: null,
  declared: DECLARED,
  hasNodeEnv: false,
  hasDeclared: true,
  keys: ["DECLARED_VAR"],
  spread: JSON.stringify({ DECLARED_VAR: DECLARED }),
  write: ["1", null],
};

const OS = {
  cpus: [{ model: "unknown", speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } }],
  availableParallelism: 1,
  homedir: "/nonexistent",
  hostname: "localhost",
  tmpdir: "/tmp",
  platform: process.platform,
  userInfo: { uid: -1, gid: -1, username: "nobody", homedir: "/nonexistent", shell: null },
};

const tiers = [
  { isolation: "worker", label: "", heapLimit: true, skip: false },
  {
    isolation: "worker",
    label: " (denoHeapLimit: false)",
    heapLimit: false,
    skip: runtime !== "deno" ? "Deno only" : false,
  },
  {
    isolation: "process",
    label: "",
    heapLimit: true,
    skip: process.platform !== "linux" ? "the process tier needs Linux" : false,
  },
] as const;

for (const { isolation, label, heapLimit, skip } of tiers) {
  describe(`platform APIs in the ${isolation} tier${label}`, { skip }, () => {
    let root: string;
    let host: PluginHost;
    let p: Awaited<ReturnType<PluginHost["load"]>>;
    let saved: Record<string, string | undefined>;
    before(async () => {
      saved = { NODE_ENV: process.env.NODE_ENV, DECLARED_VAR: process.env.DECLARED_VAR };
      process.env.NODE_ENV = SECRET;
      process.env.DECLARED_VAR = DECLARED;
      root = tempDir();
      // The process tier's sandbox uid reads the plugin from here.
      chmodSync(root, 0o755);
      writePlugin(join(root, "plugins"), "platform", {
        entry: "./mod.js",
        isolation,
        permissions: { env: ["DECLARED_VAR"] },
      }, { "mod.js": CODE });
      host = new PluginHost({
        pluginDirs: [join(root, "plugins")],
        policy: "development",
        allowUnenforced: true,
        denoHeapLimit: heapLimit,
      });
      await host.discover();
      p = await host.load("platform");
    });
    after(async () => {
      await host?.close();
      removeDir(root);
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });

    it("reads undeclared variables as absent and declared ones as set", async () => {
      assert.equal(p.info.enforcement?.tier, isolation);
      const got = await p.call("env");
      assert.deepEqual(got, ENV);
      assert.ok(!JSON.stringify(got).includes(SECRET));
      // The plugin's writes stayed in the plugin.
      assert.equal(process.env.PLUGIN_SET, undefined);
    });

    it("answers Deno.env from the declared variables only", {
      skip: runtime !== "deno" ? "Deno only" : false,
    }, async () => {
      assert.deepEqual(await p.call("denoEnv"), [null, DECLARED, false, ["DECLARED_VAR"]]);
    });

    it("answers node:os host questions with the documented values", async () => {
      assert.deepEqual(await p.call("os"), OS);
    });
  });
}
