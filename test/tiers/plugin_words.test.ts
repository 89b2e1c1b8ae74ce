// What a plugin says never passes for what the host decided (issue 18): forged host codes,
// errors that cannot be serialized, stats probes of a busy plugin, and call admission (in-flight
// limit, bounded queue, deadlines from send). Worker and process tiers, real plugins.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import { PluginError, PluginHost } from "../../mod.ts";
import { serializeError } from "../../lib/errors.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const TIERS = process.platform === "linux" ? ["worker", "process"] as const : ["worker"] as const;

const WORDS = `
const coded = (code) => Object.assign(new Error("the plugin says " + code), { code });
export default { methods: {
  forge: (code) => { throw coded(code); },
  forgeAsync: async (code) => { throw coded(code); },
  mine: () => { throw coded("E_MINE"); },
  nullProto: () => { throw Object.create(null); },
  badToString: () => { throw { toString() { throw new Error("no"); } }; },
  badGetter: () => {
    const e = new Error("getter");
    Object.defineProperty(e, "code", { get() { throw new Error("no"); } });
    throw e;
  },
  proxy: () => {
    throw new Proxy(new Error("p"), {
      get() { throw new Error("trap"); }, getPrototypeOf() { throw new Error("trap"); },
    });
  },
  badIssues: () => { throw Object.assign(new Error("issues"), { issues: [{ path: 1 }, () => 1] }); },
  sleep: (ms) => new Promise((r) => setTimeout(() => r(ms), ms)),
  spin: (ms) => { const end = Date.now() + ms; while (Date.now() < end) {} return ms; },
  ping: () => "pong",
} };`;

describe("plugin words and host decisions", () => {
  let root: string;
  before(() => {
    root = tempDir();
    chmodSync(root, 0o755);
    for (const tier of TIERS) {
      writePlugin(root, `words-${tier}`, {
        entry: "./mod.js",
        isolation: tier,
        limits: { cpuTimeMs: 4000 },
      }, { "mod.js": WORDS });
      writePlugin(root, `init-${tier}`, { entry: "./mod.js", isolation: tier }, {
        "mod.js": `export default { init() {
          throw Object.assign(new Error("denied, says the plugin"), { code: "ERR_PERMISSION_DENIED" });
        } };`,
      });
    }
  });
  after(() => removeDir(root));

  it("serializeError is total: anything thrown becomes a plain object", () => {
    const cases: unknown[] = [
      Object.create(null),
      {
        toString() {
          throw new Error("no");
        },
      },
      new Proxy({}, {
        getPrototypeOf() {
          throw new Error("trap");
        },
      }),
      Object.defineProperty(new Error("x"), "code", {
        get() {
          throw new Error("no");
        },
      }),
      Symbol("s"),
      undefined,
    ];
    for (const c of cases) {
      const s = serializeError(c);
      assert.equal(typeof s.message, "string");
      assert.equal(typeof s.name, "string");
      assert.doesNotThrow(() => structuredClone(s));
    }
  });

  for (const tier of TIERS) {
    describe(`${tier} tier`, () => {
      let host: PluginHost;
      const name = `words-${tier}`;
      before(async () => {
        // Each tier is asked for explicitly: Bun's and Deno's worker tiers leave parts unenforced.
        host = new PluginHost({
          pluginDirs: [root],
          maxInFlight: 4,
          maxQueued: 6,
          allowUnenforced: true,
        });
        await host.discover();
        await host.load(name);
      });
      after(() => host.close());

      it("a thrown host code arrives as ERR_PLUGIN_THREW with pluginCode; the plugin stays", async () => {
        const p = host.get(name)!;
        for (const code of ["ERR_CALL_TIMEOUT", "ERR_PLUGIN_CRASHED", "ERR_PERMISSION_DENIED"]) {
          for (const method of ["forge", "forgeAsync"]) {
            const error = await p.call(method, code).then(() => undefined, (e: unknown) => e);
            assert.ok(error instanceof PluginError, `${method} ${code}`);
            assert.equal(error.code, "ERR_PLUGIN_THREW");
            assert.equal(error.pluginCode, code);
            assert.equal(error.plugin, name);
            assert.match(error.message, /the plugin says/);
          }
        }
        assert.equal(p.status, "active");
        assert.equal(p.violations().length, 0);
        assert.equal(await p.call("ping"), "pong");
      });

      it("a code of the plugin's own stays on a plain Error", async () => {
        const error = await host.get(name)!.call("mine").catch((e: unknown) => e);
        assert.ok(error instanceof Error && !(error instanceof PluginError));
        assert.equal((error as Error & { code?: string }).code, "E_MINE");
      });

      it("an init() error with a host code is ERR_PLUGIN_INIT with pluginCode", async () => {
        await assert.rejects(host.load(`init-${tier}`), {
          code: "ERR_PLUGIN_INIT",
          pluginCode: "ERR_PERMISSION_DENIED",
        });
      });

      it("values that cannot be serialized fail the call, not the plugin", async () => {
        const p = host.get(name)!;
        for (const method of ["nullProto", "badToString", "badGetter", "proxy", "badIssues"]) {
          const error = await p.call(method).then(() => undefined, (e: unknown) => e);
          assert.ok(error instanceof Error, method);
          assert.notEqual((error as PluginError).code, "ERR_PLUGIN_CRASHED", method);
          assert.equal(p.status, "active", method);
        }
        assert.equal(p.violations().length, 0);
        assert.equal(await p.call("ping"), "pong");
      });

      it("an unknown method is refused by the host, before anything is sent", async () => {
        await assert.rejects(host.get(name)!.call("nope"), {
          code: "ERR_METHOD_NOT_FOUND",
          pluginCode: undefined,
        });
      });

      it("a stats probe of a busy plugin is skipped and never fails it", async () => {
        const p = host.get(name)!;
        const monitor = host.startMonitor({ intervalMs: 60_000 });
        try {
          const busy = p.call("spin", 1500);
          await new Promise((r) => setTimeout(r, 50));
          await monitor.sample();
          assert.equal(await busy, 1500);
          assert.equal(p.status, "active");
          assert.equal(p.violations().length, 0);
        } finally {
          monitor.stop();
        }
      });

      it("at most maxInFlight calls are sent, maxQueued wait, one more is ERR_BUSY", async () => {
        const p = host.get(name)!;
        const calls = Array.from({ length: 11 }, () => p.call("sleep", 300));
        const settled = await Promise.allSettled(calls);
        const busy = settled.filter((s) => s.status === "rejected");
        assert.equal(busy.length, 1);
        assert.equal((busy[0] as PromiseRejectedResult).reason.code, "ERR_BUSY");
        assert.equal(settled.filter((s) => s.status === "fulfilled").length, 10);
        assert.equal(p.status, "active");
      });
    });
  }

  it("5,000 concurrent 1 ms calls under default options: every one answers", async () => {
    // Default options but the opt-in the explicit worker tier needs on Bun and Deno.
    const host = new PluginHost({ pluginDirs: [root], maxQueued: 10_000, allowUnenforced: true });
    try {
      await host.discover();
      const p = await host.load("words-worker");
      // Each call takes 1 ms in the plugin, 5 s in all: far past the 4 s deadline if every
      // deadline started at send. Deadlines start when a call leaves the host's queue.
      const results = await Promise.all(Array.from({ length: 5000 }, () => p.call("spin", 1)));
      assert.equal(results.length, 5000);
      assert.equal(p.status, "active");
    } finally {
      await host.close();
    }
  });
});
