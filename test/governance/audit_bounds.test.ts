// The audit log's bounds: floods of denied requests with huge targets (direct and through a real
// host), the per-plugin rate limit and its summaries, field and entry size caps, failing sink
// functions, and lines torn by a writer that died mid-line.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AUDIT_DEFAULTS, AuditLog } from "../../lib/audit.ts";
import type { PluginError } from "../../lib/errors.ts";
import { PluginHost } from "../../mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";
import { readLines } from "./_audit_helpers.ts";

const MB = 1 << 20;

describe("AuditLog bounds", () => {
  const dir = tempDir("bulkhead-audit-bounds-");
  after(() => removeDir(dir));

  it("10,000 denied requests with 1 MB targets make a bounded file and a suppression summary", () => {
    const path = join(dir, "flood.jsonl");
    const target = `http://evil.example/${"a".repeat(MB)}`;
    const log = new AuditLog(path, { onError: (e) => assert.fail(e) });
    const started = performance.now();
    let written = 0;
    try {
      for (let i = 0; i < 10_000; i++) {
        if (log.write("permission_denied", "greedy", { what: "fetch", target })) written++;
      }
      assert.ok(log.write("permission_denied", "innocent", { what: "fetch", target: "x" }));
      assert.ok(log.write("violation", "greedy", { type: "heap" }), "other kinds are not limited");
    } finally {
      log.close();
    }
    const seconds = (performance.now() - started) / 1000;
    const { burst, perSecond, maxFieldChars } = AUDIT_DEFAULTS;
    assert.ok(
      written >= burst && written <= burst + Math.ceil(perSecond * seconds) + 1,
      `${written}`,
    );
    // Each denial line: ~80 bytes of frame, 1,024 chars of target and the marker.
    const size = statSync(path).size;
    assert.ok(
      size <= (written + 3) * (maxFieldChars + 200),
      `${size} bytes for ${written} entries`,
    );
    assert.ok(size < 256 * 1024, `${size} bytes`);
    const { records, torn } = readLines(path);
    assert.deepEqual(torn, []);
    const denied = records.filter((r) => r.event === "permission_denied" && r.plugin === "greedy");
    assert.equal(denied.length, written);
    for (const r of denied) {
      assert.match(String(r.target), new RegExp(`…\\[${target.length} chars, truncated\\]$`));
      assert.ok(String(r.target).length < maxFieldChars + 40);
    }
    const summary = records.filter((r) => r.event === "audit_suppressed");
    assert.equal(summary.length, 1);
    assert.equal(summary[0]!.plugin, "greedy");
    assert.equal(summary[0]!.kind, "permission_denied");
    assert.equal(summary[0]!.suppressed, 10_000 - written);
  });

  it("a plugin flooding a real host with denied 1 MB fetches leaves a bounded audit file", async () => {
    const root = tempDir();
    const path = join(dir, "host_flood.jsonl");
    writePlugin(root, "flooder", { entry: "./mod.ts", limits: { cpuTimeMs: 60_000 } }, {
      "mod.ts": `let ctx; export default { init(c) { ctx = c; }, methods: {
        async flood(n) {
          const url = "file:///" + "a".repeat(${MB});
          let denied = 0;
          for (let i = 0; i < n; i++) {
            await ctx.fetch(url).catch((e) => { if (e.code === "ERR_PERMISSION_DENIED") denied++; });
          }
          return denied;
        } } };`,
    });
    // development: the worker tier on every runtime, as before auto isolation (Bun and Deno
    // leave parts of it unenforced, which that policy allows and warns about).
    const host = new PluginHost({ audit: path, policy: "development" });
    let seconds = 0;
    try {
      const p = await host.load(join(root, "flooder"));
      const started = performance.now();
      assert.equal(await p.call("flood", 200), 200);
      seconds = (performance.now() - started) / 1000;
    } finally {
      await host.close();
      removeDir(root);
    }
    const { records } = readLines(path);
    const denied = records.filter((r) => r.event === "permission_denied").length;
    const summary = records.filter((r) => r.event === "audit_suppressed");
    const { burst, perSecond, maxFieldChars } = AUDIT_DEFAULTS;
    assert.ok(denied >= burst && denied <= burst + Math.ceil(perSecond * seconds) + 1, `${denied}`);
    assert.ok(summary.length >= 1 && summary.length <= Math.ceil(seconds) + 1);
    // Unbounded, this was 200 MB: now a line per admitted entry and one summary per second.
    const size = statSync(path).size;
    const lines = records.length + 1;
    assert.ok(size <= lines * (maxFieldChars + 200), `${size} bytes for ${lines} lines`);
    assert.ok(size < 1024 * 1024, `${size} bytes for 200 denials of 1 MB in ${seconds} s`);
    const suppressed = summary.reduce((n, r) => n + (r.suppressed as number), 0);
    assert.equal(denied + suppressed, 200, "every denial is written or counted");
  });

  it("refills each plugin's bucket with time and summarises what it refused", () => {
    let t = Date.parse("2025-01-01T00:00:00.000Z");
    const lines: Record<string, unknown>[] = [];
    const log = new AuditLog((l) => lines.push(JSON.parse(l)), {
      now: () => new Date(t),
      rateLimit: { perSecond: 2, burst: 3 },
    });
    const results = [];
    for (let i = 0; i < 5; i++) {
      results.push(log.write("permission_denied", "p", { i }) !== undefined);
    }
    assert.deepEqual(results, [true, true, true, false, false]);
    t += 1000; // two tokens
    assert.ok(log.write("permission_denied", "p", { i: 5 }));
    assert.ok(log.write("permission_denied", "p", { i: 6 }));
    assert.equal(log.write("permission_denied", "p", { i: 7 }), undefined);
    log.close();
    assert.deepEqual(lines.map((l) => l.i ?? l.event), [0, 1, 2, 5, 6, "audit_suppressed"]);
    assert.equal(lines[5]!.suppressed, 3);
    assert.equal(lines[5]!.since, "2025-01-01T00:00:00.000Z");
  });

  it("writes the summary within about a second even when nothing else is written", async () => {
    const lines: Record<string, unknown>[] = [];
    const log = new AuditLog((l) => lines.push(JSON.parse(l)), { rateLimit: { burst: 1 } });
    try {
      for (let i = 0; i < 3; i++) log.write("permission_denied", "p", { i });
      assert.equal(lines.length, 1);
      const end = Date.now() + 10_000; // about a second, unless the machine is very busy
      while (lines.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(lines.map((l) => l.event), ["permission_denied", "audit_suppressed"]);
      assert.equal(lines[1]!.suppressed, 2);
    } finally {
      log.close();
    }
    assert.equal(lines.length, 2, "nothing left to summarise at close");
  });

  it("cuts long strings and keys, keeps surrogate pairs whole, and caps the entry size", () => {
    const lines: string[] = [];
    const log = new AuditLog((l) => lines.push(l), { maxFieldChars: 16, maxEntryBytes: 1024 });
    const rec = log.write("permission_denied", "p", {
      target: "x".repeat(15) + "😀" + "tail",
      ["k".repeat(40)]: 1,
      nested: [{ deep: "y".repeat(100) }],
    })!;
    assert.equal(rec.target, `${"x".repeat(15)}…[21 chars, truncated]`);
    assert.ok(Object.hasOwn(rec, `${"k".repeat(16)}…[40 chars, truncated]`));
    assert.deepEqual(rec.nested, [{ deep: `${"y".repeat(16)}…[100 chars, truncated]` }]);
    const many: Record<string, string> = {};
    for (let i = 0; i < 200; i++) many[`f${i}`] = "z".repeat(16);
    const big = log.write("violation", "p", many)!;
    assert.deepEqual(Object.keys(big), ["ts", "event", "plugin", "truncated"]);
    assert.ok((big.truncated as number) > 1024);
    assert.ok(lines.every((l) => new TextEncoder().encode(l).length <= 1024));
    assert.throws(() => new AuditLog(() => {}, { maxFieldChars: 0 }), RangeError);
    assert.throws(() => new AuditLog(() => {}, { maxEntryBytes: 100 }), RangeError);
    assert.throws(() => new AuditLog(() => {}, { rateLimit: { perSecond: 0 } }), RangeError);
    assert.throws(() => new AuditLog(() => {}).write("a".repeat(65), "p"), TypeError);
  });

  it("writes every entry with rateLimit: false", () => {
    let n = 0;
    const log = new AuditLog(() => void n++, { rateLimit: false });
    for (let i = 0; i < 500; i++) log.write("permission_denied", "p");
    log.close();
    assert.equal(n, 500);
  });

  it("drops and reports a write after close when failures are reported", () => {
    const errors: PluginError[] = [];
    const log = new AuditLog(() => {}, { onError: (e) => errors.push(e) });
    log.close();
    assert.equal(log.write("violation", "p"), undefined);
    assert.equal(log.write("violation", "p"), undefined);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, "ERR_IO");
    assert.match(errors[0]!.message, /^Cannot write audit log sink: the log is closed/);
  });

  it("reports a throwing sink function once and never throws with onError", () => {
    let fail = true;
    const got: string[] = [];
    const errors: PluginError[] = [];
    const log = new AuditLog((l) => {
      if (fail) throw new Error("sink down");
      got.push(l);
    }, { onError: (e) => errors.push(e) });
    assert.equal(log.write("load", "p"), undefined);
    assert.equal(log.write("load", "q"), undefined);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, "ERR_IO");
    assert.match(errors[0]!.message, /^Cannot write audit log sink: sink down/);
    fail = false;
    assert.ok(log.write("unload", "p"));
    assert.deepEqual(got.map((l) => JSON.parse(l).event), ["audit_lost", "unload"]);
    assert.equal(JSON.parse(got[0]!).lost, 2);
    log.close();
    const hostile = new Proxy({}, {
      get() {
        throw new Error("trap");
      },
      getPrototypeOf() {
        throw new Error("trap");
      },
    });
    const odd = new AuditLog(() => {
      throw hostile;
    }, { onError: (e) => errors.push(e) });
    assert.equal(odd.write("load", "p"), undefined, "a sink throwing a hostile value");
    assert.equal(errors.length, 2);
    assert.equal(errors[1]!.code, "ERR_IO");
    odd.close();
  });
});

describe("AuditLog torn lines", () => {
  const dir = tempDir("bulkhead-audit-torn-");
  after(() => removeDir(dir));

  it("starts on a fresh line when the file ends inside a line (a writer died mid-line)", () => {
    const path = join(dir, "torn.jsonl");
    const fragment = `{"ts":"2025-01-01T00:00:00.000Z","event":"permission_denied","target":"${
      "a".repeat(5000)
    }`;
    writeFileSync(path, `{"event":"load"}\n${fragment}`);
    const log = new AuditLog(path);
    try {
      log.write("crash", "p");
      log.write("unload", "p");
    } finally {
      log.close();
    }
    const lines = readFileSync(path, "utf8").split("\n");
    assert.deepEqual(lines.slice(0, 2), ['{"event":"load"}', fragment]);
    assert.deepEqual(lines.slice(2, 4).map((l) => JSON.parse(l).event), ["crash", "unload"]);
    assert.deepEqual(lines.slice(4), [""]);
  });

  it("adds no empty line to a file that ends with a newline, nor to an empty one", () => {
    const clean = join(dir, "clean.jsonl");
    const empty = join(dir, "empty.jsonl");
    writeFileSync(clean, '{"event":"load"}\n');
    writeFileSync(empty, "");
    for (const path of [clean, empty]) {
      const log = new AuditLog(path);
      log.write("unload", "p");
      log.close();
    }
    assert.equal(readFileSync(clean, "utf8").split("\n").length, 3);
    assert.ok(readFileSync(empty, "utf8").startsWith('{"ts":'));
  });
});
