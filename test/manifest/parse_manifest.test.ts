import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_MANIFEST_LIMITS, loadManifest, parseManifest, PluginError } from "../../mod.ts";
import { removeDir, tempDir } from "../_helpers.ts";

const DIR = "/srv/plugins/resizer";
const base = { name: "resizer", version: "1.2.0", entry: "./mod.ts" };

function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    parseManifest(input, DIR);
  } catch (e) {
    assert.ok(e instanceof PluginError);
    assert.equal(e.code, "ERR_MANIFEST_INVALID");
    return e.issues;
  }
  assert.fail("expected ERR_MANIFEST_INVALID");
}

describe("parseManifest()", () => {
  it("fills every default and resolves paths against the plugin directory", () => {
    const m = parseManifest(base, DIR);
    assert.equal(m.entry, `${DIR}/mod.ts`);
    assert.deepEqual(m.limits, DEFAULT_MANIFEST_LIMITS);
    assert.equal(m.permissions.network, "none");
    assert.deepEqual(m.permissions.filesystem, { read: [], write: [] });
    assert.deepEqual(m.permissions.env, []);
    assert.deepEqual(m.permissions.context, { read: [], write: [] });
  });

  it("accepts the full documented shape", () => {
    const m = parseManifest({
      ...base,
      description: "Resizes images",
      author: "Ada",
      engine: "^1.0.0",
      permissions: {
        network: [
          "api.example.com",
          "*.cdn.example.com",
          "api.example.com:443",
          "10.0.0.0/8",
          "[::1]:8080",
        ],
        filesystem: { read: ["./data", "/srv/shared"], write: ["./out"] },
        env: ["API_KEY"],
        context: { read: ["config", "logger"], write: ["cache"] },
      },
      limits: { heapMb: 64, cpuTimeMs: 500, threads: 2, fileDescriptors: 16, connections: 4 },
      dependencies: { "auth-core": "^2.1.0" },
      hooks: { on_request: 100 },
    }, DIR);
    assert.deepEqual(m.permissions.filesystem, {
      read: [`${DIR}/data`, "/srv/shared"],
      write: [`${DIR}/out`],
    });
    assert.equal(m.limits.heapMb, 64);
    assert.deepEqual(m.hooks, { on_request: 100 });
  });

  // Each broken manifest and the field path its error must name.
  const broken: [string, unknown, string][] = [
    ["missing name", { version: "1.0.0", entry: "./m.ts" }, "name"],
    ["uppercase name", { ...base, name: "Resizer" }, "name"],
    ["name too long", { ...base, name: "a".repeat(65) }, "name"],
    ["missing version", { name: "x", entry: "./m.ts" }, "version"],
    ["invalid semver", { ...base, version: "1.2" }, "version"],
    ["missing entry", { name: "x", version: "1.0.0" }, "entry"],
    ["entry escaping with ..", { ...base, entry: "../other/mod.ts" }, "entry"],
    ["absolute entry", { ...base, entry: "/etc/mod.ts" }, "entry"],
    ["entry and native together", { ...base, native: { "linux-x64": "./a.so" } }, "native"],
    [
      "bad native platform",
      { name: "x", version: "1.0.0", native: { "linux-z80": "./a.so" } },
      "native.linux-z80",
    ],
    ["unknown top-level key", { ...base, colour: "red" }, "colour"],
    ["unknown permission key", { ...base, permissions: { camera: true } }, "permissions.camera"],
    [
      "network as a bare string",
      { ...base, permissions: { network: "some" } },
      "permissions.network",
    ],
    [
      "URL as host pattern",
      { ...base, permissions: { network: ["ok.com", "https://x.com"] } },
      "permissions.network.1",
    ],
    ["wildcard everything", { ...base, permissions: { network: ["*"] } }, "permissions.network.0"],
    [
      "port out of range",
      { ...base, permissions: { network: ["a.com:70000"] } },
      "permissions.network.0",
    ],
    ["unbracketed IPv6", { ...base, permissions: { network: ["::1"] } }, "permissions.network.0"],
    ["bad CIDR", { ...base, permissions: { network: ["10.0.0.0/33"] } }, "permissions.network.0"],
    ["read path escaping", {
      ...base,
      permissions: { filesystem: { read: ["./data", "../../etc"] } },
    }, "permissions.filesystem.read.1"],
    [
      "absolute path with ..",
      { ...base, permissions: { filesystem: { write: ["/srv/../etc"] } } },
      "permissions.filesystem.write.0",
    ],
    [
      "unknown filesystem key",
      { ...base, permissions: { filesystem: { exec: ["./bin"] } } },
      "permissions.filesystem.exec",
    ],
    ["bad env name", { ...base, permissions: { env: ["API-KEY"] } }, "permissions.env.0"],
    [
      "bad context key",
      { ...base, permissions: { context: { read: ["no spaces"] } } },
      "permissions.context.read.0",
    ],
    ["negative heap", { ...base, limits: { heapMb: -1 } }, "limits.heapMb"],
    ["fractional cpu", { ...base, limits: { cpuTimeMs: 1.5 } }, "limits.cpuTimeMs"],
    ["too many threads", { ...base, limits: { threads: 100000 } }, "limits.threads"],
    ["unknown limit", { ...base, limits: { gpus: 1 } }, "limits.gpus"],
    [
      "invalid dependency range",
      { ...base, dependencies: { "auth-core": "not a range!" } },
      "dependencies.auth-core",
    ],
    ["self dependency", { ...base, dependencies: { resizer: "^1.0.0" } }, "dependencies.resizer"],
    ["invalid engine range", { ...base, engine: "latest please" }, "engine"],
    ["bad hook name", { ...base, hooks: { "On Request": 1 } }, "hooks.On Request"],
    ["hook priority not integer", { ...base, hooks: { on_request: "high" } }, "hooks.on_request"],
    ["bad isolation", { ...base, isolation: "vm" }, "isolation"],
    ["not an object", ["name"], ""],
  ];
  for (const [label, input, path] of broken) {
    it(`rejects ${label} at "${path}"`, () => {
      const issues = issuesOf(input);
      assert.ok(issues.some((i) => i.path === path), `${JSON.stringify(issues)} lacks ${path}`);
      for (const i of issues) assert.ok(i.message.length > 0);
    });
  }

  it("reports every problem at once", () => {
    const issues = issuesOf({
      name: "Bad Name",
      version: "x",
      entry: "../escape.ts",
      permissions: { network: ["https://a"], filesystem: { read: ["../../etc"] } },
      limits: { heapMb: 0 },
      extra: 1,
    });
    const paths = issues.map((i) => i.path).sort();
    for (
      const p of [
        "name",
        "version",
        "entry",
        "permissions.network.0",
        "permissions.filesystem.read.0",
        "limits.heapMb",
        "extra",
      ]
    ) {
      assert.ok(paths.includes(p), `missing ${p} in ${paths.join(",")}`);
    }
  });

  it("puts the field path and what to fix in the message", () => {
    try {
      parseManifest({ ...base, permissions: { network: ["https://x"] } }, DIR);
      assert.fail("expected an error");
    } catch (e) {
      assert.ok(e instanceof PluginError);
      assert.match(
        e.message,
        /Cannot load plugin "resizer": manifest field "permissions\.network\.0"/,
      );
      assert.match(e.hint, /plugin\.json/);
    }
  });
});

describe("loadManifest()", () => {
  it("rejects a missing file and invalid JSON with ERR_MANIFEST_INVALID", async () => {
    const dir = tempDir();
    try {
      await assert.rejects(loadManifest(dir), { code: "ERR_MANIFEST_INVALID" });
      writeFileSync(join(dir, "plugin.json"), "{ not json");
      await assert.rejects(loadManifest(dir), { code: "ERR_MANIFEST_INVALID" });
      writeFileSync(join(dir, "plugin.json"), JSON.stringify(base));
      assert.equal((await loadManifest(dir)).entry, join(dir, "mod.ts"));
    } finally {
      removeDir(dir);
    }
  });
});
