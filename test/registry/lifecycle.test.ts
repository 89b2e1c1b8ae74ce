import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PluginError } from "../../lib/errors.ts";
import {
  isLegalTransition,
  isPluginState,
  Lifecycle,
  PLUGIN_STATES,
  type PluginState,
  type StateChange,
  TRANSITIONS,
} from "../../lib/lifecycle.ts";

// The table written out independently of lib/lifecycle.ts: a change to TRANSITIONS must be
// deliberate and show up here.
const LEGAL = new Set([
  "available>loading",
  "available>untrusted",
  "loading>active",
  "loading>failed",
  "loading>untrusted",
  "active>inactive",
  "active>unloading",
  "active>failed",
  "inactive>active",
  "inactive>unloading",
  "inactive>failed",
  "failed>loading",
  "failed>unloading",
  "failed>unloaded",
  "unloading>unloaded",
  "unloading>failed",
  "unloaded>loading",
  "untrusted>loading",
  "untrusted>unloaded",
]);

describe("TRANSITIONS", () => {
  it("has an entry for every state and names only states", () => {
    assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...PLUGIN_STATES].sort());
    for (const next of Object.values(TRANSITIONS)) {
      for (const s of next) assert.ok(isPluginState(s), s);
    }
  });

  it("matches the documented table exactly", () => {
    const actual = new Set<string>();
    for (const from of PLUGIN_STATES) {
      for (const to of TRANSITIONS[from]) actual.add(`${from}>${to}`);
    }
    assert.deepEqual([...actual].sort(), [...LEGAL].sort());
  });

  it("never allows a state to move to itself", () => {
    for (const s of PLUGIN_STATES) assert.equal(TRANSITIONS[s].includes(s), false, s);
  });

  it("reaches active only through loading", () => {
    for (const from of PLUGIN_STATES) {
      if (TRANSITIONS[from].includes("active")) {
        assert.ok(from === "loading" || from === "inactive");
      }
    }
  });

  it("lets every state reach unloaded", () => {
    for (const start of PLUGIN_STATES) {
      const seen = new Set<PluginState>([start]);
      const queue: PluginState[] = [start];
      while (queue.length > 0) {
        for (const n of TRANSITIONS[queue.shift() as PluginState]) {
          if (!seen.has(n)) {
            seen.add(n);
            queue.push(n);
          }
        }
      }
      assert.ok(seen.has("unloaded") || start === "unloaded", start);
    }
  });

  it("is frozen", () => {
    assert.ok(Object.isFrozen(TRANSITIONS));
    assert.ok(Object.isFrozen(TRANSITIONS.active));
  });
});

describe("Lifecycle.transition() over all state pairs", () => {
  for (const from of PLUGIN_STATES) {
    for (const to of PLUGIN_STATES) {
      const legal = LEGAL.has(`${from}>${to}`);
      it(`${legal ? "allows" : "refuses"} ${from} -> ${to}`, () => {
        const life = new Lifecycle("p", { initial: from });
        assert.equal(life.canTransition(to), legal);
        assert.equal(isLegalTransition(from, to), legal);
        if (legal) {
          const change = life.transition(to, "test");
          assert.equal(life.state, to);
          assert.equal(change.from, from);
          assert.equal(change.to, to);
          assert.equal(life.history.length, 1);
        } else {
          assert.throws(
            () => life.transition(to, "test"),
            (e: unknown) => e instanceof PluginError && e.code === "ERR_STATE" && e.plugin === "p",
          );
          assert.equal(life.state, from);
          assert.equal(life.history.length, 0);
        }
      });
    }
  }
});

describe("Lifecycle", () => {
  it("starts available and walks a load, pause, reload and unload", () => {
    const life = new Lifecycle("resizer");
    assert.equal(life.state, "available");
    const path: PluginState[] = [
      "loading",
      "active",
      "inactive",
      "active",
      "unloading",
      "unloaded",
      "loading",
      "active",
      "failed",
      "unloaded",
    ];
    for (const s of path) life.transition(s, `to ${s}`);
    assert.equal(life.state, "unloaded");
    assert.deepEqual(life.history.map((h) => h.to), path);
    assert.equal(life.history[0]?.reason, "to loading");
  });

  it("records from, to, reason and the clock's time", () => {
    let t = 1000;
    const life = new Lifecycle("p", { now: () => t });
    assert.equal(life.since, 1000);
    t = 1234;
    life.transition("loading", "load requested");
    assert.deepEqual(life.history, [{
      from: "available",
      to: "loading",
      at: 1234,
      reason: "load requested",
    }]);
    assert.equal(life.since, 1234);
  });

  it("keeps at most historyLimit entries, dropping the oldest", () => {
    const life = new Lifecycle("p", { initial: "active", historyLimit: 3 });
    for (let i = 0; i < 5; i++) life.transition(i % 2 === 0 ? "inactive" : "active", `#${i}`);
    assert.deepEqual(life.history.map((h) => h.reason), ["#2", "#3", "#4"]);
  });

  it("keeps 50 entries by default", () => {
    const life = new Lifecycle("p", { initial: "active" });
    for (let i = 0; i < 120; i++) life.transition(i % 2 === 0 ? "inactive" : "active", `#${i}`);
    assert.equal(life.history.length, 50);
    assert.equal(life.history[0]?.reason, "#70");
  });

  it("keeps no history with historyLimit 0", () => {
    const life = new Lifecycle("p", { historyLimit: 0 });
    life.transition("loading", "x");
    assert.deepEqual(life.history, []);
  });

  it("returns a copy of the history", () => {
    const life = new Lifecycle("p");
    life.transition("loading", "x");
    life.history.pop();
    assert.equal(life.history.length, 1);
  });

  it("calls onStateChange after the state changed, with the plugin name", () => {
    const seen: Array<[StateChange, PluginState]> = [];
    const life: Lifecycle = new Lifecycle("auth", {
      onStateChange: (c) => seen.push([c, life.state]),
    });
    life.transition("loading", "go");
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.[0].plugin, "auth");
    assert.equal(seen[0]?.[0].from, "available");
    assert.equal(seen[0]?.[1], "loading");
  });

  it("does not call onStateChange for a refused transition", () => {
    let calls = 0;
    const life = new Lifecycle("p", { onStateChange: () => calls++ });
    assert.throws(() => life.transition("active", "x"));
    assert.equal(calls, 0);
  });

  it("propagates a throwing onStateChange and keeps the transition", () => {
    const life = new Lifecycle("p", {
      onStateChange: () => {
        throw new Error("listener");
      },
    });
    assert.throws(() => life.transition("loading", "x"), /listener/);
    assert.equal(life.state, "loading");
    assert.equal(life.history.length, 1);
  });

  it("rejects caller bugs with TypeError and RangeError", () => {
    assert.throws(() => new Lifecycle(""), TypeError);
    assert.throws(() => new Lifecycle("p", { initial: "running" as PluginState }), TypeError);
    assert.throws(() => new Lifecycle("p", { historyLimit: -1 }), RangeError);
    assert.throws(() => new Lifecycle("p", { historyLimit: 1.5 }), RangeError);
    const life = new Lifecycle("p");
    assert.throws(() => life.transition("running" as PluginState, "x"), TypeError);
    assert.throws(() => life.canTransition("running" as PluginState), TypeError);
    assert.throws(() => life.transition("loading", undefined as unknown as string), TypeError);
    assert.equal(life.state, "available");
    assert.throws(() => isLegalTransition("x" as PluginState, "active"), TypeError);
  });

  it("isPluginState() accepts only state names", () => {
    for (const s of PLUGIN_STATES) assert.ok(isPluginState(s));
    for (const v of ["", "Active", "running", "toString", "__proto__", 1, null, undefined]) {
      assert.equal(isPluginState(v), false, String(v));
    }
  });
});
