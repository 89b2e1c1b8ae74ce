// An error keeps its own plain-data fields and its cause chain across every tier (issue 14): a
// ZodError's issues, custom fields, causes as Errors. Bounded and total against hostile errors:
// fields named like the error's shape, 10,000 fields, a 1 MB field, a cyclic cause. Worker and
// process tiers with real plugins, and errorFrom() on forged replies.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import { PluginError, PluginHost } from "../../mod.ts";
import { serializeError } from "../../lib/errors.ts";
import { errorFrom } from "../../lib/tiers/_replies.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const TIERS = process.platform === "linux" ? ["worker", "process"] as const : ["worker"] as const;

const ISSUES = [
  { code: "invalid_type", expected: "number", path: ["user", "age"], message: "Expected number" },
  { code: "too_small", minimum: 1, path: ["tags"], message: "Too short", inclusive: true },
];

const PLUGIN = `
const ISSUES = ${JSON.stringify(ISSUES)};
class ZodError extends Error {
  constructor(issues, options) { super("validation failed", options); this.name = "ZodError"; this.issues = issues; }
}
export default { methods: {
  zod() {
    const inner = Object.assign(new Error("inner cause"), { detail: "deep", n: 2 });
    throw Object.assign(new ZodError(ISSUES, { cause: new Error("outer cause", { cause: inner }) }), {
      custom: { a: 1 }, list: [1, "two", null, true],
    });
  },
  shaped() {
    throw Object.assign(new Error("shaped"), {
      pluginCode: "ERR_HOST_CLOSED", plugin: "someone-else", hint: 5, toString: "not a function",
      valueOf: 1, hasOwnProperty: "x", kept: "yes",
    });
  },
  coded() {
    throw Object.assign(new Error("coded"), { code: "ERR_CALL_TIMEOUT", pluginCode: "ERR_STATE", extra: 1 });
  },
  many() {
    const e = new Error("many");
    for (let i = 0; i < 10000; i++) e["f" + i] = i;
    throw e;
  },
  huge() { throw Object.assign(new Error("huge"), { big: "x".repeat(1024 * 1024), small: "ok" }); },
  cyclic() {
    const a = new Error("a"); const b = new Error("b", { cause: a }); a.cause = b;
    const self = { name: "loop" }; self.self = self;
    throw Object.assign(a, { self, when: new Date(0), fn: () => 1, big: 10n });
  },
  notPlain() {
    const e = Object.assign(new Error("not plain"), { nested: { ok: 1, map: new Map(), f() {} } });
    Object.defineProperty(e, "lazy", { get() { throw new Error("getter ran"); }, enumerable: true });
    throw e;
  },
  ping: () => "pong",
} };`;

async function thrown(p: { call(m: string): Promise<unknown> }, method: string) {
  const error = await p.call(method).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof Error, `${method} rejects with an Error`);
  return error as Error & Record<string, unknown>;
}

function chainLength(e: unknown): number {
  let n = 0;
  for (let c = e; c instanceof Error && n < 100; c = c.cause) n++;
  return n;
}

describe("error fields across tiers", () => {
  let root: string;
  before(() => {
    root = tempDir();
    // The process tier's child runs as another uid: the plugin directory must be readable.
    chmodSync(root, 0o755);
    for (const tier of TIERS) {
      writePlugin(root, `errs-${tier}`, {
        entry: "./mod.js",
        isolation: tier,
        limits: { cpuTimeMs: 10_000 },
      }, { "mod.js": PLUGIN });
    }
  });
  after(() => removeDir(root));

  for (const tier of TIERS) {
    describe(`${tier} tier`, () => {
      let host: PluginHost;
      const name = `errs-${tier}`;
      before(async () => {
        // Bun's worker tier enforces no permission: this suite tests errors, not that.
        host = new PluginHost({ pluginDirs: [root], allowUnenforced: true });
        await host.discover();
        await host.load(name);
      });
      after(() => host?.close());

      it("keeps a ZodError's issues, custom fields and cause chain", async () => {
        const e = await thrown(host.get(name)!, "zod");
        assert.equal(e.name, "ZodError");
        assert.equal(e.message, "validation failed");
        assert.deepEqual(e.issues, ISSUES);
        assert.deepEqual(e.custom, { a: 1 });
        assert.deepEqual(e.list, [1, "two", null, true]);
        const outer = e.cause as Error & Record<string, unknown>;
        assert.ok(outer instanceof Error);
        assert.equal(outer.message, "outer cause");
        const inner = outer.cause as Error & Record<string, unknown>;
        assert.ok(inner instanceof Error);
        assert.equal(inner.message, "inner cause");
        assert.equal(inner.detail, "deep");
        assert.equal(inner.n, 2);
        assert.equal(inner.cause, undefined);
      });

      it("never lets a field replace the error's shape or its prototype's methods", async () => {
        const p = host.get(name)!;
        const e = await thrown(p, "shaped");
        assert.ok(!(e instanceof PluginError));
        assert.equal(e.pluginCode, undefined);
        assert.notEqual(e.plugin, "someone-else");
        assert.equal(e.hint, undefined);
        assert.equal(typeof e.toString, "function");
        assert.equal(typeof e.valueOf, "function");
        assert.equal(typeof e.hasOwnProperty, "function");
        assert.equal(String(e), "Error: shaped");
        assert.equal(e.kept, "yes");
        const coded = await thrown(p, "coded") as PluginError & Record<string, unknown>;
        assert.ok(coded instanceof PluginError);
        assert.equal(coded.code, "ERR_PLUGIN_THREW");
        assert.equal(coded.pluginCode, "ERR_CALL_TIMEOUT");
        assert.equal(coded.plugin, name);
        assert.equal(coded.extra, 1);
      });

      it("bounds 10,000 fields, a 1 MB field and a cyclic cause, and keeps the plugin", async () => {
        const p = host.get(name)!;
        const many = await thrown(p, "many");
        const custom = Object.keys(many).filter((k) => /^f\d+$/.test(k));
        assert.ok(custom.length > 0 && custom.length <= 32, `${custom.length} fields`);
        const huge = await thrown(p, "huge");
        assert.equal(huge.big, undefined);
        assert.equal(huge.small, "ok");
        const cyclic = await thrown(p, "cyclic");
        assert.equal(cyclic.message, "a");
        assert.equal((cyclic.cause as Error).message, "b");
        assert.ok(chainLength(cyclic) <= 5, `${chainLength(cyclic)} errors in the chain`);
        assert.deepEqual(cyclic.self, { name: "loop" });
        for (const k of ["when", "fn", "big"]) assert.equal(cyclic[k], undefined, k);
        const notPlain = await thrown(p, "notPlain");
        assert.equal(notPlain.lazy, undefined);
        assert.deepEqual(notPlain.nested, { ok: 1 });
        assert.equal(p.status, "active");
        assert.equal(p.violations().length, 0);
        assert.equal(await p.call("ping"), "pong");
      });
    });
  }
});

describe("errorFrom() on forged replies", () => {
  it("rebuilds fields only as own data properties, skipping the shape and prototype keys", () => {
    const fields = JSON.parse(
      '{"__proto__": {"polluted": 1}, "constructor": 1, "prototype": 2, "code": "ERR_STATE",' +
        '"pluginCode": "ERR_STATE", "name": "X", "message": "Y", "ok": [1]}',
    );
    const e = errorFrom(
      structuredClone({ name: "E", message: "m", code: "ERR_PERMISSION_DENIED", fields }),
      "p",
    ) as PluginError & Record<string, unknown>;
    assert.ok(e instanceof PluginError);
    assert.equal(e.code, "ERR_PLUGIN_THREW");
    assert.equal(e.pluginCode, "ERR_PERMISSION_DENIED");
    assert.equal(e.name, "PluginError");
    assert.equal(e.message, "m");
    assert.equal(Object.getPrototypeOf(e), PluginError.prototype);
    assert.equal(e.polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(e.ok, [1]);
    const d = Object.getOwnPropertyDescriptor(e, "ok");
    assert.ok(d !== undefined && "value" in d && d.enumerable === true);
  });

  it("never throws and stays bounded on cyclic, huge or malformed payloads", () => {
    const cyclic: Record<string, unknown> = { name: "E", message: "loop" };
    cyclic.cause = cyclic;
    cyclic.fields = { self: cyclic };
    const wide: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) wide[`k${i}`] = "v".repeat(100);
    const cases: unknown[] = [
      cyclic,
      { name: "E", message: "wide", fields: wide },
      { name: "E", message: "array fields", fields: [1, 2, 3] },
      { name: "E", message: "bad cause", cause: { message: 5 } },
      {
        name: "E",
        message: "deep",
        fields: { d: JSON.parse("[".repeat(500) + "]".repeat(500)) },
      },
    ];
    for (const c of cases) {
      const e = errorFrom(structuredClone(c), "p");
      assert.ok(e instanceof Error);
      assert.ok(chainLength(e) <= 5);
      assert.ok(Object.keys(e).length <= 40, `${Object.keys(e).length} keys`);
      assert.ok(JSON.stringify(serializeError(e)).length < 64 * 1024);
    }
  });
});
