import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { PluginError } from "../../lib/errors.ts";
import { startNativePlugin } from "../../ffi/native_plugin.ts";
import type { NativeExit, NativePlugin, NativePluginOptions } from "../../ffi/native_plugin.ts";
import { buildFixtures } from "../fixtures/native/build.ts";
import type { BuiltFixtures } from "../fixtures/native/build.ts";

const linux = process.platform === "linux";
const skip = linux ? false : "native plugins need Linux (memfd loading)";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: unknown) => new TextDecoder().decode(b as Uint8Array);

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe("startNativePlugin() with a well-behaved plugin", { skip }, () => {
  let built: BuiltFixtures;
  let plugin: NativePlugin;
  const logs: string[] = [];
  const store = new Map<string, unknown>([["greeting", { text: "hello from the host" }]]);
  const exits: NativeExit[] = [];

  function options(name: string): NativePluginOptions {
    return {
      name,
      libraryPath: built.lib(name),
      limits: { heapMb: 64, cpuTimeMs: 5000, threads: 4, fileDescriptors: 32, connections: 0 },
      permissions: { network: "none", filesystem: "none" },
      callTimeoutMs: 10_000,
    };
  }

  before(async () => {
    built = buildFixtures(["echo", "abi2"]);
    plugin = await startNativePlugin({
      ...options("echo"),
      log: (level, message) => logs.push(`${level}:${message}`),
      context: (op, key, value) => {
        if (key.startsWith("secret")) {
          return Promise.reject(new PluginError("ERR_PERMISSION_DENIED", `Cannot read "${key}"`));
        }
        if (op === "set") store.set(key, value);
        return Promise.resolve(store.get(key));
      },
    });
    plugin.onExit((exit) => exits.push(exit));
  });

  after(async () => {
    await plugin?.close();
    built?.remove();
  });

  it("echoes bytes and transforms them", async () => {
    assert.equal(dec(await plugin.call("echo", enc("abc\u0000é"))), "abc\u0000é");
    assert.equal(dec(await plugin.call("upper", enc("shout"))), "SHOUT");
    assert.deepEqual(await plugin.call("echo", new Uint8Array()), new Uint8Array());
  });

  it("encodes non-Uint8Array input as JSON and parses the output", async () => {
    assert.deepEqual(await plugin.call("echo", { a: [1, "two", null] }), { a: [1, "two", null] });
    assert.equal(await plugin.call("echo", "text"), "text");
  });

  it("serves pipelined calls in order", async () => {
    const inputs = Array.from({ length: 50 }, (_, i) => `n${i}`);
    const out = await Promise.all(inputs.map((s) => plugin.call("upper", enc(s))));
    assert.deepEqual(out.map(dec), inputs.map((s) => s.toUpperCase()));
  });

  it("reads host context through the synchronous host callback", async () => {
    // the fixture first offers a 4-byte buffer, so this also covers BH_ERR_TOO_SMALL + retry
    assert.deepEqual(JSON.parse(dec(await plugin.call("get", enc("greeting")))), {
      text: "hello from the host",
    });
  });

  it("writes host context and the host sees the value", async () => {
    assert.equal(dec(await plugin.call("set", enc('counter={"n":3}'))), "ok");
    assert.deepEqual(store.get("counter"), { n: 3 });
  });

  it("passes the host's denial to the plugin as BH_ERR_DENIED", async () => {
    // The host refused; the plugin returned BH_ERR_DENIED, which reaches the caller as the
    // plugin's word (ERR_PLUGIN_THREW, pluginCode ERR_PERMISSION_DENIED).
    const denied = { code: "ERR_PLUGIN_THREW", pluginCode: "ERR_PERMISSION_DENIED" };
    await assert.rejects(plugin.call("get", enc("secret.token")), denied);
    await assert.rejects(plugin.call("set", enc("secret.x=1")), denied);
    assert.equal(store.has("secret.x"), false);
  });

  it("reports a missing key and non-JSON values as plugin errors", async () => {
    assert.equal(await codeOf(plugin.call("get", enc("missing"))), "ERR_PLUGIN_THREW");
    assert.equal(await codeOf(plugin.call("set", enc("k=not json"))), "ERR_PLUGIN_THREW");
  });

  it("forwards log lines with their level", async () => {
    assert.equal(dec(await plugin.call("log", enc("careful"))), "logged");
    assert.ok(logs.includes("info:echo plugin ready"), logs.join());
    assert.ok(logs.includes("warn:careful"), logs.join());
  });

  it("keeps the IPC channel intact when the plugin prints to stdout", async () => {
    assert.equal(dec(await plugin.call("stdout", new Uint8Array())), "printed");
    assert.equal(dec(await plugin.call("echo", enc("still fine"))), "still fine");
  });

  it("maps status codes: unknown method and plugin failure", async () => {
    assert.equal(await codeOf(plugin.call("nope", new Uint8Array())), "ERR_METHOD_NOT_FOUND");
    assert.equal(await codeOf(plugin.call("fail", new Uint8Array())), "ERR_PLUGIN_THREW");
  });

  it("reports the real plugin pid and samples it", () => {
    const status = readFileSync(`/proc/${plugin.pid}/status`, "utf8");
    if (plugin.enforcement.namespaces.includes("pid")) {
      assert.match(status, /^NSpid:\s+\d+\s+2$/m); // pid 2 inside: behind the init shell
    }
    const m = plugin.metrics();
    assert.ok(m !== null && m.pid === plugin.pid && m.rssBytes > 0 && m.threads >= 1);
  });

  it("reports what the sandbox enforces", () => {
    const e = plugin.enforcement;
    assert.equal(typeof e.sandboxed, "boolean");
    if (e.namespaces.includes("net")) assert.equal(e.network, "netns");
    assert.ok(["landlock", "none"].includes(e.filesystem));
  });

  it("loads libraryBytes instead of the path when given", async () => {
    const p = await startNativePlugin({
      ...options("echo"),
      libraryPath: "/nonexistent/never-read.so",
      libraryBytes: readFileSync(built.lib("echo")),
    });
    try {
      assert.equal(dec(await p.call("upper", enc("bytes"))), "BYTES");
    } finally {
      await p.close();
    }
  });

  it("refuses a library built for another ABI version with ERR_ABI", async () => {
    assert.equal(await codeOf(startNativePlugin(options("abi2"))), "ERR_ABI");
  });

  it("refuses bytes that are not a shared library with ERR_NATIVE_LOAD", async () => {
    const p = startNativePlugin({ ...options("echo"), libraryBytes: enc("not an ELF file") });
    assert.equal(await codeOf(p), "ERR_NATIVE_LOAD");
    const missing = startNativePlugin({ ...options("echo"), libraryPath: "/nonexistent.so" });
    assert.equal(await codeOf(missing), "ERR_NATIVE_LOAD");
  });

  it("runs without any sandbox when sandbox is false, and says so", async () => {
    const p = await startNativePlugin({ ...options("echo"), sandbox: false });
    try {
      assert.equal(p.enforcement.sandboxed, false);
      assert.equal(p.enforcement.filesystem, "none");
      assert.equal(p.enforcement.syscalls, "none");
      assert.deepEqual(p.enforcement.namespaces, []);
      assert.equal(dec(await p.call("upper", enc("plain"))), "PLAIN");
    } finally {
      await p.close();
    }
  });

  it("throws TypeError for a relative filesystem grant", async () => {
    await assert.rejects(
      startNativePlugin({
        ...options("echo"),
        permissions: { network: "none", filesystem: { read: ["data"], write: [] } },
      }),
      TypeError,
    );
  });

  it("closes cleanly: bh_shutdown, exit listeners, then calls are refused", async () => {
    const p = await startNativePlugin(options("echo"));
    const seen: NativeExit[] = [];
    p.onExit((exit) => seen.push(exit));
    await p.close();
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.crashed, false);
    assert.equal(seen[0]?.reason, "closed");
    assert.ok(await codeOf(p.call("echo", enc("x"))));
    assert.equal(p.metrics(), null);
    assert.equal(exits.length, 0); // the shared plugin is untouched
  });
});
