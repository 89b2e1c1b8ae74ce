import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PluginError } from "../../lib/errors.ts";
import {
  checkLimits,
  DEFAULT_LIMITS,
  LIMIT_FIELDS,
  type Limits,
  resolveLimits,
  STRICT_LIMITS,
  tightenLimits,
} from "../../lib/limits.ts";

function thrown(fn: () => unknown): PluginError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PluginError, `expected PluginError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected a throw");
}

describe("DEFAULT_LIMITS", () => {
  it("has the documented values and is frozen", () => {
    assert.deepEqual(DEFAULT_LIMITS, {
      heapMb: 50,
      cpuTimeMs: 1000,
      threads: 4,
      fileDescriptors: 32,
      connections: 10,
    });
    assert.ok(Object.isFrozen(DEFAULT_LIMITS));
    assert.deepEqual([...LIMIT_FIELDS].sort(), Object.keys(DEFAULT_LIMITS).sort());
  });
});

describe("checkLimits()", () => {
  it("accepts requests at or below the bound and unbounded fields", () => {
    checkLimits({ heapMb: 128, threads: 2, connections: 1000 }, { heapMb: 128, threads: 8 }, "p");
    checkLimits({}, { heapMb: 1 }, "p");
  });

  it("names every field over the bound in issues, and never clamps", () => {
    const requested: Partial<Limits> = { heapMb: 512, cpuTimeMs: 10, threads: 64, connections: 11 };
    const copy = { ...requested };
    const e = thrown(() =>
      checkLimits(requested, { heapMb: 128, cpuTimeMs: 100, threads: 8, connections: 10 }, "rz")
    );
    assert.equal(e.code, "ERR_LIMITS");
    assert.equal(e.plugin, "rz");
    assert.deepEqual(e.issues.map((i) => i.path), [
      "limits.heapMb",
      "limits.threads",
      "limits.connections",
    ]);
    const heap = e.issues[0]!.message;
    assert.ok(heap.includes("512") && heap.includes("128"), heap);
    assert.deepEqual(requested, copy);
  });

  it("reports malformed requested values as ERR_MANIFEST_INVALID", () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, "10", null]) {
      const e = thrown(() =>
        checkLimits({ heapMb: bad } as unknown as Partial<Limits>, { heapMb: 100 }, "p")
      );
      assert.equal(e.code, "ERR_MANIFEST_INVALID", String(bad));
      assert.equal(e.issues[0]!.path, "limits.heapMb");
    }
    const unknown = thrown(() => checkLimits({ gpus: 1 } as unknown as Partial<Limits>, {}, "p"));
    assert.equal(unknown.code, "ERR_MANIFEST_INVALID");
    assert.equal(unknown.issues[0]!.path, "limits.gpus");
    const notObject = thrown(() => checkLimits([] as unknown as Partial<Limits>, {}, "p"));
    assert.equal(notObject.code, "ERR_MANIFEST_INVALID");
  });

  it("throws TypeError/RangeError for a malformed host bound", () => {
    assert.throws(() => checkLimits({}, { heapMb: -1 }, "p"), RangeError);
    assert.throws(() => checkLimits({}, { gpus: 1 } as unknown as Partial<Limits>, "p"), TypeError);
  });
});

describe("resolveLimits()", () => {
  it("fills missing fields with min(default, bound)", () => {
    assert.deepEqual(resolveLimits({ heapMb: 64 }, { heapMb: 128, threads: 2 }, "p"), {
      heapMb: 64,
      cpuTimeMs: 1000,
      threads: 2,
      fileDescriptors: 32,
      connections: 10,
    });
  });

  it("still refuses requests over the bound", () => {
    assert.equal(
      thrown(() => resolveLimits({ threads: 5 }, { threads: 4 }, "p")).code,
      "ERR_LIMITS",
    );
  });
});

describe("tightenLimits()", () => {
  it("scales by a factor, floors, keeps at least 1", () => {
    assert.deepEqual(tightenLimits(DEFAULT_LIMITS, 0.5), {
      heapMb: 25,
      cpuTimeMs: 500,
      threads: 2,
      fileDescriptors: 16,
      connections: 5,
    });
    assert.equal(tightenLimits({ ...DEFAULT_LIMITS, threads: 1 }, 0.1).threads, 1);
  });

  it("caps at the strict preset and never loosens", () => {
    assert.deepEqual(tightenLimits(DEFAULT_LIMITS, "strict"), STRICT_LIMITS);
    const small = { heapMb: 8, cpuTimeMs: 50, threads: 1, fileDescriptors: 4, connections: 0 + 1 };
    assert.deepEqual(tightenLimits(small, "strict"), small);
    assert.deepEqual(tightenLimits(DEFAULT_LIMITS, { heapMb: 10 }), {
      ...DEFAULT_LIMITS,
      heapMb: 10,
    });
    for (const f of LIMIT_FIELDS) {
      assert.ok(tightenLimits(DEFAULT_LIMITS, 1)[f] <= DEFAULT_LIMITS[f]);
    }
  });

  it("rejects factors outside (0, 1] and unknown presets", () => {
    assert.throws(() => tightenLimits(DEFAULT_LIMITS, 2), RangeError);
    assert.throws(() => tightenLimits(DEFAULT_LIMITS, 0), RangeError);
    assert.throws(() => tightenLimits(DEFAULT_LIMITS, "lax" as "strict"), TypeError);
  });
});
