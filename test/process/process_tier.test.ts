// The process tier under attack and on the happy path: one real sandboxed child per suite.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginError } from "../../lib/errors.ts";
import { KIND_CALL, KIND_HOOK, KIND_LIFECYCLE, KIND_STATS } from "../../lib/protocol/messages.ts";
import { removeDir, runtime, startServer, tempDir, type TestServer } from "../_helpers.ts";
import { type Started, startFixture } from "./_start.ts";

const onlyBun = runtime === "bun" ? false : "Bun-only API";

describe("startProcessInstance()", () => {
  let root: string;
  let server: TestServer;
  let s: Started;
  const call = (method: string, ...args: unknown[]) =>
    s.instance.send(KIND_CALL, method, args, 5000);

  before(async () => {
    root = tempDir();
    server = await startServer();
    writeFileSync(join(root, "secret.txt"), "TOP SECRET");
    writeFileSync(join(root, "ok.txt"), "public data");
    mkdirSync(join(root, "out"));
    // A root host runs the child under its own uid: the grants must pass the usual file modes.
    chmodSync(root, 0o755);
    chmodSync(join(root, "out"), 0o777);
    process.env.ALLOWED_VAR = "visible";
    process.env.SECRET_TOKEN = "s3cr3t";
    s = await startFixture({
      name: "proc",
      permissions: {
        network: [`127.0.0.1:${server.port}`],
        filesystem: { read: [join(root, "ok.txt")], write: [join(root, "out")] },
        env: ["ALLOWED_VAR"],
        context: { read: ["config"], write: ["cache"] },
      },
    }, { store: new Map<string, unknown>([["config", { mode: "test" }], ["database", "dsn"]]) });
  });

  after(async () => {
    await s?.instance.terminate(new PluginError("ERR_HOST_CLOSED", "Cannot continue: closed"));
    await server?.close();
    removeDir(root);
  });

  it("reports the kernel's enforcement for tier process", () => {
    const e = s.enforcement;
    assert.equal(e.tier, "process");
    assert.equal(e.runtime, runtime);
    assert.equal(e.filesystem.mechanism, "landlock");
    assert.equal(e.network.mechanism, "netns+broker");
    assert.equal(e.subprocess.mechanism, "seccomp");
    for (const area of ["filesystem", "network", "env", "subprocess", "memory", "cpu"] as const) {
      assert.equal(e[area].enforced, true, area);
    }
  });

  it("reports methods, hooks and lifecycle once ready", () => {
    assert.ok(s.instance.ready?.methods.includes("add"));
    assert.deepEqual(s.instance.ready?.hooks.sort(), ["dynamic.hook", "test.hook"]);
    assert.deepEqual(s.instance.ready?.lifecycle, ["start"]);
    assert.deepEqual(s.hooks, ["dynamic.hook:7"]);
  });

  it("calls methods with structured-clone arguments and results", async () => {
    assert.equal(await call("add", 2, 3), 5);
    assert.deepEqual(await call("bytes", new Uint8Array([1, 2])), new Uint8Array([2, 4]));
    const d = new Date(0);
    assert.deepEqual(await call("echo", d, new Map([[1, "a"]])), [d, new Map([[1, "a"]])]);
  });

  it("keeps code and name of a plugin's error", async () => {
    await assert.rejects(call("fail"), (e: Error & { code?: string }) => {
      assert.equal(e.code, "E_BAD");
      assert.equal(e.name, "ValidationError");
      return true;
    });
    await assert.rejects(call("nope"), { code: "ERR_METHOD_NOT_FOUND" });
  });

  it("runs hooks, lifecycle callbacks and reports $stats from procfs", async () => {
    assert.deepEqual(await s.instance.send(KIND_HOOK, "test.hook", { x: 1 }, 2000), {
      seen: { x: 1 },
    });
    await s.instance.send(KIND_LIFECYCLE, "start", undefined, 2000);
    assert.equal(await call("started"), 1);
    const stats = await s.instance.send(KIND_STATS, "stats", undefined, 2000) as Record<
      string,
      number
    >;
    assert.ok(stats.rssBytes! > 1024 * 1024);
    assert.ok(stats.threads! >= 1);
    assert.equal(typeof stats.cpuMs, "number");
  });

  it("brings ctx.log to the host logger; stdout noise does not break the channel", async () => {
    assert.equal(await call("log", "hello"), "logged");
    assert.ok(s.logs.includes("hello"));
  });

  it("checks context keys on the host", async () => {
    assert.equal(await call("ctxGet", "config"), 'allowed:{"mode":"test"}');
    assert.equal(await call("ctxGet", "database"), "denied:ERR_PERMISSION_DENIED");
    assert.equal(await call("ctxSet", "cache", 1), "allowed:undefined");
    assert.equal(await call("ctxSet", "config", 1), "denied:ERR_PERMISSION_DENIED");
    assert.ok(s.denials.some((d) => d.what === "context.read" && d.target === "database"));
  });

  it("denies reads outside the grant (node:fs, async, ..)", async () => {
    assert.equal(await call("read", join(root, "ok.txt")), "allowed:public data");
    assert.equal(await call("read", join(root, "secret.txt")), "denied:EACCES");
    assert.equal(await call("readAsync", join(root, "secret.txt")), "denied:EACCES");
    assert.equal(await call("read", "/etc/passwd"), "denied:EACCES");
    assert.equal(await call("read", join(root, "out", "..", "secret.txt")), "denied:EACCES");
  });

  it("denies fetch of file: URLs", async () => {
    assert.match(await call("fetchDirect", "file:///etc/passwd") as string, /^denied:/);
  });

  it("denies writes outside the grant", async () => {
    assert.equal(await call("write", join(root, "out", "fine.txt")), "allowed:undefined");
    assert.equal(await call("write", join(root, "pwned.txt")), "denied:EACCES");
    assert.equal(await call("write", "/tmp/bulkhead-process-pwned"), "denied:EACCES");
  });

  it("reads Bun.file and Bun.fetch(file:) only inside the grant", { skip: onlyBun }, async () => {
    assert.equal(await call("bunFile", join(root, "ok.txt")), "allowed:public data");
    assert.equal(await call("bunFile", join(root, "secret.txt")), "denied:EACCES");
    assert.equal(await call("bunFile", "/etc/passwd"), "denied:EACCES");
    assert.match(await call("bunFetch", "file:///etc/passwd") as string, /^denied:/);
    assert.match(await call("bunWrite", join(root, "pwned.txt")) as string, /^denied:/);
  });

  it("cannot reach a host port directly (fetch, Bun.fetch)", async () => {
    const url = `http://127.0.0.1:${server.port}/`;
    assert.match(await call("fetchDirect", url) as string, /^denied:/);
    if (runtime === "bun") assert.match(await call("bunFetch", url) as string, /^denied:/);
  });

  it("brokers ctx.fetch to allowed hosts only, per redirect hop", async () => {
    const base = `http://127.0.0.1:${server.port}`;
    assert.match(await call("ctxFetch", `${base}/`) as string, /^allowed:hello from/);
    assert.equal(
      await call("ctxFetch", `http://localhost:${server.port}/`),
      "denied:ERR_PERMISSION_DENIED",
    );
    const to = encodeURIComponent(`http://localhost:${server.port}/`);
    assert.equal(
      await call("ctxFetch", `${base}/redirect?to=${to}`),
      "denied:ERR_PERMISSION_DENIED",
    );
  });

  it("passes declared env variables only", async () => {
    assert.equal(await call("env", "ALLOWED_VAR"), "allowed:visible");
    assert.equal(await call("env", "SECRET_TOKEN"), "denied:ABSENT");
    assert.deepEqual(await call("envKeys"), ["ALLOWED_VAR"]);
    assert.doesNotMatch(await call("environFile") as string, /s3cr3t/);
  });

  it("cannot start a subprocess (child_process, Bun.spawn)", async () => {
    assert.match(await call("subprocess") as string, /^denied:/);
    if (runtime === "bun") assert.match(await call("bunSpawn") as string, /^denied:/);
  });
});
