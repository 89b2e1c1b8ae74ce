import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Emitter, HOST_EVENTS, type HostEvents } from "../../lib/events.ts";
import { Lifecycle } from "../../lib/lifecycle.ts";

describe("Emitter", () => {
  it("calls listeners in the order they were added, with the payload", () => {
    const e = new Emitter<{ n: number }>();
    const seen: string[] = [];
    e.on("n", (n) => void seen.push(`a${n}`));
    e.on("n", (n) => void seen.push(`b${n}`));
    assert.equal(e.emit("n", 1), 2);
    assert.deepEqual(seen, ["a1", "b1"]);
  });

  it("returns 0 for an event without listeners", () => {
    assert.equal(new Emitter<{ n: number }>().emit("n", 1), 0);
  });

  it("on() returns an idempotent unsubscribe function", () => {
    const e = new Emitter<{ n: number }>();
    let calls = 0;
    const off = e.on("n", () => void calls++);
    e.emit("n", 1);
    off();
    off();
    e.emit("n", 2);
    assert.equal(calls, 1);
    assert.equal(e.listenerCount("n"), 0);
  });

  it("removes only one registration when the same function was added twice", () => {
    const e = new Emitter<{ n: number }>();
    let calls = 0;
    const fn = () => void calls++;
    const off1 = e.on("n", fn);
    e.on("n", fn);
    off1();
    e.emit("n", 1);
    assert.equal(calls, 1);
  });

  it("once() calls its listener a single time, and can be cancelled before", () => {
    const e = new Emitter<{ n: number }>();
    const seen: number[] = [];
    e.once("n", (n) => void seen.push(n));
    const off = e.once("n", () => void seen.push(-1));
    off();
    e.emit("n", 1);
    e.emit("n", 2);
    assert.deepEqual(seen, [1]);
    assert.equal(e.listenerCount("n"), 0);
  });

  it("applies listeners added or removed during emit from the next emit", () => {
    const e = new Emitter<{ n: number }>();
    const seen: string[] = [];
    let offB = () => {};
    e.on("n", () => {
      seen.push("a");
      e.on("n", () => void seen.push("late"));
      offB();
    });
    offB = e.on("n", () => void seen.push("b"));
    e.emit("n", 1);
    assert.deepEqual(seen, ["a", "b"]);
    e.emit("n", 2);
    assert.deepEqual(seen, ["a", "b", "a", "late"]);
  });

  it("keeps calling listeners after one throws, and reports to onListenerError", () => {
    const reported: Array<[unknown, string]> = [];
    const e = new Emitter<{ n: number }>({
      onListenerError: (err, ev) => reported.push([err, ev]),
    });
    const boom = new Error("boom");
    let after = 0;
    e.on("n", () => {
      throw boom;
    });
    e.on("n", () => void after++);
    assert.equal(e.emit("n", 1), 2);
    assert.equal(after, 1);
    assert.deepEqual(reported, [[boom, "n"]]);
  });

  it("reports a rejected listener promise to onListenerError", async () => {
    const reported: unknown[] = [];
    const e = new Emitter<{ n: number }>({ onListenerError: (err) => reported.push(err) });
    const boom = new Error("async boom");
    e.on("n", async () => {
      await Promise.resolve();
      throw boom;
    });
    e.emit("n", 1);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(reported, [boom]);
  });

  it("without onListenerError, throws after calling every listener", () => {
    const e = new Emitter<{ n: number }>();
    const boom = new Error("one");
    let after = 0;
    e.on("n", () => {
      throw boom;
    });
    e.on("n", () => void after++);
    assert.throws(() => e.emit("n", 1), (err: unknown) => err === boom);
    assert.equal(after, 1);
  });

  it("without onListenerError, throws an AggregateError for several errors", () => {
    const e = new Emitter<{ n: number }>();
    e.on("n", () => {
      throw new Error("1");
    });
    e.on("n", () => {
      throw new Error("2");
    });
    assert.throws(
      () => e.emit("n", 1),
      (err: unknown) => err instanceof AggregateError && err.errors.length === 2,
    );
  });

  it("clear() removes listeners of one event or of all", () => {
    const e = new Emitter<{ a: number; b: number }>();
    e.on("a", () => {});
    e.on("b", () => {});
    e.clear("a");
    assert.equal(e.listenerCount("a"), 0);
    assert.equal(e.listenerCount("b"), 1);
    e.clear();
    assert.equal(e.listenerCount("b"), 0);
  });

  it("rejects a listener that is not a function", () => {
    const e = new Emitter<{ a: number }>();
    assert.throws(() => e.on("a", null as unknown as () => void), TypeError);
    assert.throws(() => e.once("a", 1 as unknown as () => void), TypeError);
  });

  it("carries host events, including state_change from a Lifecycle", () => {
    assert.deepEqual([...HOST_EVENTS].sort(), [
      "after_load",
      "after_unload",
      "before_load",
      "before_unload",
      "error",
      "reload",
      "state_change",
      "unenforced",
      "violation",
    ]);
    const events = new Emitter<HostEvents>();
    const seen: string[] = [];
    events.on("state_change", (c) => void seen.push(`${c.plugin}:${c.from}>${c.to}`));
    const life = new Lifecycle("auth", { onStateChange: (c) => events.emit("state_change", c) });
    life.transition("loading", "go");
    assert.deepEqual(seen, ["auth:available>loading"]);
  });
});
