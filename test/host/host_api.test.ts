import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PluginError, PluginHost } from "../../mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

describe("PluginHost", () => {
  let root: string;
  let host: PluginHost;
  const logs: string[] = [];

  before(() => {
    root = tempDir();
    writePlugin(root, "echo", {
      entry: "./mod.ts",
      permissions: { context: { read: ["config", "logger"], write: ["cache"] } },
    }, {
      "mod.ts": `
        let ctx;
        export default {
          init(c) { ctx = c; },
          shutdown() { return ctx.set("cache", "shut down cleanly"); },
          methods: {
            echo: (x) => x,
            add: (a, b) => a + b,
            greet: async (n) => (await ctx.get("config")).greeting + ", " + n,
            log: async (m) => { const l = await ctx.get("logger"); await l.info("via proxy: " + m); await ctx.log("warn", m); return true; },
            coded() { throw Object.assign(new Error("bad width"), { code: "E_WIDTH" }); },
            typed() { const e = new RangeError("too big"); throw e; },
            uncloneable: () => () => 1,
          },
        };`,
    });
    writePlugin(root, "broken", { version: "nope" }, {});
    host = new PluginHost({
      pluginDirs: [root],
      // development: the worker tier on every runtime, whose ctx proxies host objects (Bun and
      // Deno leave parts of it unenforced, which that policy allows and warns about).
      policy: "development",
      context: {
        config: { greeting: "Hello" },
        logger: { info: (m: string) => logs.push(`info:${m}`) },
      },
      logger: { debug() {}, info() {}, warn: (m) => logs.push(`warn:${m}`), error() {} },
    });
  });

  after(async () => {
    await host?.close();
    removeDir(root);
  });

  it("discovers plugins and lists invalid ones as failed with their error", async () => {
    const infos = await host.discover();
    const echo = infos.find((i) => i.name === "echo");
    assert.equal(echo?.status, "available");
    const broken = infos.find((i) => i.path.endsWith("broken"));
    assert.equal(broken?.status, "failed");
    assert.equal(broken?.lastError?.code, "ERR_MANIFEST_INVALID");
  });

  it("loads a plugin and structured-clones arguments and results", async () => {
    const p = await host.load("echo");
    assert.equal(p.status, "active");
    assert.deepEqual(await p.call("echo", { a: [1, 2], d: new Date(0) }), {
      a: [1, 2],
      d: new Date(0),
    });
    assert.equal(await p.call("add", 2, 3), 5);
    assert.deepEqual([...p.methods].sort(), [
      "add",
      "coded",
      "echo",
      "greet",
      "log",
      "typed",
      "uncloneable",
    ]);
  });

  it("reads declared context and calls context objects through a proxy", async () => {
    const p = host.get("echo");
    assert.ok(p);
    assert.equal(await p.call("greet", "Ada"), "Hello, Ada");
    assert.equal(await p.call("log", "hi"), true);
    assert.ok(logs.includes("info:via proxy: hi"));
    assert.ok(logs.some((l) => l.startsWith("warn:hi")));
  });

  it("keeps error codes across the boundary", async () => {
    const p = host.get("echo");
    assert.ok(p);
    await assert.rejects(p.call("coded"), { code: "E_WIDTH", message: "bad width" });
    await assert.rejects(p.call("typed"), { name: "RangeError" });
    await assert.rejects(
      p.call("missing"),
      (e: unknown) => e instanceof PluginError && e.code === "ERR_METHOD_NOT_FOUND",
    );
    await assert.rejects(p.call("uncloneable"), { code: "ERR_PLUGIN_THREW" });
    await assert.rejects(p.call("echo", () => 1), { code: "ERR_INVALID_INPUT" });
  });

  it("refuses to load a plugin twice and names unknown plugins", async () => {
    await assert.rejects(host.load("echo"), { code: "ERR_DUPLICATE" });
    await assert.rejects(host.load("nope"), { code: "ERR_PLUGIN_NOT_FOUND" });
  });

  it("runs shutdown() on unload and refuses calls afterwards", async () => {
    const p = host.get("echo");
    assert.ok(p);
    await host.unload("echo");
    assert.equal(p.status, "unloaded");
    assert.equal(host.context.get("cache"), "shut down cleanly");
    await assert.rejects(p.call("add", 1, 2), { code: "ERR_PLUGIN_NOT_ACTIVE" });
  });

  it("reports two plugins with one name in different directories", async () => {
    const a = tempDir();
    const b = tempDir();
    const h = new PluginHost({ pluginDirs: [a, b] });
    try {
      writePlugin(a, "same", { entry: "./mod.ts" }, { "mod.ts": "export default {}" });
      writePlugin(b, "same", { entry: "./mod.ts" }, { "mod.ts": "export default {}" });
      await assert.rejects(
        h.discover(),
        (e: unknown) =>
          e instanceof PluginError && e.code === "ERR_DUPLICATE" && e.message.includes(a) &&
          e.message.includes(b),
      );
    } finally {
      await h.close();
      removeDir(a);
      removeDir(b);
    }
  });

  it("refuses use after close", async () => {
    const h = new PluginHost({ pluginDirs: [root] });
    await h.close();
    await assert.rejects(h.discover(), { code: "ERR_HOST_CLOSED" });
  });
});

describe("exposeGuarded() against raw Comlink messages", () => {
  it("answers GET, SET and prototype paths with ERR_PERMISSION_DENIED", async () => {
    const { exposeGuarded } = await import("../../lib/broker/guarded_endpoint.ts");
    const { port1, port2 } = new MessageChannel();
    const refused: string[] = [];
    const secret = { value: "s3cret" };
    const close = exposeGuarded({ ping: () => "pong", secret } as object, port1, {
      plugin: "t",
      onRefused: (r) => refused.push(`${r.type} ${r.path}`),
    });
    const replies = new Map<string, { value?: { value?: { code?: string } }; type?: string }>();
    const waiters = new Map<string, () => void>();
    port2.addEventListener("message", (e: MessageEvent) => {
      replies.set(e.data.id, e.data);
      waiters.get(e.data.id)?.();
    });
    port2.start();
    const send = (msg: Record<string, unknown>) =>
      new Promise<void>((r) => {
        waiters.set(String(msg.id), r);
        port2.postMessage(msg);
      });
    try {
      await send({ id: "1", type: "GET", path: ["secret", "value"] });
      await send({
        id: "2",
        type: "SET",
        path: ["ping", "__proto__", "pwned"],
        value: { type: "RAW", value: 1 },
      });
      await send({
        id: "3",
        type: "APPLY",
        path: ["ping", "constructor"],
        argumentList: [{ type: "RAW", value: "return 1" }],
      });
      await send({ id: "4", type: "APPLY", path: ["ping"], argumentList: [] });
      for (const id of ["1", "2", "3"]) {
        assert.equal(replies.get(id)?.value?.value?.code, "ERR_PERMISSION_DENIED", id);
      }
      assert.equal(replies.get("4")?.type, "RAW");
      assert.equal((Function.prototype as unknown as Record<string, unknown>).pwned, undefined);
      assert.deepEqual(refused, [
        "GET secret.value",
        "SET ping.__proto__.pwned",
        "APPLY ping.constructor",
      ]);
    } finally {
      close();
      port2.close();
    }
  });
});
