import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PluginError } from "../../lib/errors.ts";
import {
  type Catalog,
  type CatalogEntry,
  checkEngine,
  dependentsOf,
  resolveLoadOrder,
  unloadOrder,
} from "../../lib/dependencies.ts";

function catalogOf(entries: Record<string, CatalogEntry>): Catalog {
  return new Map(Object.entries(entries));
}

function code(expected: string, plugin?: string) {
  return (e: unknown) =>
    e instanceof PluginError && e.code === expected &&
    (plugin === undefined || e.plugin === plugin);
}

/** Asserts that every plugin comes after all its present dependencies. */
function assertTopological(order: string[], catalog: Catalog): void {
  const at = new Map(order.map((n, i) => [n, i]));
  assert.equal(at.size, order.length, "no duplicates");
  for (const name of order) {
    const entry = catalog.get(name) as CatalogEntry;
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      if (at.has(dep)) {
        assert.ok((at.get(dep) as number) < (at.get(name) as number), `${dep} before ${name}`);
      }
    }
  }
}

// A deterministic pseudo-random generator, so the big graph is the same on every run.
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe("checkEngine()", () => {
  it("accepts a host version inside the range", () => {
    checkEngine("^1.0.0", "1.4.0");
    checkEngine(">=1.2.0 <3", "2.9.9");
    checkEngine("1.x || 2.x", "2.0.0");
    checkEngine("*", "0.1.0");
  });

  it("throws ERR_ENGINE outside the range, naming the plugin", () => {
    assert.throws(() => checkEngine("^2.0.0", "1.4.0", { plugin: "x" }), code("ERR_ENGINE", "x"));
    assert.throws(() => checkEngine("<1.0.0", "1.0.0"), code("ERR_ENGINE"));
    assert.throws(() => checkEngine("^0.1.0", "0.2.0"), code("ERR_ENGINE"));
  });

  it("follows npm prerelease rules", () => {
    assert.throws(() => checkEngine("^1.0.0", "1.5.0-beta.1"), code("ERR_ENGINE"));
    checkEngine("^1.5.0-beta.0", "1.5.0-beta.1");
  });

  it("reports an invalid range as ERR_MANIFEST_INVALID and an invalid host version as TypeError", () => {
    assert.throws(
      () => checkEngine("not a range", "1.0.0", { plugin: "x" }),
      code("ERR_MANIFEST_INVALID", "x"),
    );
    assert.throws(() => checkEngine("^1.0.0", "one"), TypeError);
    assert.throws(() => checkEngine("^1.0.0", undefined as unknown as string), TypeError);
  });
});

describe("resolveLoadOrder()", () => {
  it("puts dependencies first, transitively, each once", () => {
    const catalog = catalogOf({
      app: { version: "1.0.0", dependencies: { http: "^2.0.0", log: "1.x" } },
      http: { version: "2.3.0", dependencies: { log: ">=1.0.0" } },
      log: { version: "1.9.0" },
      unrelated: { version: "1.0.0" },
    });
    assert.deepEqual(resolveLoadOrder(["app"], catalog), ["log", "http", "app"]);
  });

  it("is deterministic: target order, then declaration order", () => {
    const catalog = catalogOf({
      c: { version: "1.0.0" },
      b: { version: "1.0.0" },
      a: { version: "1.0.0", dependencies: { c: "*", b: "*" } },
      z: { version: "1.0.0" },
    });
    assert.deepEqual(resolveLoadOrder(["z", "a"], catalog), ["z", "c", "b", "a"]);
    assert.deepEqual(resolveLoadOrder(["a", "z"], catalog), ["c", "b", "a", "z"]);
    const reordered = new Map([...catalog].reverse());
    assert.deepEqual(resolveLoadOrder(["a", "z"], reordered), ["c", "b", "a", "z"]);
    assert.deepEqual(resolveLoadOrder(["a", "a", "c"], catalog), ["c", "b", "a"]);
  });

  it("returns an empty order for no targets", () => {
    assert.deepEqual(resolveLoadOrder([], catalogOf({})), []);
  });

  it("throws ERR_PLUGIN_NOT_FOUND for an unknown target", () => {
    assert.throws(
      () => resolveLoadOrder(["ghost"], catalogOf({})),
      code("ERR_PLUGIN_NOT_FOUND", "ghost"),
    );
  });

  it("throws ERR_DEPENDENCY for a missing required dependency, naming dependent and range", () => {
    const catalog = catalogOf({ a: { version: "1.0.0", dependencies: { b: "^2.0.0" } } });
    assert.throws(() => resolveLoadOrder(["a"], catalog), (e: unknown) => {
      assert.ok(code("ERR_DEPENDENCY", "a")(e));
      const err = e as PluginError;
      assert.ok(
        err.message.includes('"a"') && err.message.includes('"b"') &&
          err.message.includes("^2.0.0"),
      );
      assert.deepEqual(err.issues.map((i) => i.path), ["a.dependencies.b"]);
      return true;
    });
  });

  it("throws ERR_DEPENDENCY when the available version is out of range", () => {
    const catalog = catalogOf({
      a: { version: "1.0.0", dependencies: { b: "^2.0.0" } },
      b: { version: "1.4.0" },
    });
    assert.throws(() => resolveLoadOrder(["a"], catalog), (e: unknown) => {
      assert.ok(code("ERR_DEPENDENCY", "a")(e));
      const msg = (e as PluginError).message;
      assert.ok(msg.includes("^2.0.0") && msg.includes("1.4.0"), msg);
      return true;
    });
  });

  it("lists every missing and out-of-range dependency in issues", () => {
    const catalog = catalogOf({
      a: { version: "1.0.0", dependencies: { b: "^2.0.0", gone: "1.x" } },
      b: { version: "2.0.0", dependencies: { c: "~1.1.0" } },
      c: { version: "1.2.0" },
    });
    assert.throws(() => resolveLoadOrder(["a"], catalog), (e: unknown) => {
      assert.ok(code("ERR_DEPENDENCY")(e));
      assert.deepEqual(
        (e as PluginError).issues.map((i) => i.path).sort(),
        ["a.dependencies.gone", "b.dependencies.c"],
      );
      return true;
    });
  });

  it("throws ERR_DEPENDENCY with the cycle path", () => {
    const catalog = catalogOf({
      a: { version: "1.0.0", dependencies: { b: "*" } },
      b: { version: "1.0.0", dependencies: { c: "*" } },
      c: { version: "1.0.0", dependencies: { a: "*" } },
    });
    assert.throws(() => resolveLoadOrder(["a"], catalog), (e: unknown) => {
      assert.ok(code("ERR_DEPENDENCY")(e));
      assert.ok(
        (e as PluginError).message.includes("a -> b -> c -> a"),
        (e as PluginError).message,
      );
      return true;
    });
    assert.throws(() => resolveLoadOrder(["b"], catalog), /b -> c -> a -> b/);
  });

  it("reports a cycle reached through a dependency, and a self-dependency", () => {
    const catalog = catalogOf({
      app: { version: "1.0.0", dependencies: { x: "*" } },
      x: { version: "1.0.0", dependencies: { y: "*" } },
      y: { version: "1.0.0", dependencies: { x: "*" } },
      self: { version: "1.0.0", dependencies: { self: "*" } },
    });
    assert.throws(() => resolveLoadOrder(["app"], catalog), /x -> y -> x/);
    assert.throws(() => resolveLoadOrder(["self"], catalog), /self -> self/);
  });

  it("accepts a diamond (shared dependency is not a cycle)", () => {
    const catalog = catalogOf({
      top: { version: "1.0.0", dependencies: { l: "*", r: "*" } },
      l: { version: "1.0.0", dependencies: { base: "*" } },
      r: { version: "1.0.0", dependencies: { base: "*" } },
      base: { version: "1.0.0" },
    });
    assert.deepEqual(resolveLoadOrder(["top"], catalog), ["base", "l", "r", "top"]);
  });

  it("loads a present, satisfied optional dependency first", () => {
    const catalog = catalogOf({
      a: { version: "1.0.0", optionalDependencies: { cache: "^1.0.0" } },
      cache: { version: "1.2.0" },
    });
    assert.deepEqual(resolveLoadOrder(["a"], catalog), ["cache", "a"]);
  });

  it("ignores an absent optional dependency", () => {
    const catalog = catalogOf({
      a: { version: "1.0.0", optionalDependencies: { cache: "^1.0.0" } },
    });
    assert.deepEqual(resolveLoadOrder(["a"], catalog), ["a"]);
  });

  it("throws ERR_DEPENDENCY for a present optional dependency out of range", () => {
    const catalog = catalogOf({
      a: { version: "1.0.0", optionalDependencies: { cache: "^2.0.0" } },
      cache: { version: "1.2.0" },
    });
    assert.throws(() => resolveLoadOrder(["a"], catalog), (e: unknown) => {
      assert.ok(code("ERR_DEPENDENCY", "a")(e));
      assert.deepEqual((e as PluginError).issues.map((i) => i.path), [
        "a.optionalDependencies.cache",
      ]);
      return true;
    });
  });

  it("lets a required range win over an optional one for the same plugin", () => {
    const catalog = catalogOf({
      a: { version: "1.0.0", dependencies: { b: "^1.0.0" }, optionalDependencies: { b: "^9.0.0" } },
      b: { version: "1.0.0" },
    });
    assert.deepEqual(resolveLoadOrder(["a"], catalog), ["b", "a"]);
  });

  it("reports invalid versions and ranges as ERR_MANIFEST_INVALID", () => {
    assert.throws(
      () =>
        resolveLoadOrder(
          ["a"],
          catalogOf({
            a: { version: "1.0.0", dependencies: { b: "not a range" } },
            b: { version: "1.0.0" },
          }),
        ),
      code("ERR_MANIFEST_INVALID", "a"),
    );
    assert.throws(
      () =>
        resolveLoadOrder(
          ["a"],
          catalogOf({ a: { version: "1.0.0", dependencies: { b: "*" } }, b: { version: "x" } }),
        ),
      code("ERR_MANIFEST_INVALID", "b"),
    );
  });

  it("resolves a 1,000-plugin random DAG in topological order", () => {
    const rand = lcg(42);
    const entries: Record<string, CatalogEntry> = {};
    const names: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const name = `p${i}`;
      const dependencies: Record<string, string> = {};
      // Edges only to lower indices: a DAG by construction.
      for (let k = 0; k < 4 && i > 0; k++) {
        const j = Math.floor(rand() * i);
        const major = (j % 5) + 1;
        dependencies[`p${j}`] = rand() < 0.5 ? `^${major}.0.0` : `>=${major}.0.0 <${major + 1}.0.0`;
      }
      entries[name] = { version: `${(i % 5) + 1}.${i % 7}.${i % 3}`, dependencies };
      names.push(name);
    }
    const catalog = catalogOf(entries);
    const t0 = performance.now();
    const order = resolveLoadOrder([...names].reverse(), catalog);
    const ms = performance.now() - t0;
    assert.equal(order.length, 1000);
    assertTopological(order, catalog);
    assert.deepEqual(resolveLoadOrder([...names].reverse(), catalog), order);
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it("handles a 5,000-deep chain without recursion limits", () => {
    const entries: Record<string, CatalogEntry> = { n0: { version: "1.0.0" } };
    for (let i = 1; i < 5000; i++) {
      entries[`n${i}`] = { version: "1.0.0", dependencies: { [`n${i - 1}`]: "^1.0.0" } };
    }
    const order = resolveLoadOrder(["n4999"], catalogOf(entries));
    assert.equal(order.length, 5000);
    assert.equal(order[0], "n0");
    assert.equal(order[4999], "n4999");
  });
});

describe("dependentsOf()", () => {
  const catalog = catalogOf({
    a: { version: "1.0.0", dependencies: { b: "*" } },
    b: { version: "1.0.0", dependencies: { c: "*" } },
    c: { version: "1.0.0" },
    d: { version: "1.0.0", optionalDependencies: { c: "*" } },
    e: { version: "1.0.0" },
  });

  it("returns transitive dependents, dependents before what they depend on", () => {
    const deps = dependentsOf("c", catalog);
    assert.deepEqual([...deps].sort(), ["a", "b", "d"]);
    assert.ok(deps.indexOf("a") < deps.indexOf("b"));
  });

  it("returns nothing for a leaf or an unknown plugin", () => {
    assert.deepEqual(dependentsOf("a", catalog), []);
    assert.deepEqual(dependentsOf("e", catalog), []);
    assert.deepEqual(dependentsOf("ghost", catalog), []);
  });

  it("does not include the plugin itself when it sits in a cycle", () => {
    const cyclic = catalogOf({
      a: { version: "1.0.0", dependencies: { b: "*" } },
      b: { version: "1.0.0", dependencies: { a: "*" } },
    });
    assert.deepEqual(dependentsOf("a", cyclic), ["b"]);
  });
});

describe("unloadOrder()", () => {
  it("is the reverse of a load order over the given names", () => {
    const catalog = catalogOf({
      app: { version: "1.0.0", dependencies: { http: "*", log: "*" } },
      http: { version: "1.0.0", dependencies: { log: "*" } },
      log: { version: "1.0.0" },
    });
    assert.deepEqual(unloadOrder(["log", "http", "app"], catalog), ["app", "http", "log"]);
    assert.deepEqual(unloadOrder(["app", "log"], catalog), ["app", "log"]);
    const load = resolveLoadOrder(["app"], catalog);
    assert.deepEqual(unloadOrder(load, catalog), [...load].reverse());
  });

  it("ignores unknown names' dependencies and breaks cycles instead of throwing", () => {
    const catalog = catalogOf({
      a: { version: "1.0.0", dependencies: { b: "*" } },
      b: { version: "1.0.0", dependencies: { a: "*" } },
    });
    const order = unloadOrder(["a", "b", "ghost"], catalog);
    assert.deepEqual([...order].sort(), ["a", "b", "ghost"]);
    assert.deepEqual(unloadOrder(["a", "b", "ghost"], catalog), order);
  });
});
