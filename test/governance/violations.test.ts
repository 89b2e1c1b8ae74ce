import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_UNMOUNT_BEHAVIOR,
  ViolationTracker,
  type ViolationType,
} from "../../lib/violations.ts";

describe("ViolationTracker", () => {
  it("defaults to autoUnmount, logging and a threshold of 10", () => {
    const t = new ViolationTracker("p");
    assert.deepEqual(t.behavior, { autoUnmount: true, logViolations: true, threshold: 10 });
    assert.deepEqual(DEFAULT_UNMOUNT_BEHAVIOR, t.behavior);
  });

  it("returns true exactly once when the count reaches the threshold", () => {
    const t = new ViolationTracker("p", { threshold: 3 });
    const results = [];
    for (let i = 0; i < 6; i++) results.push(t.record({ type: "cpu", used: 1200, limit: 1000 }));
    assert.deepEqual(results, [false, false, true, false, false, false]);
    assert.equal(t.count, 6);
    assert.ok(t.shouldUnmount);
  });

  it("fires again after reset(), and total survives the reset", () => {
    const t = new ViolationTracker("p", { threshold: 2 });
    t.record({ type: "heap", used: 60, limit: 50 });
    assert.equal(t.record({ type: "heap", used: 60, limit: 50 }), true);
    t.reset();
    assert.equal(t.count, 0);
    assert.deepEqual(t.list(), []);
    assert.equal(t.shouldUnmount, false);
    assert.equal(t.record({ type: "fds", used: 40, limit: 32 }), false);
    assert.equal(t.record({ type: "fds", used: 40, limit: 32 }), true);
    assert.equal(t.total, 4);
  });

  it("keeps only the last N violations but counts all, oldest first", () => {
    const t = new ViolationTracker("p", { keep: 3, threshold: 100 });
    for (let i = 0; i < 7; i++) t.record({ type: "timeout", used: i, limit: 0, at: 1000 + i });
    assert.equal(t.count, 7);
    assert.deepEqual(t.list().map((v) => v.used), [4, 5, 6]);
    assert.deepEqual(t.list()[0], { type: "timeout", used: 4, limit: 0, at: 1004 });
    t.list()[0]!.used = 99;
    assert.equal(t.list()[0]!.used, 4);
  });

  it("counts per type and stamps `at` with now by default", () => {
    const t = new ViolationTracker("p");
    const before = Date.now();
    t.record({ type: "crash", used: 0, limit: 0 });
    t.record({ type: "threads", used: 9, limit: 4 });
    t.record({ type: "threads", used: 9, limit: 4 });
    const counts = t.countsByType();
    assert.equal(counts.threads, 2);
    assert.equal(counts.crash, 1);
    assert.equal(counts.connections, 0);
    assert.ok(t.list()[0]!.at >= before && t.list()[0]!.at <= Date.now());
  });

  it("logs only when logViolations is on; autoUnmount false never asks to unmount", () => {
    const logged: Record<string, unknown>[] = [];
    const logger = { warn: (_m: string, d: Record<string, unknown>) => logged.push(d) };
    const on = new ViolationTracker("p", { logger, threshold: 1, autoUnmount: false });
    assert.equal(on.record({ type: "connections", used: 11, limit: 10 }), true);
    assert.equal(on.shouldUnmount, false);
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.type, "connections");
    const off = new ViolationTracker("p", { logger, logViolations: false });
    off.record({ type: "connections", used: 11, limit: 10 });
    assert.equal(logged.length, 1);
  });

  it("rejects unknown types, non-finite numbers and bad options", () => {
    const t = new ViolationTracker("p");
    assert.throws(() => t.record({ type: "gpu" as ViolationType, used: 1, limit: 1 }), TypeError);
    assert.throws(() => t.record({ type: "cpu", used: NaN, limit: 1 }), TypeError);
    assert.equal(t.count, 0);
    assert.throws(() => new ViolationTracker("p", { threshold: 0 }), RangeError);
    assert.throws(() => new ViolationTracker("p", { keep: 1.5 }), RangeError);
  });
});
