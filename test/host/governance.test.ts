// Limits, violations, auto-unmount, metrics, Prometheus text and the audit log with real workers.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { PluginError, PluginHost } from "../../mod.ts";
import { removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("resource governance", () => {
  let root: string;
  let host: PluginHost;
  let server: Server;
  let port = 0;
  const audit: Record<string, unknown>[] = [];

  before(async () => {
    root = tempDir();
    server = createServer((_req, res) => setTimeout(() => res.end("slow ok"), 300));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as { port: number }).port;
    writePlugin(root, "flaky", { entry: "./mod.ts", limits: { cpuTimeMs: 100 } }, {
      "mod.ts":
        "export default { methods: { spin() { const end = Date.now() + 300; while (Date.now() < end) {} return 1; }, ok: () => 'ok' } };",
    });
    writePlugin(root, "steady", { entry: "./mod.ts" }, {
      "mod.ts":
        "export default { methods: { ok: () => 'ok', fail() { throw new Error('nope'); } } };",
    });
    writePlugin(root, "fetcher", {
      entry: "./mod.ts",
      permissions: { network: [`127.0.0.1:${port}`] },
      limits: { connections: 1 },
    }, {
      "mod.ts": `let ctx; export default { init(c) { ctx = c; }, methods: {
        async burst(url) {
          const r = await Promise.allSettled([1, 2, 3].map(() => ctx.fetch(url).then((x) => x.text())));
          return r.map((x) => x.status === "fulfilled" ? x.value : x.reason.code);
        } } };`,
    });
    writePlugin(root, "greedy", { entry: "./mod.ts", limits: { heapMb: 4096 } }, {
      "mod.ts": "export default {}",
    });
    host = new PluginHost({
      pluginDirs: [root],
      // development: the worker tier on every runtime, as these tests assume (Bun and Deno
      // leave parts of it unenforced, which that policy allows and warns about).
      policy: "development",
      restartOnFailure: true,
      unmount: { threshold: 3 },
      maxLimits: { heapMb: 256 },
      audit: (line) => audit.push(JSON.parse(line)),
    });
    await host.discover();
  });

  after(async () => {
    await host?.close();
    server?.closeAllConnections?.();
    server?.close();
    removeDir(root);
  });

  it("refuses a manifest limit above the host bound and names the field", async () => {
    await assert.rejects(
      host.load("greedy"),
      (e: unknown) =>
        e instanceof PluginError && e.code === "ERR_LIMITS" &&
        e.issues.some((i) => i.path === "limits.heapMb"),
    );
  });

  it("records a violation per timeout, restarts, and unmounts at the threshold while others keep working", async () => {
    const steady = await host.load("steady");
    const flaky = await host.load("flaky");
    const kinds: string[] = [];
    host.events.on("violation", (v) => {
      kinds.push(`${v.plugin}:${v.kind}`);
    });
    for (let i = 1; i <= 3; i++) {
      await until(() => flaky.status === "active" || flaky.status === "unloaded");
      await assert.rejects(flaky.call("spin"), { code: "ERR_CALL_TIMEOUT" });
      assert.equal(await steady.call("ok"), "ok");
    }
    await until(() => flaky.status === "unloaded");
    assert.deepEqual(kinds.filter((k) => k.startsWith("flaky")), [
      "flaky:timeout",
      "flaky:timeout",
      "flaky:timeout",
    ]);
    assert.equal(flaky.violations().length, 3);
    assert.ok(audit.some((a) => a.event === "unmount" && a.plugin === "flaky"));
    assert.equal(await steady.call("ok"), "ok");
    host.resetViolations("flaky");
    assert.equal(flaky.violations().length, 0);
    assert.equal(flaky.metrics().violationCount, 3, "the total survives a reset");
  });

  it("counts brokered connections and records a violation past the limit", async () => {
    const p = await host.load("fetcher");
    const out = await p.call("burst", `http://127.0.0.1:${port}/`) as string[];
    assert.equal(out.filter((x) => x === "slow ok").length, 1);
    assert.equal(out.filter((x) => x === "ERR_RESOURCE_LIMIT").length, 2);
    assert.ok(p.violations().some((v) => v.type === "connections" && v.limit === 1));
  });

  it("a heap exhaustion is a heap violation on Node", {
    skip: runtime !== "node"
      ? "only Node reports ERR_WORKER_OUT_OF_MEMORY (Deno's nested worker goes silent, Bun has no limit)"
      : false,
  }, async () => {
    const dir = writePlugin(root, "bomb", {
      entry: "./mod.ts",
      limits: { heapMb: 16, cpuTimeMs: 10000 },
    }, {
      "mod.ts":
        "export default { methods: { eat() { const k = []; for (;;) k.push(new Array(1e5).fill(1)); } } };",
    });
    const h = new PluginHost({ unmount: { threshold: 1 } });
    try {
      const p = await h.load(dir);
      await assert.rejects(p.call("eat"), { code: "ERR_PLUGIN_CRASHED" });
      await until(() => p.status === "unloaded");
      assert.equal(p.violations()[0]?.type, "heap");
    } finally {
      await h.close();
    }
  });

  it("exposes per-plugin metrics and a parseable Prometheus text", async () => {
    const steady = host.get("steady");
    assert.ok(steady);
    for (let i = 0; i < 20; i++) await steady.call("ok");
    await assert.rejects(steady.call("fail"));
    const m = steady.metrics();
    assert.ok(m.calls >= 21);
    assert.ok(m.errors >= 1);
    assert.ok(m.p50Ms !== null && m.p50Ms > 0 && m.p99Ms !== null && m.p99Ms >= m.p50Ms);
    const monitor = host.startMonitor({ intervalMs: 60_000 });
    await monitor.sample();
    monitor.stop();
    assert.ok((steady.metrics().heapBytes ?? 0) > 0, "self-reported heap sampled");
    if (process.platform === "linux" && runtime !== "deno") {
      // Node and Bun name the worker's thread, so its CPU time comes from /proc/self/task.
      assert.ok((steady.metrics().cpuTimeMs ?? -1) >= 0);
      assert.equal(steady.metrics().threadCount, 1);
    }
    const text = host.metricsText();
    const calls = new RegExp(`^bulkhead_plugin_calls_total\\{plugin="steady"\\} (\\d+)$`, "m").exec(
      text,
    );
    assert.equal(Number(calls?.[1]), m.calls);
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
      assert.match(line, /^[a-z_:][a-z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/i, line);
    }
  });

  it("writes security events to the audit log without secrets", () => {
    const events = new Set(audit.map((a) => a.event));
    for (const e of ["trust", "load", "violation", "unmount", "crash"]) assert.ok(events.has(e), e);
    assert.ok(audit.every((a) => typeof a.ts === "string" && typeof a.plugin === "string"));
  });
});
