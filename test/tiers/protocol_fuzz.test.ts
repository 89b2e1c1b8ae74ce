// Everything a plugin posts on its call port is hostile input: the engine fails that plugin with
// ERR_IPC and never throws in the host. Fuzzed through real MessagePorts, then attacked from a
// real worker plugin that reaches its own port.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PluginError, PluginHost } from "../../mod.ts";
import { CallEngine } from "../../lib/tiers/engine.ts";
import type { InstanceFailure, Transport, TransportSink } from "../../lib/tiers/types.ts";
import { KIND_CALL, type Request } from "../../lib/protocol/messages.ts";
import { removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

/** A transport over one end of a real MessageChannel; the test plays the plugin on the other. */
class PortTransport implements Transport {
  readonly port: MessagePort;
  constructor(port: MessagePort) {
    this.port = port;
  }
  connect(sink: TransportSink): void {
    this.port.onmessage = (e: MessageEvent) => sink.reply(e.data);
  }
  post(request: Request): void {
    this.port.postMessage(request);
  }
  close(): Promise<void> {
    this.port.close();
    return Promise.resolve();
  }
  kill(): void {
    this.port.close();
  }
}

// A small deterministic generator, so a failure names a reproducible seed.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function hostile(r: () => number, pendingId: number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const cyclic: Record<string, unknown> = { message: "x" };
  cyclic.self = cyclic;
  const values: unknown[] = [
    null,
    undefined,
    0,
    "",
    "[1,1,2]",
    {},
    [],
    [pendingId],
    [pendingId, 1],
    [pendingId, 1, 2, 3],
    [pendingId, 2, "x"],
    [pendingId, -1, null],
    [pendingId, 0, null],
    [pendingId, 0, "a string, not an error"],
    [pendingId, 0, { message: 42 }],
    [pendingId, 0, { code: "ERR_STATE" }],
    [pendingId, 0, [1, 2]],
    [pendingId, 0, cyclic],
    [0, 1, null],
    [0, 1, { methods: "no" }],
    [0, 0, null],
    [2 ** 53, 1, null],
    [Number.MAX_SAFE_INTEGER, 1, 1],
    [-1, 1, 1],
    [1.5, 1, 1],
    [NaN, 1, 1],
    ["1", 1, 1],
    [pendingId + 1000, 1, 1],
    [pendingId, "1", 1],
    new Uint8Array(16),
    new ArrayBuffer(8),
    new Map([[pendingId, 1]]),
    [pendingId, 1, new ArrayBuffer(4)], // well-formed: a result may be any clonable value
    Object.assign([pendingId, 0], {
      2: {
        message: "m",
        get code() {
          return "ERR_STATE";
        },
      },
    }),
  ];
  const v = pick(values);
  if (r() < 0.2) return [pick(values), pick(values), pick(values)];
  return v;
}

describe("CallEngine against hostile replies on a real MessagePort", () => {
  it("fails the plugin with ERR_IPC (or accepts a well-formed reply) and never throws", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUncaught);
    let protocolFailures = 0;
    let accepted = 0;
    try {
      const r = rng(20261201);
      for (let i = 0; i < 2000; i++) {
        const { port1, port2 } = new MessageChannel();
        const failures: InstanceFailure[] = [];
        const engine = new CallEngine({
          name: "fuzz",
          transport: new PortTransport(port1),
          onFailure: (_i, f) => failures.push(f),
        });
        const ready = engine.start(5000);
        port2.postMessage([0, 1, { methods: ["m"], hooks: [], lifecycle: [] }]);
        await ready;
        const call = engine.send(KIND_CALL, "m", [], 60_000).then(
          (v) => ({ ok: true, v }),
          (e: unknown) => ({ ok: false, e }),
        );
        const value = hostile(r, 1);
        try {
          port2.postMessage(value);
        } catch {
          port2.close();
          await engine.terminate(new PluginError("ERR_HOST_CLOSED", "Cannot continue: done"));
          continue; // not postable at all: nothing reached the host
        }
        // Let the message arrive; then answer properly, which only a live engine may accept.
        await new Promise((res) => setTimeout(res, 0));
        port2.postMessage([1, 1, "proper"]);
        const outcome = await Promise.race([
          call,
          new Promise((res) => setTimeout(() => res({ ok: false, e: "no answer" }), 1000)),
        ]) as { ok: boolean; v?: unknown; e?: unknown };
        if (engine.dead) {
          protocolFailures++;
          assert.equal(failures.length, 1, `seed step ${i}: one failure`);
          assert.equal(failures[0]?.kind, "protocol");
          assert.equal((outcome.e as PluginError).code, "ERR_IPC", `step ${i}`);
        } else {
          accepted++;
          // A well-formed reply settles the call (with a value, or the plugin's own error).
          assert.notEqual(outcome.e, "no answer", `step ${i}`);
          assert.ok(outcome.ok || outcome.e instanceof Error, `step ${i}`);
        }
        port2.close();
        await engine.terminate(new PluginError("ERR_HOST_CLOSED", "Cannot continue: done"));
      }
    } finally {
      process.off("uncaughtException", onUncaught);
      process.off("unhandledRejection", onUncaught);
    }
    assert.deepEqual(uncaught, []);
    assert.ok(protocolFailures > 1000, `${protocolFailures} protocol failures`);
    assert.ok(accepted > 0, `${accepted} well-formed replies accepted`);
  });
});

const ATTACK = `import * as wt from "node:worker_threads";
export default { methods: {
  attack(which) {
    const port = wt.workerData?.call;
    if (port === undefined) return "unreachable";
    const cyclic = { message: "x" }; cyclic.self = cyclic;
    const values = {
      null: null,
      short: [1],
      forged: [1, 0, null],
      forgedAll: null,
      huge: [2 ** 52, 1, 1],
      cyclic: [1, 0, cyclic],
      port: [1, 1, new MessageChannel().port1],
    };
    if (which === "forgedAll") { for (let id = 0; id < 64; id++) port.postMessage([id, 0, null]); }
    else if (which === "port") { const c = new MessageChannel(); port.postMessage([1, 0, c.port1], [c.port1]); }
    else port.postMessage(values[which]);
    return new Promise(() => {});
  },
} };`;

describe("a worker plugin posting on its own call port", () => {
  let root: string;
  let host: PluginHost;
  before(async () => {
    root = tempDir();
    writePlugin(root, "attacker", { entry: "./mod.js", limits: { cpuTimeMs: 3000 } }, {
      "mod.js": ATTACK,
    });
    writePlugin(root, "neighbour", { entry: "./mod.js" }, {
      "mod.js": "export default { methods: { ping: () => 'pong' } };",
    });
    // development: the worker tier on every runtime, whose call port this is (Bun and Deno leave
    // parts of it unenforced, which that policy allows and warns about).
    host = new PluginHost({ pluginDirs: [root], policy: "development" });
    await host.discover();
    await host.load("neighbour");
  });
  after(async () => {
    await host?.close();
    removeDir(root);
  });

  for (const which of ["null", "short", "forged", "forgedAll", "huge", "cyclic", "port"]) {
    it(`fails only the attacker with ERR_IPC (${which}) on ${runtime}`, async () => {
      // A fresh instance each time, so the attack call is call 1 of its engine.
      if (host.get("attacker") !== undefined) await host.unload("attacker").catch(() => {});
      await host.load("attacker");
      const attacker = host.get("attacker");
      assert.ok(attacker);
      const result = await attacker.call("attack", which).then(
        (v) => v,
        (e: PluginError) => e.code,
      );
      if (which === "cyclic") {
        // A well-formed error (a string message) is the plugin's own answer to its own call.
        assert.ok(result === undefined || result === "unreachable", String(result));
        assert.equal(attacker.status, "active");
      } else if (result === "unreachable") {
        // Bun: the call port is not reachable from plugin code; the host must still serve.
        assert.equal(runtime, "bun");
      } else {
        assert.equal(result, "ERR_IPC");
        assert.notEqual(attacker.status, "active");
      }
      assert.equal(await host.get("neighbour")?.call("ping"), "pong");
    });
  }
});

describe("the guarded context endpoint against hostile Comlink traffic", () => {
  it("never throws in the host and still answers a proper call afterwards", async () => {
    const { exposeGuarded } = await import("../../lib/broker/guarded_endpoint.ts");
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUncaught);
    const { port1, port2 } = new MessageChannel();
    let pings = 0;
    const close = exposeGuarded({ ping: () => ++pings, store: { secret: 1 } } as object, port1, {
      plugin: "fuzz",
    });
    const replies = new Map<string, unknown>();
    port2.addEventListener("message", (e: MessageEvent) => {
      const id = (e.data as { id?: unknown } | null)?.id;
      if (typeof id === "string") replies.set(id, e.data);
    });
    port2.start();
    try {
      const r = rng(4242);
      // RELEASE is left out: it ends the plugin's own channel by design (Comlink detaches), which
      // harms only that plugin.
      const types = ["GET", "SET", "APPLY", "CONSTRUCT", "ENDPOINT", "NOPE", 7, null];
      const paths = [[], ["ping"], ["store", "secret"], ["__proto__"], ["ping", "call"], "x", null];
      const args = [undefined, [], [{ type: "RAW", value: 1 }], [{ type: "HANDLER" }], "x", [null]];
      for (let i = 0; i < 2000; i++) {
        const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)] as T;
        const message = r() < 0.1
          ? pick<unknown>([null, 1, "s", [], new Uint8Array(4), { id: {} }])
          : { id: `f${i}`, type: pick(types), path: pick(paths), argumentList: pick(args) };
        port2.postMessage(message);
      }
      await new Promise((res) => setTimeout(res, 50));
      port2.postMessage({ id: "proper", type: "APPLY", path: ["ping"], argumentList: [] });
      for (let i = 0; i < 100 && !replies.has("proper"); i++) {
        await new Promise((res) => setTimeout(res, 10));
      }
      assert.deepEqual(replies.get("proper"), { id: "proper", type: "RAW", value: pings });
      assert.ok(pings >= 1);
    } finally {
      close();
      port2.close();
      process.off("uncaughtException", onUncaught);
      process.off("unhandledRejection", onUncaught);
    }
    assert.deepEqual(uncaught, []);
  });
});
