// The child tiers use the engine's deadline queue: 1,000 concurrent calls through the process tier
// arm one timer per distinct timeout, not one per call, and all of them answer.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PluginError } from "../../lib/errors.ts";
import type { CallEngine } from "../../lib/tiers/engine.ts";
import { KIND_CALL } from "../../lib/protocol/messages.ts";
import { type Started, startFixture } from "../process/_start.ts";

const linux = process.platform === "linux" ? false : "the process tier needs Linux";

describe("process tier deadlines", { skip: linux }, () => {
  let s: Started | undefined;
  before(async () => {
    s = await startFixture({ name: "deadlines" });
  });
  after(async () => {
    await s?.instance.terminate(new PluginError("ERR_HOST_CLOSED", "Cannot continue: closed"));
  });

  it("arms one timer per timeout value for 1,000 concurrent calls", async () => {
    const engine = s?.instance as CallEngine;
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 1000; i++) {
      calls.push(engine.send(KIND_CALL, "echo", [i], i % 2 === 0 ? 20_000 : 30_000));
    }
    assert.equal(engine.pendingCount, 1000);
    assert.equal(engine.timers.armed, 2, "two distinct timeouts, two timers");
    const results = await Promise.all(calls);
    assert.deepEqual(results, Array.from({ length: 1000 }, (_, i) => [i]));
    assert.equal(engine.pendingCount, 0);
  });
});
