// What a plugin can make the host keep through ctx is bounded before the host keeps it (issue 18):
// one value's size, the plugin's total in the store, log line length and rate. Worker and process
// tiers, real plugins, small budgets so the test is quick.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import { PluginHost } from "../../mod.ts";
import type { Logger } from "../../mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const TIERS = process.platform === "linux" ? ["worker", "process"] as const : ["worker"] as const;

const PLUGIN = `let ctx;
const codeOf = (p) => p.then(() => "ok", (e) => e.pluginCode ?? e.code ?? String(e));
export default {
  init(c) { ctx = c; },
  methods: {
    put: (key, size) => codeOf(ctx.set(key, "x".repeat(size))),
    flood: async (n) => { for (let i = 0; i < n; i++) ctx.log("info", "line " + i); await ctx.log("info", "last"); return n; },
    long: () => ctx.log("info", "y".repeat(100_000)),
  },
};`;

describe("budgets on what a plugin sends the host", () => {
  let root: string;
  before(() => {
    root = tempDir();
    chmodSync(root, 0o755);
    for (const tier of TIERS) {
      writePlugin(root, `budget-${tier}`, {
        entry: "./mod.js",
        isolation: tier,
        // A flood of IPC messages takes a while on a busy machine: the deadline is not the point.
        limits: { cpuTimeMs: 30_000 },
        permissions: { context: { read: [], write: ["a", "b", "c", "d"] } },
      }, { "mod.js": PLUGIN });
    }
  });
  after(() => removeDir(root));

  for (const tier of TIERS) {
    it(`${tier} tier: value size, context total, log length and rate`, async () => {
      const lines: string[] = [];
      const capture = (m: string) => void lines.push(m);
      const logger: Logger = { debug: capture, info: capture, warn: capture, error: capture };
      const host = new PluginHost({
        pluginDirs: [root],
        logger,
        // The worker tier is asked for explicitly: Bun and Deno leave parts of it unenforced.
        allowUnenforced: true,
        budgets: { contextValueBytes: 1000, contextBytes: 2500, logLinesPerSecond: 20 },
      });
      const violations: string[] = [];
      host.events.on("violation", (v) => {
        violations.push(v.kind);
      });
      try {
        await host.discover();
        const p = await host.load(`budget-${tier}`);
        assert.equal(await p.call("put", "a", 900), "ok");
        assert.equal(await p.call("put", "b", 5000), "ERR_RESOURCE_LIMIT");
        assert.equal(host.context.has("b"), false, "the oversized value was not kept");
        assert.equal(await p.call("put", "b", 900), "ok");
        assert.equal(await p.call("put", "c", 900), "ERR_RESOURCE_LIMIT", "total over 2,500");
        assert.equal(await p.call("put", "a", 100), "ok", "rewriting a key frees its old size");
        assert.equal(await p.call("put", "c", 900), "ok");
        assert.deepEqual(violations, ["context", "context"]);
        assert.equal(p.status, "active");

        lines.length = 0;
        const t0 = Date.now();
        await p.call("flood", 2000);
        const seconds = (Date.now() - t0) / 1000 + 0.5;
        const kept = lines.filter((l) => l.startsWith("line ")).length;
        // A burst of 40, then 20 per second for however long the flood took to arrive.
        const bound = 40 + Math.ceil(20 * seconds);
        assert.ok(kept <= bound && kept < 2000, `${kept} of 2,000 lines kept (bound ${bound})`);
        await new Promise((r) => setTimeout(r, 300));
        await p.call("long");
        assert.ok(lines.some((l) => /^Dropped \d+ log lines/.test(l)), lines.slice(-3).join("\n"));
        const long = lines.find((l) => l.startsWith("yyy"));
        assert.ok(long !== undefined && long.length <= 8193, `${long?.length}`);
      } finally {
        await host.close();
      }
    });
  }
});
