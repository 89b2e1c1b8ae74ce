// Faults of a process-tier plugin stay in its process: hangs, memory bombs, crashes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PluginError } from "../../lib/errors.ts";
import { KIND_CALL } from "../../lib/protocol/messages.ts";
import { runtime } from "../_helpers.ts";
import { startFixture } from "./_start.ts";

const here = dirname(fileURLToPath(import.meta.url));
const closed = () => new PluginError("ERR_HOST_CLOSED", "Cannot continue: closed");

describe("process tier faults", () => {
  it("SIGKILLs a busy loop past its deadline and the host then exits by itself", async () => {
    const args = runtime === "deno" ? ["run", "-A", "--no-check", "--no-prompt"] : [];
    const child = spawn(process.execPath, [...args, join(here, "_busy_host.ts")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += String(d)));
    child.stderr.on("data", (d) => (err += String(d)));
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve(null);
      }, 15_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 0, `host did not exit cleanly: ${err.slice(-500)}`);
    assert.ok(Date.now() - started < 15_000);
    assert.equal(out.trim(), "ERR_CALL_TIMEOUT failure:timeout dead:true gone:true");
  });

  it("contains a memory bomb: the plugin dies, the host is untouched", async () => {
    const s = await startFixture({ name: "bomb", limits: { heapMb: 64 } });
    try {
      const method = runtime === "bun" ? "allocateBuffers" : "allocate";
      await assert.rejects(s.instance.send(KIND_CALL, method, [], 15_000), (e: PluginError) => {
        assert.ok(["ERR_PLUGIN_CRASHED", "ERR_RESOURCE_LIMIT"].includes(e.code), e.code);
        return true;
      });
      assert.equal(s.instance.dead, true);
      assert.equal(s.failures.length, 1);
      assert.ok(process.memoryUsage().rss < 1024 * 1024 * 1024);
    } finally {
      await s.instance.terminate(closed());
    }
  });

  it("reports a crash as ERR_PLUGIN_CRASHED with failure kind crash", async () => {
    const s = await startFixture({ name: "crash" });
    try {
      await assert.rejects(s.instance.send(KIND_CALL, "crash", [], 5000), {
        code: "ERR_PLUGIN_CRASHED",
      });
      assert.equal(s.failures[0]?.kind, "crash");
      await assert.rejects(s.instance.send(KIND_CALL, "ping", [], 1000), {
        code: "ERR_PLUGIN_CRASHED",
      });
    } finally {
      await s.instance.terminate(closed());
    }
  });
});
