import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  deriveGrants,
  describeEnforcement,
  matchesHost,
  parseHostPattern,
  tryParseHostPattern,
  unenforcedAreas,
} from "../../permissions/mod.ts";
import type { Enforcement } from "../../permissions/enforcement.ts";

const none = {
  pluginDir: "/p",
  network: "none" as const,
  filesystem: { read: [], write: [] },
  env: [],
};

describe("deriveGrants()", () => {
  it("starts from nothing: only the plugin directory is readable", () => {
    const g = deriveGrants(none);
    assert.deepEqual(g.deno, {
      read: ["/p"],
      write: false,
      net: false,
      env: false,
      run: false,
      ffi: false,
      sys: false,
      import: false,
    });
    assert.deepEqual(g.nodeExecArgv, ["--permission", "--allow-fs-read=/p"]);
    assert.equal(g.network.mode, "none");
  });

  it("grants read only to the declared directories, one flag per path", () => {
    const g = deriveGrants({
      ...none,
      filesystem: { read: ["/p/data", "/srv/shared"], write: ["/p/out"] },
    }, { frameworkRead: ["/lib"] });
    assert.deepEqual(g.deno.read, ["/p", "/lib", "/p/data", "/srv/shared"]);
    assert.deepEqual(g.deno.write, ["/p/out"]);
    assert.deepEqual(g.nodeExecArgv, [
      "--permission",
      "--allow-fs-read=/p",
      "--allow-fs-read=/lib",
      "--allow-fs-read=/p/data",
      "--allow-fs-read=/srv/shared",
      "--allow-fs-write=/p/out",
    ]);
  });

  it("never grants workers, addons, child processes or WASI to Node workers", () => {
    for (const network of ["none", "full", ["a.com"]] as const) {
      const argv =
        deriveGrants({ ...none, network, env: ["X"], filesystem: { read: ["/a"], write: ["/b"] } })
          .nodeExecArgv;
      for (const flag of argv) {
        assert.doesNotMatch(flag, /allow-(worker|addons|child-process|wasi|inspector)/);
      }
    }
  });

  it("passes a host list to Deno and keeps raw network off for Node", () => {
    const g = deriveGrants({
      ...none,
      network: ["api.example.com:443", "*.cdn.example.com", "10.0.0.0/8"],
    });
    assert.deepEqual(g.deno.net, ["api.example.com:443", "*.cdn.example.com", "10.0.0.0/8"]);
    assert.ok(!g.nodeExecArgv.includes("--allow-net"));
    assert.equal(g.network.mode, "list");
    assert.equal(g.network.patterns.length, 3);
  });

  it("grants full network only when declared", () => {
    const g = deriveGrants({ ...none, network: "full" });
    assert.equal(g.deno.net, true);
    assert.ok(g.nodeExecArgv.includes("--allow-net"));
  });

  it("lists env names for Deno and the env filter", () => {
    const g = deriveGrants({ ...none, env: ["API_KEY", "API_KEY"] });
    assert.deepEqual(g.deno.env, ["API_KEY"]);
    assert.deepEqual(g.env, ["API_KEY"]);
  });

  it("rejects relative paths (caller bug)", () => {
    assert.throws(
      () => deriveGrants({ ...none, filesystem: { read: ["data"], write: [] } }),
      TypeError,
    );
  });
});

describe("parseHostPattern()", () => {
  const good: [string, string, number | undefined][] = [
    ["api.example.com", "name", undefined],
    ["api.example.com:443", "name", 443],
    ["*.cdn.example.com", "wildcard", undefined],
    ["10.0.0.0/8", "cidr", undefined],
    ["127.0.0.1:8080", "ipv4", 8080],
    ["[::1]", "ipv6", undefined],
    ["[::1]:443", "ipv6", 443],
    ["localhost", "name", undefined],
  ];
  for (const [src, kind, port] of good) {
    it(`parses "${src}" as ${kind}`, () => {
      const p = parseHostPattern(src);
      assert.equal(p.kind, kind);
      assert.equal(p.port, port);
    });
  }
  const bad = [
    "",
    "*",
    "https://a.com",
    "a.com:0",
    "a.com:65536",
    "a.com:80-90",
    "::1",
    "[::1",
    "*.com",
    "a.*.com",
    "-a.com",
    "10.0.0.0/40",
    "300.1.1.1",
    " a.com",
    "a_b.com",
    "1.2.3",
  ];
  for (const src of bad) {
    it(`rejects "${src}"`, () => {
      assert.equal(typeof tryParseHostPattern(src), "string");
      assert.throws(() => parseHostPattern(src), TypeError);
    });
  }
});

describe("matchesHost()", () => {
  const list = ["api.example.com:443", "*.cdn.example.com", "10.0.0.0/8", "[::1]"].map((p) =>
    parseHostPattern(p)
  );
  const cases: [string, boolean][] = [
    ["https://api.example.com/x", true],
    ["http://api.example.com/x", false],
    ["https://api.example.com:8443/", false],
    ["https://cdn.example.com/", true],
    ["https://a.b.cdn.example.com/", true],
    ["https://evilcdn.example.com/", false],
    ["https://cdn.example.com.evil.org/", false],
    ["http://10.20.30.40/", true],
    ["http://11.0.0.1/", false],
    ["http://[::1]:9000/", true],
    ["http://localhost/", false],
  ];
  for (const [url, expected] of cases) {
    it(`${expected ? "allows" : "refuses"} ${url}`, () => {
      assert.equal(matchesHost(list, new URL(url)), expected);
    });
  }
});

describe("describeEnforcement()", () => {
  it("claims enforcement of permissions on Deno and Node, and none on Bun", () => {
    // Memory is not enforced in any worker tier: one huge allocation or ArrayBuffers get past
    // the heap limit (test/host/memory_truth.test.ts).
    assert.deepEqual(unenforcedAreas(describeEnforcement("deno", { network: "none" })), [
      "filesystem",
      "memory",
      "cpu",
      "process",
    ]);
    assert.deepEqual(unenforcedAreas(describeEnforcement("node", { network: ["a.com"] })), [
      "memory",
    ]);
    assert.deepEqual(unenforcedAreas(describeEnforcement("bun", { network: "none" })), [
      "filesystem",
      "network",
      "env",
      "subprocess",
      "ffi",
      "memory",
      "signals",
      "process",
    ]);
  });

  it("counts an area a report leaves out as not enforced", () => {
    const { signals: _signals, ...rest } = describeEnforcement("node", { network: "none" });
    // A malformed report (from older code, or built by hand) fails closed.
    assert.deepEqual(unenforcedAreas(rest as Enforcement), ["memory", "signals"]);
  });

  it("names the broker when a host list is declared", () => {
    assert.equal(
      describeEnforcement("node", { network: ["a.com"] }).network.mechanism,
      "node-permissions+broker",
    );
    assert.equal(
      describeEnforcement("deno", { network: ["a.com"] }).network.mechanism,
      "deno-permissions+broker",
    );
  });
});
