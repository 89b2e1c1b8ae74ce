import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PluginError } from "../../lib/errors.ts";
import { HookPriority, HookRegistry, isHookName, STANDARD_HOOKS } from "../../lib/hooks.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isPluginError(code: string, plugin: string) {
  return (e: unknown) => e instanceof PluginError && e.code === code && e.plugin === plugin;
}

describe("HookRegistry.register()", () => {
  it("orders by priority, then by registration order for ties", async () => {
    const hooks = new HookRegistry();
    const order: string[] = [];
    const add = (plugin: string, priority?: number) =>
      hooks.register("on_request", {
        plugin,
        ...(priority === undefined ? {} : { priority }),
        handler: () => void order.push(plugin),
      });
    add("normal1");
    add("cleanup", HookPriority.CLEANUP);
    add("low", HookPriority.LOW);
    add("crit1", HookPriority.CRITICAL);
    add("normal2", HookPriority.NORMAL);
    add("crit2", 0);
    add("high", HookPriority.HIGH);
    add("normal3", 250);
    add("normal4");
    await hooks.run("on_request", null);
    const expected = [
      "crit1",
      "crit2",
      "high",
      "normal1",
      "normal2",
      "normal4",
      "normal3",
      "low",
      "cleanup",
    ];
    assert.deepEqual(order, expected);
    assert.deepEqual(hooks.handlers("on_request").map((h) => h.plugin), expected);
  });

  it("keeps tie order stable across many same-priority registrations", async () => {
    const hooks = new HookRegistry();
    const order: number[] = [];
    for (let i = 0; i < 100; i++) {
      hooks.register("h", {
        plugin: `p${i}`,
        priority: i % 3 === 0 ? 100 : 200,
        handler: () => void order.push(i),
      });
    }
    await hooks.run("h", null);
    const expected = [
      ...Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 3 === 0),
      ...Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 3 !== 0),
    ];
    assert.deepEqual(order, expected);
  });

  it("exports the priority bands and the standard hook names", () => {
    assert.deepEqual(HookPriority, { CRITICAL: 0, HIGH: 100, NORMAL: 200, LOW: 300, CLEANUP: 400 });
    assert.deepEqual([...STANDARD_HOOKS], [
      "on_request",
      "on_response",
      "on_error",
      "on_startup",
      "on_shutdown",
      "on_plugin_load",
      "on_plugin_unload",
    ]);
    for (const h of STANDARD_HOOKS) assert.ok(isHookName(h));
  });

  it("validates hook names", async () => {
    const hooks = new HookRegistry();
    for (const ok of ["a", "on_request", "my.plugin:event-1", "a".repeat(64)]) {
      assert.ok(isHookName(ok), ok);
      hooks.register(ok, { plugin: "p", handler: () => {} });
    }
    for (const bad of ["", "A", "1abc", "_x", "on request", "a".repeat(65), "é", "on/x"]) {
      assert.equal(isHookName(bad), false, bad);
      assert.throws(() => hooks.register(bad, { plugin: "p", handler: () => {} }), TypeError);
      await assert.rejects(hooks.run(bad, null), TypeError);
      await assert.rejects(hooks.runParallel(bad, null), TypeError);
      await assert.rejects(hooks.runUntil(bad, null), TypeError);
    }
  });

  it("validates plugin, handler and priority", () => {
    const hooks = new HookRegistry();
    const handler = () => {};
    assert.throws(() => hooks.register("h", { plugin: "", handler }), TypeError);
    assert.throws(
      () => hooks.register("h", { plugin: "p", handler: "x" as unknown as () => void }),
      TypeError,
    );
    for (const priority of [-1, 1.5, NaN, Infinity]) {
      assert.throws(() => hooks.register("h", { plugin: "p", handler, priority }), RangeError);
    }
    assert.deepEqual(hooks.handlers("h"), []);
  });

  it("returns an idempotent unregister function", async () => {
    const hooks = new HookRegistry();
    const seen: string[] = [];
    const offA = hooks.register("h", { plugin: "a", handler: () => void seen.push("a") });
    hooks.register("h", { plugin: "b", handler: () => void seen.push("b") });
    offA();
    offA();
    await hooks.run("h", null);
    assert.deepEqual(seen, ["b"]);
  });

  it("applies an unregister done during a run to the rest of that run", async () => {
    const hooks = new HookRegistry();
    const seen: string[] = [];
    let offB = () => {};
    hooks.register("h", { plugin: "a", handler: () => void (seen.push("a"), offB()) });
    offB = hooks.register("h", { plugin: "b", handler: () => void seen.push("b") });
    await hooks.run("h", null);
    assert.deepEqual(seen, ["a"]);
  });
});

describe("HookRegistry.removePlugin()", () => {
  it("removes every handler of the plugin on every hook", async () => {
    const hooks = new HookRegistry();
    const seen: string[] = [];
    for (const hook of ["on_request", "on_response"]) {
      hooks.register(hook, { plugin: "a", handler: () => void seen.push(`a:${hook}`) });
      hooks.register(hook, {
        plugin: "a",
        handler: () => void seen.push(`a2:${hook}`),
        priority: 5,
      });
      hooks.register(hook, { plugin: "b", handler: () => void seen.push(`b:${hook}`) });
    }
    assert.equal(hooks.removePlugin("a"), 4);
    assert.equal(hooks.removePlugin("a"), 0);
    await hooks.run("on_request", null);
    await hooks.runParallel("on_response", null);
    assert.deepEqual(seen, ["b:on_request", "b:on_response"]);
    assert.deepEqual(hooks.handlers("on_request").map((h) => h.plugin), ["b"]);
  });

  it("forgets a pause, so handlers registered again run", async () => {
    const hooks = new HookRegistry();
    hooks.register("h", { plugin: "a", handler: () => "x" });
    hooks.pausePlugin("a");
    hooks.removePlugin("a");
    assert.equal(hooks.isPaused("a"), false);
    hooks.register("h", { plugin: "a", handler: () => "y" });
    assert.equal((await hooks.run("h", "")).value, "y");
  });
});

describe("HookRegistry.pausePlugin()", () => {
  it("skips a paused plugin's handlers in all three run modes until resumed", async () => {
    const hooks = new HookRegistry();
    hooks.register("h", { plugin: "a", handler: (s: string) => s + "a" });
    hooks.register("h", { plugin: "b", handler: (s: string) => s + "b" });
    hooks.pausePlugin("a");
    assert.ok(hooks.isPaused("a"));
    assert.equal((await hooks.run("h", "")).value, "b");
    assert.deepEqual((await hooks.runParallel("h", "")).results, [{ plugin: "b", value: "b" }]);
    assert.equal((await hooks.runUntil("h", "")).plugin, "b");
    hooks.resumePlugin("a");
    assert.equal((await hooks.run("h", "")).value, "ab");
  });

  it("applies to handlers registered while paused", async () => {
    const hooks = new HookRegistry();
    hooks.pausePlugin("late");
    hooks.register("h", { plugin: "late", handler: () => "late" });
    assert.equal((await hooks.run("h", "orig")).value, "orig");
  });
});

describe("HookRegistry.run()", () => {
  it("passes each result to the next handler (waterfall)", async () => {
    const hooks = new HookRegistry();
    hooks.register("h", {
      plugin: "double",
      priority: 1,
      handler: (n: number) => Promise.resolve(n * 2),
    });
    hooks.register("h", { plugin: "inc", priority: 2, handler: (n: number) => n + 1 });
    const r = await hooks.run("h", 5);
    assert.equal(r.value, 11);
    assert.equal(r.errors.length, 0);
  });

  it("passes the value through a handler that returns undefined, but not null", async () => {
    const hooks = new HookRegistry();
    const seen: unknown[] = [];
    hooks.register("h", { plugin: "observer", handler: (v) => Promise.resolve(void seen.push(v)) });
    hooks.register("h", { plugin: "next", handler: (v) => (seen.push(v), null) });
    hooks.register("h", { plugin: "last", handler: (v) => void seen.push(v) });
    const r = await hooks.run("h", "x");
    assert.deepEqual(seen, ["x", "x", null]);
    assert.equal(r.value, null);
  });

  it("gives each handler its hook, plugin and priority", async () => {
    const hooks = new HookRegistry();
    let info: unknown;
    hooks.register("on_error", { plugin: "p", priority: 7, handler: (_d, i) => void (info = i) });
    await hooks.run("on_error", null);
    assert.deepEqual(info, { hook: "on_error", plugin: "p", priority: 7 });
  });

  it("returns the input for a hook without handlers", async () => {
    const hooks = new HookRegistry();
    const data = { a: 1 };
    const r = await hooks.run("unknown_hook", data);
    assert.equal(r.value, data);
    assert.deepEqual(r.errors, []);
  });

  it("skips a throwing or rejecting handler, reporting it with the plugin name", async () => {
    const reported: PluginError[] = [];
    const hooks = new HookRegistry({ onHandlerError: (e) => reported.push(e) });
    const boom = new Error("boom");
    hooks.register("h", {
      plugin: "sync",
      priority: 1,
      handler: () => {
        throw boom;
      },
    });
    hooks.register("h", { plugin: "async", priority: 2, handler: () => Promise.reject("str") });
    hooks.register("h", { plugin: "ok", priority: 3, handler: (n: number) => n + 1 });
    const r = await hooks.run("h", 1);
    assert.equal(r.value, 2);
    assert.equal(r.errors.length, 2);
    assert.ok(isPluginError("ERR_PLUGIN_THREW", "sync")(r.errors[0]));
    assert.equal(r.errors[0]?.cause, boom);
    assert.ok(isPluginError("ERR_PLUGIN_THREW", "async")(r.errors[1]));
    assert.equal(r.errors[1]?.cause, "str");
    assert.deepEqual(reported, r.errors);
  });

  it("keeps the code of a PluginError thrown by a handler", async () => {
    const hooks = new HookRegistry();
    const crash = new PluginError("ERR_PLUGIN_CRASHED", "worker died");
    hooks.register("h", { plugin: "w", handler: () => Promise.reject(crash) });
    const r = await hooks.run("h", null);
    assert.ok(isPluginError("ERR_PLUGIN_CRASHED", "w")(r.errors[0]));
    assert.equal(r.errors[0]?.cause, crash);
  });

  it("aborts on the first error in abort mode, with the plugin name and cause", async () => {
    const hooks = new HookRegistry();
    const boom = new Error("boom");
    let later = 0;
    hooks.register("h", {
      plugin: "bad",
      priority: 1,
      handler: async () => {
        await Promise.resolve();
        throw boom;
      },
    });
    hooks.register("h", { plugin: "later", priority: 2, handler: () => void later++ });
    await assert.rejects(hooks.run("h", null, { onError: "abort" }), (e: unknown) => {
      assert.ok(isPluginError("ERR_PLUGIN_THREW", "bad")(e));
      assert.equal((e as PluginError).cause, boom);
      return true;
    });
    assert.equal(later, 0);
    const strict = new HookRegistry({ onError: "abort" });
    strict.register("h", {
      plugin: "bad",
      handler: () => {
        throw boom;
      },
    });
    await assert.rejects(strict.run("h", null), isPluginError("ERR_PLUGIN_THREW", "bad"));
    const r = await strict.run("h", null, { onError: "skip" });
    assert.equal(r.errors.length, 1);
  });

  it("times out a slow handler with ERR_CALL_TIMEOUT and continues in skip mode", async () => {
    const hooks = new HookRegistry();
    hooks.register("h", {
      plugin: "slow",
      priority: 1,
      handler: () => sleep(200).then(() => "late"),
    });
    hooks.register("h", { plugin: "fast", priority: 2, handler: (s: string) => s + "!" });
    const r = await hooks.run("h", "v", { timeoutMs: 30 });
    assert.equal(r.value, "v!");
    assert.ok(isPluginError("ERR_CALL_TIMEOUT", "slow")(r.errors[0]));
    await assert.rejects(
      hooks.run("h", "v", { timeoutMs: 30, onError: "abort" }),
      isPluginError("ERR_CALL_TIMEOUT", "slow"),
    );
  });

  it("applies the registry's default timeout", async () => {
    const hooks = new HookRegistry({ timeoutMs: 20 });
    hooks.register("h", { plugin: "hang", handler: () => new Promise(() => {}) });
    const r = await hooks.run("h", null);
    assert.ok(isPluginError("ERR_CALL_TIMEOUT", "hang")(r.errors[0]));
  });

  it("does not time out with timeoutMs Infinity", async () => {
    const hooks = new HookRegistry({ timeoutMs: 1 });
    hooks.register("h", { plugin: "p", handler: () => sleep(20).then(() => 1) });
    assert.equal((await hooks.run("h", 0, { timeoutMs: Infinity })).value, 1);
  });

  it("rejects invalid options", async () => {
    assert.throws(() => new HookRegistry({ timeoutMs: 0 }), RangeError);
    assert.throws(() => new HookRegistry({ timeoutMs: NaN }), RangeError);
    assert.throws(() => new HookRegistry({ onError: "ignore" as "skip" }), TypeError);
    const hooks = new HookRegistry();
    hooks.register("h", { plugin: "p", handler: () => {} });
    await assert.rejects(hooks.run("h", null, { timeoutMs: -5 }), RangeError);
    await assert.rejects(hooks.run("h", null, { onError: "x" as "skip" }), TypeError);
  });
});

describe("HookRegistry.runParallel()", () => {
  it("starts every handler at once and collects results in priority order", async () => {
    const hooks = new HookRegistry();
    let running = 0;
    let peak = 0;
    const make = (value: string, ms: number) => async () => {
      running++;
      peak = Math.max(peak, running);
      await sleep(ms);
      running--;
      return value;
    };
    hooks.register("h", { plugin: "slow", priority: 1, handler: make("s", 40) });
    hooks.register("h", { plugin: "fast", priority: 2, handler: make("f", 5) });
    hooks.register("h", { plugin: "none", priority: 3, handler: () => undefined });
    const r = await hooks.runParallel("h", null);
    assert.equal(peak, 2);
    assert.deepEqual(r.results, [
      { plugin: "slow", value: "s" },
      { plugin: "fast", value: "f" },
      { plugin: "none", value: undefined },
    ]);
    assert.equal(r.errors.length, 0);
  });

  it("gives every handler the same input", async () => {
    const hooks = new HookRegistry();
    const seen: unknown[] = [];
    const input = { id: 1 };
    hooks.register("h", { plugin: "a", handler: (d) => (seen.push(d), "changed") });
    hooks.register("h", { plugin: "b", handler: (d) => void seen.push(d) });
    await hooks.runParallel("h", input);
    assert.equal(seen[0], input);
    assert.equal(seen[1], input);
  });

  it("collects errors and timeouts in skip mode", async () => {
    const reported: PluginError[] = [];
    const hooks = new HookRegistry({ onHandlerError: (e) => reported.push(e) });
    hooks.register("h", { plugin: "bad", handler: () => Promise.reject(new Error("x")) });
    hooks.register("h", { plugin: "hang", handler: () => new Promise(() => {}) });
    hooks.register("h", { plugin: "ok", handler: () => 1 });
    const r = await hooks.runParallel("h", null, { timeoutMs: 20 });
    assert.deepEqual(r.results, [{ plugin: "ok", value: 1 }]);
    assert.equal(r.errors.length, 2);
    assert.ok(isPluginError("ERR_PLUGIN_THREW", "bad")(r.errors[0]));
    assert.ok(isPluginError("ERR_CALL_TIMEOUT", "hang")(r.errors[1]));
    assert.deepEqual(reported, r.errors);
  });

  it("rejects with the first error in abort mode and reports later ones", async () => {
    const reported: PluginError[] = [];
    const hooks = new HookRegistry({ onHandlerError: (e) => reported.push(e) });
    hooks.register("h", {
      plugin: "later",
      priority: 1,
      handler: () => sleep(20).then(() => Promise.reject(new Error("2"))),
    });
    hooks.register("h", {
      plugin: "first",
      priority: 2,
      handler: () => Promise.reject(new Error("1")),
    });
    await assert.rejects(
      hooks.runParallel("h", null, { onError: "abort" }),
      isPluginError("ERR_PLUGIN_THREW", "first"),
    );
    await sleep(40);
    assert.equal(reported.length, 1);
    assert.ok(isPluginError("ERR_PLUGIN_THREW", "later")(reported[0]));
  });

  it("returns empty results for a hook without handlers", async () => {
    const r = await new HookRegistry().runParallel("nothing", null);
    assert.deepEqual(r, { results: [], errors: [] });
  });
});

describe("HookRegistry.runUntil()", () => {
  it("returns the first value other than undefined and stops there", async () => {
    const hooks = new HookRegistry();
    const called: string[] = [];
    hooks.register("h", {
      plugin: "pass",
      priority: 1,
      handler: () => Promise.resolve(void called.push("pass")),
    });
    hooks.register("h", { plugin: "zero", priority: 2, handler: () => (called.push("zero"), 0) });
    hooks.register("h", { plugin: "never", priority: 3, handler: () => (called.push("never"), 1) });
    const r = await hooks.runUntil("h", null);
    assert.equal(r.value, 0);
    assert.equal(r.plugin, "zero");
    assert.deepEqual(called, ["pass", "zero"]);
  });

  it("returns undefined when no handler answers", async () => {
    const hooks = new HookRegistry();
    hooks.register("h", { plugin: "a", handler: () => undefined });
    assert.deepEqual(await hooks.runUntil("h", null), {
      value: undefined,
      plugin: undefined,
      errors: [],
    });
  });

  it("skips a failing handler in skip mode and aborts in abort mode", async () => {
    const hooks = new HookRegistry();
    hooks.register("h", {
      plugin: "bad",
      priority: 1,
      handler: () => {
        throw new Error("x");
      },
    });
    hooks.register("h", { plugin: "good", priority: 2, handler: (d: number) => d * 10 });
    const r = await hooks.runUntil("h", 4);
    assert.equal(r.value, 40);
    assert.equal(r.plugin, "good");
    assert.ok(isPluginError("ERR_PLUGIN_THREW", "bad")(r.errors[0]));
    await assert.rejects(
      hooks.runUntil("h", 4, { onError: "abort" }),
      isPluginError("ERR_PLUGIN_THREW", "bad"),
    );
  });
});

describe("HookRegistry.stats()", () => {
  it("counts runs and per-plugin calls, time, errors and timeouts", async () => {
    let t = 0;
    const hooks = new HookRegistry({ now: () => t, timeoutMs: 20 });
    hooks.register("h", { plugin: "a", priority: 1, handler: () => void (t += 5) });
    hooks.register("h", {
      plugin: "b",
      priority: 2,
      handler: () => {
        t += 2;
        throw new Error("x");
      },
    });
    hooks.register("h", { plugin: "hang", priority: 3, handler: () => new Promise(() => {}) });
    await hooks.run("h", null);
    await hooks.runUntil("h", null);
    await hooks.runParallel("h", null);
    const s = hooks.stats("h");
    assert.ok(s);
    assert.equal(s.calls, 3);
    assert.equal(s.errors, 6);
    assert.equal(s.plugins.a?.calls, 3);
    assert.equal(s.plugins.a?.totalMs, 15);
    assert.equal(s.plugins.a?.maxMs, 5);
    assert.equal(s.plugins.b?.errors, 3);
    assert.equal(s.plugins.b?.timeouts, 0);
    assert.equal(s.plugins.hang?.calls, 3);
    assert.equal(s.plugins.hang?.timeouts, 3);
    assert.equal(s.plugins.hang?.errors, 3);
    assert.equal(s.totalMs, 21);
    assert.equal(s.maxMs, 7);
  });

  it("returns a snapshot per hook or for all, undefined for unknown hooks", async () => {
    const hooks = new HookRegistry();
    hooks.register("a", { plugin: "p", handler: () => {} });
    hooks.register("b", { plugin: "p", handler: () => {} });
    await hooks.run("a", null);
    const all = hooks.stats();
    assert.deepEqual(Object.keys(all), ["a", "b"]);
    assert.equal(all.a?.calls, 1);
    assert.equal(all.b?.calls, 0);
    assert.equal(hooks.stats("zzz"), undefined);
    (all.a as { calls: number }).calls = 99;
    assert.equal(hooks.stats("a")?.calls, 1);
    assert.ok((hooks.stats("a")?.plugins.p?.totalMs ?? -1) >= 0);
  });

  it("resetStats() zeroes every counter", async () => {
    const hooks = new HookRegistry();
    hooks.register("a", { plugin: "p", handler: () => {} });
    await hooks.run("a", null);
    hooks.resetStats();
    assert.deepEqual(hooks.stats("a"), {
      calls: 0,
      totalMs: 0,
      maxMs: 0,
      errors: 0,
      plugins: { p: { calls: 0, totalMs: 0, maxMs: 0, errors: 0, timeouts: 0 } },
    });
  });
});

describe("HookRegistry.hooks()", () => {
  it("lists hooks that have handlers", () => {
    const hooks = new HookRegistry();
    const off = hooks.register("a", { plugin: "p", handler: () => {} });
    hooks.register("b", { plugin: "p", handler: () => {} });
    off();
    assert.deepEqual(hooks.hooks(), ["b"]);
  });
});

describe("HookRegistry deadlines", () => {
  it("times out each call against its own timeout when runs use different values", async () => {
    const hooks = new HookRegistry();
    hooks.register("h", { plugin: "hang", handler: () => new Promise(() => {}) });
    const t0 = performance.now();
    const [long, short] = await Promise.all([
      hooks.run("h", null, { timeoutMs: 120 }).then((r) => [r, performance.now() - t0] as const),
      hooks.run("h", null, { timeoutMs: 15 }).then((r) => [r, performance.now() - t0] as const),
    ]);
    assert.ok(isPluginError("ERR_CALL_TIMEOUT", "hang")(long[0].errors[0]));
    assert.ok(isPluginError("ERR_CALL_TIMEOUT", "hang")(short[0].errors[0]));
    assert.ok(short[1] < long[1], "the 15 ms run ends first");
    assert.ok(long[1] >= 110, `the 120 ms run waited ${long[1]} ms`);
  });

  it("times out a slow call while thousands of fast calls complete behind it", async () => {
    const hooks = new HookRegistry({ timeoutMs: 40 });
    let calls = 0;
    hooks.register("slow", { plugin: "hang", handler: () => new Promise(() => {}) });
    hooks.register("fast", { plugin: "quick", handler: () => Promise.resolve(++calls) });
    const slow = hooks.run("slow", null);
    for (let i = 0; i < 3000; i++) await hooks.run("fast", null);
    const fast = await Promise.all(
      Array.from({ length: 2000 }, () => hooks.runParallel("fast", null)),
    );
    assert.equal(calls, 5000);
    assert.ok(fast.every((r) => r.errors.length === 0));
    assert.ok(isPluginError("ERR_CALL_TIMEOUT", "hang")((await slow).errors[0]));
    assert.equal(hooks.stats("fast")?.plugins.quick?.timeouts, 0);
  });

  it("ignores a result or rejection that arrives after the deadline", async () => {
    const hooks = new HookRegistry({ timeoutMs: 10 });
    hooks.register("h", {
      plugin: "lateReject",
      handler: () => sleep(40).then(() => Promise.reject(new Error("late"))),
    });
    hooks.register("h", { plugin: "lateValue", handler: () => sleep(40).then(() => "late") });
    const r = await hooks.run("h", "v");
    assert.equal(r.value, "v");
    assert.deepEqual(r.errors.map((e) => e.code), ["ERR_CALL_TIMEOUT", "ERR_CALL_TIMEOUT"]);
    await sleep(80);
    assert.equal(hooks.stats("h")?.errors, 2);
  });

  it("does not keep the process alive until a long deadline", () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-hooks-"));
    try {
      const script = join(dir, "child.ts");
      const lib = new URL("../../lib/hooks.ts", import.meta.url).href;
      writeFileSync(
        script,
        `import { HookRegistry } from ${JSON.stringify(lib)};\n` +
          `const hooks = new HookRegistry({ timeoutMs: 60000 });\n` +
          `hooks.register("h", { plugin: "p", handler: () => Promise.resolve(1) });\n` +
          `console.log((await hooks.run("h", 0)).value);\n`,
      );
      const args = process.versions.deno !== undefined ? ["run", "-A", script] : [script];
      const t0 = performance.now();
      const child = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 30000 });
      const ms = performance.now() - t0;
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout.trim(), "1");
      assert.ok(ms < 20000, `child took ${ms} ms`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("HookRegistry timing option", () => {
  it("counts calls but measures nothing with timing: false", async () => {
    const hooks = new HookRegistry({ timing: false });
    hooks.register("h", { plugin: "p", handler: () => sleep(5) });
    await hooks.run("h", null);
    await hooks.runParallel("h", null);
    const s = hooks.stats("h");
    assert.equal(s?.calls, 2);
    assert.equal(s?.plugins.p?.calls, 2);
    assert.equal(s?.totalMs, 0);
    assert.equal(s?.plugins.p?.totalMs, 0);
  });

  it("measures real time by default", async () => {
    const hooks = new HookRegistry();
    hooks.register("h", { plugin: "p", handler: () => sleep(15) });
    await hooks.run("h", null);
    assert.ok((hooks.stats("h")?.plugins.p?.totalMs ?? 0) >= 10);
    assert.ok((hooks.stats("h")?.maxMs ?? 0) >= 10);
  });
});
