// One engine, one set of codes: the same condition gives the same PluginError code in the worker,
// process and native tiers, through the public host API with real workers, children and .so files.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, readdirSync, readFileSync } from "node:fs";
import { SANDBOX_UID_BASE } from "../../sandbox/launcher.ts";
import { join } from "node:path";
import { type Plugin, PluginError, PluginHost } from "../../mod.ts";
import { buildFixtures, type BuiltFixtures } from "../fixtures/native/build.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const linux = process.platform === "linux" ? false : "child tiers need Linux";
const key = `${process.platform}-${process.arch}`;

const JS = `export default { methods: {
  echo: (...args) => args,
  spin: () => { const end = Date.now() + 60_000; while (Date.now() < end) {} },
  crash: () => { setTimeout(() => { throw new Error("boom"); }); return new Promise(() => {}); },
} };`;
const SLOW_JS = "export default { init() { return new Promise((r) => setTimeout(r, 60_000)); } };";

type Tier = "worker" | "process" | "native";
const TIERS: Tier[] = ["worker", "process", "native"];

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (error) {
    return error instanceof PluginError ? error.code : `${(error as Error).name} (not PluginError)`;
  }
}

describe("every tier: one code per condition", { skip: linux }, () => {
  let built: BuiltFixtures;
  let root: string;
  let host: PluginHost;

  before(async () => {
    built = buildFixtures(["echo", "faults", "slowinit"]);
    root = tempDir();
    // The process tier's child runs as its own uid: the plugin files must be readable to it.
    chmodSync(root, 0o755);
    for (const tier of ["worker", "process"] as const) {
      const isolation = { isolation: tier };
      writePlugin(root, `js-${tier}`, {
        entry: "./mod.js",
        ...isolation,
        limits: { cpuTimeMs: 1500 },
      }, {
        "mod.js": JS,
      });
      writePlugin(root, `slow-${tier}`, { entry: "./mod.js", ...isolation }, { "mod.js": SLOW_JS });
    }
    const native = (name: string, lib: string) => {
      const dir = writePlugin(root, name, {
        native: { [key]: `./lib${lib}.so` },
        limits: { cpuTimeMs: 1500 },
      }, {});
      copyFileSync(built.lib(lib), join(dir, `lib${lib}.so`));
    };
    native("native-echo", "echo");
    native("native-faults", "faults");
    native("slow-native", "slowinit");
    // Each tier is asked for explicitly: Bun's and Deno's worker tiers leave parts unenforced.
    host = new PluginHost({
      pluginDirs: [root],
      loadTimeoutMs: 5000,
      shutdownTimeoutMs: 500,
      allowUnenforced: true,
    });
    await host.discover();
  });

  after(async () => {
    await host?.close();
    built?.remove();
    removeDir(root);
  });

  const load = (tier: Tier, what: "echo" | "faults" = "echo"): Promise<Plugin> =>
    host.load(tier === "native" ? `native-${what}` : `js-${tier}`);
  const fresh = async (name: string): Promise<Plugin> => {
    if (host.get(name) !== undefined) await host.unload(name).catch(() => {});
    return host.load(name);
  };

  it("passes every call argument in every tier", async () => {
    for (const tier of TIERS) {
      const p = await load(tier);
      // Worker and process methods get the arguments; a native method gets them as one JSON array.
      assert.deepEqual(await p.call("echo", 1, "two", [3]), [1, "two", [3]], tier);
      assert.deepEqual(await p.call("echo", { a: 1 }), tier === "native" ? { a: 1 } : [{ a: 1 }]);
    }
  });

  it("arguments that cannot cross: ERR_INVALID_INPUT in every tier", async () => {
    for (const tier of TIERS) {
      const p = host.get(tier === "native" ? "native-echo" : `js-${tier}`) ?? await load(tier);
      assert.equal(await codeOf(p.call("echo", () => 1)), "ERR_INVALID_INPUT", tier);
      assert.equal(await codeOf(p.call("echo", 1, Symbol.iterator)), "ERR_INVALID_INPUT", tier);
      assert.equal(await codeOf(p.call("echo", { f() {} })), "ERR_INVALID_INPUT", tier);
      assert.equal(p.status, "active", `${tier}: the plugin keeps serving`);
    }
  });

  it("an unknown method: ERR_METHOD_NOT_FOUND in every tier", async () => {
    for (const tier of TIERS) {
      const p = host.get(tier === "native" ? "native-echo" : `js-${tier}`) ?? await load(tier);
      assert.equal(await codeOf(p.call("no-such-method")), "ERR_METHOD_NOT_FOUND", tier);
    }
  });

  it("not ready within loadTimeoutMs: ERR_CALL_TIMEOUT in every tier", async () => {
    for (const tier of TIERS) {
      assert.equal(await codeOf(host.load(`slow-${tier}`)), "ERR_CALL_TIMEOUT", tier);
    }
  });

  it("a call past its deadline: ERR_CALL_TIMEOUT in every tier, and the plugin is failed", async () => {
    for (const tier of TIERS) {
      const name = tier === "native" ? "native-faults" : `js-${tier}`;
      const p = await fresh(name);
      assert.equal(await codeOf(p.call(tier === "native" ? "loop" : "spin")), "ERR_CALL_TIMEOUT");
      assert.notEqual(p.status, "active", tier);
    }
  });

  it("a crash: ERR_PLUGIN_CRASHED in every tier", async () => {
    for (const tier of TIERS) {
      const name = tier === "native" ? "native-faults" : `js-${tier}`;
      const p = await fresh(name);
      assert.equal(
        await codeOf(p.call(tier === "native" ? "segv" : "crash")),
        "ERR_PLUGIN_CRASHED",
      );
    }
  });

  it(
    "gives every sandboxed child its own uid across the process and native tiers",
    { skip: process.getuid?.() === 0 ? false : "needs a root host" },
    async () => {
      for (const p of host.list()) {
        if (p.status === "active") await host.unload(p.name);
      }
      await host.load("js-process");
      await host.load("native-echo");
      const uids = sandboxUidsOfDescendants();
      assert.equal(uids.size, 2, `one uid per child, got ${[...uids].join(", ")}`);
    },
  );
});

/** Real uids (as the host sees them) of this process's descendants that run as sandbox uids. */
function sandboxUidsOfDescendants(): Set<number> {
  const parent = new Map<number, number>();
  const uid = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      parent.set(pid, Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]));
      uid.set(pid, Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out = new Set<number>();
  for (const [pid, u] of uid) {
    let p = parent.get(pid);
    while (p !== undefined && p > 1 && p !== process.pid) p = parent.get(p);
    if (p === process.pid && u >= SANDBOX_UID_BASE) out.add(u);
  }
  return out;
}
