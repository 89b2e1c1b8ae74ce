// The audit log on a real full disk (a 64 KiB tmpfs): direct writes, a short write that tears a
// line, and a host whose plugins time out and crash while the disk is full.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { statSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AuditLog } from "../../lib/audit.ts";
import { PluginError } from "../../lib/errors.ts";
import { fixtures, removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";
import { fillDisk, memoryLogger, mountTmpfs, readLines, unmountTmpfs } from "./_audit_helpers.ts";

const here = dirname(fileURLToPath(import.meta.url));

// Mounted once at load: `skip` must be known when the cases are declared.
const mount = mountTmpfs(64);
const noMount = "reason" in mount ? mount.reason : false;

describe("AuditLog on a full disk (64 KiB tmpfs)", () => {
  after(() => {
    if ("dir" in mount) unmountTmpfs(mount.dir);
  });

  it("never throws on ENOSPC, reports once per episode, and resumes with an audit_lost record", {
    skip: noMount,
  }, () => {
    const dir = (mount as { dir: string }).dir;
    const path = join(dir, "direct.jsonl");
    const filler = join(dir, "filler");
    const errors: PluginError[] = [];
    const { logs, logger } = memoryLogger();
    const log = new AuditLog(path, { onError: (e) => errors.push(e), logger });
    try {
      assert.ok(log.write("load", "p", { version: "1.0.0" }));
      fillDisk(path, filler);
      for (let i = 0; i < 5; i++) {
        assert.equal(log.write("crash", "p", { i }), undefined, "dropped, not thrown");
      }
      assert.equal(errors.length, 1, "one report for the whole episode");
      const e = errors[0]!;
      assert.ok(e instanceof PluginError);
      assert.equal(e.code, "ERR_IO");
      assert.ok(e.message.startsWith("Cannot write audit log "), e.message);
      assert.match(e.hint, /free disk space/i);
      assert.equal((e.cause as { code?: string }).code, "ENOSPC");
      const reported = logs.filter((l) => l.fields?.code === "ERR_IO");
      assert.deepEqual(reported.map((l) => l.level), ["error"]);

      unlinkSync(filler);
      assert.ok(log.write("unload", "p"), "writes resume once there is room");
      const { records, torn } = readLines(path);
      assert.deepEqual(torn, []);
      assert.deepEqual(records.map((r) => r.event), ["load", "audit_lost", "unload"]);
      assert.equal(records[1]!.lost, 5);
      assert.ok(logs.some((l) => l.level === "warn" && /writable again/.test(l.message)));

      fillDisk(path, filler);
      assert.equal(log.write("crash", "p"), undefined);
      assert.equal(errors.length, 2, "a new episode is reported again");
      unlinkSync(filler);
    } finally {
      log.close();
    }
  });

  it("ends a line torn by a short write before the next entry", { skip: noMount }, () => {
    const dir = (mount as { dir: string }).dir;
    const path = join(dir, "short.jsonl");
    const filler = join(dir, "filler");
    const errors: PluginError[] = [];
    const log = new AuditLog(path, { onError: (e) => errors.push(e) });
    try {
      // 40 bytes of room left: a 2 KiB entry is cut after them, then ENOSPC.
      fillDisk(path, filler, 40);
      assert.equal(log.write("violation", "p", { detail: "x".repeat(1000) }), undefined);
      assert.equal(errors.length, 1);
      assert.equal(statSync(path).size % 4096, 0, "the first 40 bytes of the entry were written");
      unlinkSync(filler);
      assert.ok(log.write("violation", "p", { detail: "after" }));
    } finally {
      log.close();
    }
    const { records, torn } = readLines(path);
    assert.equal(torn.length, 1, "only the torn fragment is not JSON");
    assert.ok(torn[0]!.startsWith('{"ts":'), torn[0]!.slice(0, 80));
    assert.deepEqual(records.map((r) => r.event), ["audit_lost", "violation"]);
    assert.equal(records[1]!.detail, "after");
  });

  it("a host whose plugins time out and crash on a full disk stays up and stops them", {
    skip: noMount,
  }, async () => {
    const dir = (mount as { dir: string }).dir;
    const root = tempDir();
    try {
      const attacker = { "mod.ts": { copy: join(fixtures, "attacker", "mod.ts") } };
      writePlugin(root, "spinner", { entry: "./mod.ts", limits: { cpuTimeMs: 300 } }, attacker);
      writePlugin(root, "crasher", { entry: "./mod.ts" }, attacker);
      writePlugin(root, "late", { entry: "./mod.ts" }, attacker);
      const auditPath = join(dir, "host.jsonl");
      const args = runtime === "deno"
        ? ["run", "-A", "--unstable-worker-options", "--no-prompt", "--no-check"]
        : [];
      const child = spawn(process.execPath, [
        ...args,
        join(here, "_audit_host.ts"),
        root,
        auditPath,
        join(dir, "filler"),
      ], { cwd: join(here, "..", ".."), stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => (out += String(d)));
      child.stderr.on("data", (d) => (err += String(d)));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve(null);
        }, 60_000);
        child.on("exit", (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      // Exiting by itself proves the endless loop's worker was terminated (Node and Bun).
      assert.equal(code, 0, `host did not exit by itself: ${out.slice(-800)} ${err.slice(-800)}`);
      const r = JSON.parse(out.trim().split("\n").pop()!);
      assert.deepEqual(r.rejections, [], "no unhandled rejection");
      assert.deepEqual(r.uncaught, [], "no uncaught exception");
      assert.deepEqual(r.steps, {
        timeout: "ERR_CALL_TIMEOUT",
        timeoutHandled: true,
        crash: "ERR_PLUGIN_CRASHED",
        crashHandled: true,
        lateWhileFull: "active",
        unloaded: true,
      });
      const io = r.logs.filter((l: { code?: string }) => l.code === "ERR_IO");
      assert.equal(io.length, 1, "the host's logger got one report for the episode");
      assert.equal(io[0].level, "error");
      assert.match(io[0].message, /^Cannot write audit log .*(ENOSPC|no space left)/i);
      const ioEvents = r.errorEvents.filter((e: { code?: string }) => e.code === "ERR_IO");
      assert.equal(ioEvents.length, 1, "one host `error` event");
      assert.equal(ioEvents[0].plugin, null);
      assert.match(ioEvents[0].hint, /free disk space/i);
      const { records } = readLines(auditPath);
      const events = records.map((x) => `${x.event}:${x.plugin}`);
      const lost = events.indexOf("audit_lost:");
      assert.ok(lost > 0, events.join(" "));
      assert.ok((records[lost]!.lost as number) >= 4, "crash, violations and the late load");
      assert.ok(events.indexOf("unload:late") > lost, "auditing resumed after space was freed");
    } finally {
      removeDir(root);
    }
  });
});
