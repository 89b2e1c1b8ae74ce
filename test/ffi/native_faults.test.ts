import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { Server } from "node:net";
import { join } from "node:path";
import { startNativePlugin } from "../../ffi/native_plugin.ts";
import type { NativeExit, NativePlugin, NativePluginOptions } from "../../ffi/native_plugin.ts";
import { buildFixtures } from "../fixtures/native/build.ts";
import type { BuiltFixtures } from "../fixtures/native/build.ts";

const skip = process.platform === "linux" ? false : "native plugins need Linux (memfd loading)";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: unknown) => new TextDecoder().decode(b as Uint8Array);

/**
 * The code a plugin reported about its own failure (the kernel refused it something). It arrives
 * as ERR_PLUGIN_THREW: a plugin's status never passes for a host decision.
 */
async function said(p: Promise<unknown>): Promise<{ code: string | undefined; message: string }> {
  const error = await failure(p) as Error & { code?: string; pluginCode?: string };
  assert.equal(error.code, "ERR_PLUGIN_THREW", error.message);
  return { message: error.message, code: error.pluginCode };
}

async function failure(p: Promise<unknown>): Promise<Error & { code?: string; signal?: string }> {
  try {
    await p;
  } catch (error) {
    return error as Error & { code?: string; signal?: string };
  }
  assert.fail("the call did not fail");
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8")); // zombie = dead
  } catch {
    return false;
  }
}

describe("native plugin faults: host survives, the call rejects, others keep working", {
  skip,
}, () => {
  let built: BuiltFixtures;
  let witness: NativePlugin;
  let server: Server;
  let port = 0;
  let unixServer: Server;
  let unixPath = "";
  let accepted = 0;
  const started: NativePlugin[] = [];
  const plugins = new Map<string, NativePlugin>();
  const exits = new Map<string, NativeExit>();
  let granted = "";
  let outside = "";

  function options(name: string, extra: Partial<NativePluginOptions> = {}): NativePluginOptions {
    return {
      name,
      libraryPath: built.lib("faults"),
      limits: { heapMb: 64, cpuTimeMs: 20_000, threads: 8, fileDescriptors: 64, connections: 0 },
      permissions: {
        network: "none",
        filesystem: { read: [granted], write: [join(granted, "out")] },
      },
      callTimeoutMs: 20_000,
      ...extra,
    };
  }

  before(async () => {
    built = buildFixtures(["faults", "echo"]);
    // Modes let the sandbox uid through: only Landlock may deny these paths.
    granted = join(built.dir, "granted");
    outside = join(built.dir, "outside");
    for (const d of [granted, join(granted, "out"), outside]) {
      mkdirSync(d);
      chmodSync(d, 0o777);
    }
    writeFileSync(join(granted, "ok.txt"), "inside the grant", { mode: 0o644 });
    writeFileSync(join(outside, "secret.txt"), "host secret", { mode: 0o644 });
    server = createServer((socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
    unixPath = join(outside, "host.sock");
    unixServer = createServer((socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => unixServer.listen(unixPath, resolve));
    chmodSync(unixPath, 0o777);
    const specs: Array<[string, Partial<NativePluginOptions>]> = [
      ["segv", {}],
      ["abort", {}],
      ["timeout", { callTimeoutMs: 300 }],
      ["cpu", {
        limits: { heapMb: 64, cpuTimeMs: 300, threads: 8, fileDescriptors: 64, connections: 0 },
      }],
      ["forkbomb", {}],
      ["mallocbomb", {}],
      ["fdbomb", {}],
      ["fs", {}],
      ["net", {}],
      ["garbage", {}],
    ];
    const list = await Promise.all(
      specs.map(([name, extra]) => startNativePlugin(options(name, extra))),
    );
    specs.forEach(([name], i) => {
      const p = list[i] as NativePlugin;
      started.push(p);
      plugins.set(name, p);
      p.onExit((exit) => exits.set(name, exit));
    });
    witness = await startNativePlugin({ ...options("witness"), libraryPath: built.lib("echo") });
    started.push(witness);
  });

  after(() => {
    for (const p of started) p.kill();
    server?.close();
    unixServer?.close();
    built?.remove();
  });

  function get(name: string): NativePlugin {
    return plugins.get(name) as NativePlugin;
  }

  async function witnessWorks(): Promise<void> {
    assert.equal(dec(await witness.call("upper", enc("alive"))), "ALIVE");
  }

  it("segfault: ERR_PLUGIN_CRASHED with SIGSEGV", async () => {
    const p = get("segv");
    assert.equal(dec(await p.call("ping", new Uint8Array())), "pong");
    const t0 = performance.now();
    const error = await failure(p.call("segv", new Uint8Array()));
    const noticedMs = performance.now() - t0;
    assert.equal(error.code, "ERR_PLUGIN_CRASHED");
    assert.equal(error.signal, "SIGSEGV");
    assert.ok(noticedMs < 5000, `noticed after ${noticedMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(exits.get("segv")?.signal, "SIGSEGV");
    assert.equal(exits.get("segv")?.crashed, true);
    assert.equal((await failure(p.call("ping", new Uint8Array()))).code, "ERR_PLUGIN_CRASHED");
    await witnessWorks();
  });

  it("abort(): ERR_PLUGIN_CRASHED with SIGABRT", async () => {
    const error = await failure(get("abort").call("abort", new Uint8Array()));
    assert.equal(error.code, "ERR_PLUGIN_CRASHED");
    assert.equal(error.signal, "SIGABRT");
    await witnessWorks();
  });

  it("infinite loop: ERR_CALL_TIMEOUT at the deadline, then the plugin pid is killed", async () => {
    const p = get("timeout");
    const pid = p.pid;
    const error = await failure(p.call("loop", new Uint8Array()));
    assert.equal(error.code, "ERR_CALL_TIMEOUT");
    for (let i = 0; i < 300 && !exits.has("timeout"); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(alive(pid), false);
    assert.equal(exits.get("timeout")?.reason, "timeout");
    await witnessWorks();
  });

  it("CPU budget per call: ERR_RESOURCE_LIMIT from the watchdog", async () => {
    const error = await failure(get("cpu").call("loop", new Uint8Array()));
    assert.equal(error.code, "ERR_RESOURCE_LIMIT");
    await witnessWorks();
  });

  it("fork bomb: bounded by the process limit", async () => {
    const p = get("forkbomb");
    const error = await said(p.call("forkbomb", new Uint8Array()));
    assert.equal(error.code, "ERR_RESOURCE_LIMIT", error.message);
    assert.match(error.message, /fork failed after \d+ children/);
    const made = Number(/after (\d+) children/.exec(error.message)?.[1]);
    assert.ok(made < 50, `${made} children`);
    await witnessWorks();
  });

  it("malloc until failure: bounded (ERR_RESOURCE_LIMIT), host memory untouched", async () => {
    const error = await failure(get("mallocbomb").call("mallocbomb", new Uint8Array()));
    assert.equal(error.code, "ERR_RESOURCE_LIMIT", error.message);
    await witnessWorks();
  });

  it("fd exhaustion: bounded by RLIMIT_NOFILE (ERR_RESOURCE_LIMIT), plugin still answers", async () => {
    const p = get("fdbomb");
    const error = await said(p.call("fdbomb", new Uint8Array()));
    assert.equal(error.code, "ERR_RESOURCE_LIMIT", error.message);
    assert.match(error.message, /open failed after \d+ fds/);
    await witnessWorks();
  });

  it("network: cannot connect to a port the host listens on", async () => {
    const p = get("net");
    assert.equal(p.enforcement.network, "netns");
    const error = await said(p.call("connect", enc(String(port))));
    assert.equal(error.code, "ERR_PERMISSION_DENIED", error.message);
    assert.equal(accepted, 0);
    await witnessWorks();
  });

  it("Unix sockets: cannot reach a host socket file (seccomp denies AF_UNIX sockets)", async () => {
    const p = get("net");
    assert.equal(p.enforcement.syscalls, "seccomp");
    const error = await said(p.call("unix", enc(unixPath)));
    assert.equal(error.code, "ERR_PERMISSION_DENIED", error.message);
    assert.equal(accepted, 0);
    await witnessWorks();
  });

  it("filesystem: reads and writes only inside the grant", async () => {
    const p = get("fs");
    assert.equal(p.enforcement.filesystem, "landlock");
    assert.equal(dec(await p.call("read", enc(join(granted, "ok.txt")))), "inside the grant");
    const read = await said(p.call("read", enc(join(outside, "secret.txt"))));
    assert.equal(read.code, "ERR_PERMISSION_DENIED", read.message);
    assert.equal(
      (await said(p.call("read", enc("/etc/hostname")))).code,
      "ERR_PERMISSION_DENIED",
    );
    assert.equal(dec(await p.call("write", enc(join(granted, "out", "w.txt")))), "written");
    const write = await said(p.call("write", enc(join(outside, "w.txt"))));
    assert.equal(write.code, "ERR_PERMISSION_DENIED", write.message);
    assert.equal(existsSync(join(outside, "w.txt")), false);
    const up = await said(p.call("write", enc(join(granted, "not-writable.txt"))));
    assert.equal(up.code, "ERR_PERMISSION_DENIED");
    await witnessWorks();
  });

  it("garbage written to the IPC channel: ERR_IPC (or a crash), plugin gone, host fine", async () => {
    const p = get("garbage");
    const error = await failure(p.call("garbage", new Uint8Array()));
    assert.ok(["ERR_IPC", "ERR_PLUGIN_CRASHED"].includes(error.code as string), error.message);
    for (let i = 0; i < 200 && !exits.has("garbage"); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(exits.get("garbage")?.crashed, true);
    await witnessWorks();
  });
});
