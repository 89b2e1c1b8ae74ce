// A process-tier plugin that holds a real workload: a live fs.watch on a granted directory and new
// descriptors on its event loop after the sandbox is complete. Node's libuv used to abort here
// (SIGABRT) when the seccomp filter refused the io_uring it had set up before the filter.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginError } from "../../lib/errors.ts";
import { KIND_CALL } from "../../lib/protocol/messages.ts";
import { DEFAULT_SANDBOX_UID } from "../../sandbox/launcher.ts";
import { probeSandbox } from "../../sandbox/probe.ts";
import { fixtures, removeDir, tempDir } from "../_helpers.ts";
import { type Started, startFixture } from "./_start.ts";

const skip = process.platform !== "linux"
  ? "the process tier needs Linux"
  : !probeSandbox(process.getuid?.() ?? -1, DEFAULT_SANDBOX_UID).namespaces
  ? "this machine cannot create the sandbox's namespaces"
  : false;

describe("process tier under a live fs.watch", { skip }, () => {
  let dir: string;
  let s: Started;
  const call = (method: string, ...args: unknown[]) =>
    s.instance.send(KIND_CALL, method, args, 10_000);

  before(async () => {
    dir = tempDir();
    chmodSync(dir, 0o777); // the child runs as its own uid
    s = await startFixture({
      name: "watcher",
      permissions: { filesystem: { write: [dir] } },
    }, { dir: join(fixtures, "watch") });
  });

  after(async () => {
    await s?.instance.terminate(new PluginError("ERR_HOST_CLOSED", "Cannot continue: closed"));
    removeDir(dir);
  });

  it("sees a file the host creates in the granted directory, then keeps answering", async () => {
    assert.equal(await call("watch", dir), "watching");
    writeFileSync(join(dir, "from-host.txt"), "hello");
    const seen = await call("waitFor", "from-host.txt", 5000) as string[];
    assert.ok(seen.includes("from-host.txt"), `events: ${JSON.stringify(seen)}`);
    for (let i = 0; i < 3; i++) assert.equal(await call("ping"), "pong");
  });

  it("sees its own writes on the same watcher", async () => {
    assert.equal(await call("write", join(dir, "own.txt")), "written");
    const seen = await call("waitFor", "own.txt", 5000) as string[];
    assert.ok(seen.includes("own.txt"), `events: ${JSON.stringify(seen)}`);
  });

  it("puts another new descriptor (a UDP socket) on its event loop and keeps answering", async () => {
    assert.equal(await call("udp"), "bound");
    assert.equal(await call("ping"), "pong");
  });

  it("runs under two stacked filters: stage 1's allow-list and stage 2's exec denial", async () => {
    const lines = await call("seccomp") as string[];
    for (const want of ["NoNewPrivs: 1", "Seccomp: 2", "Seccomp_filters: 2"]) {
      assert.ok(lines.includes(want), `${want} in ${JSON.stringify(lines)}`);
    }
    assert.equal(s.enforcement.subprocess.mechanism, "seccomp");
    assert.equal(s.enforcement.subprocess.enforced, true);
  });

  it("closes the watcher, still answers and never failed", async () => {
    assert.equal(await call("unwatch"), "closed");
    writeFileSync(join(dir, "after-close.txt"), "x");
    assert.equal(await call("ping"), "pong");
    assert.deepEqual(s.failures, []);
  });
});
