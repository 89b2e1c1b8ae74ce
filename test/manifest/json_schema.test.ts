// lib/plugin.schema.json and parseManifest() agree on which manifests are valid. The schema is
// checked with a small JSON Schema (2020-12) validator written here; it throws on any keyword it
// does not implement, so the schema cannot quietly use one this test ignores.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_MANIFEST_LIMITS, LIMIT_RANGES, parseManifest } from "../../lib/manifest.ts";
import { PluginError } from "../../lib/errors.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const schema = JSON.parse(readFileSync(join(root, "lib", "plugin.schema.json"), "utf8")) as Schema;
const DIR = "/srv/plugins/resizer";

type Schema = boolean | { [keyword: string]: unknown };

const ANNOTATIONS = new Set(["$schema", "$id", "$defs", "title", "description", "default"]);

function typeOf(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "array";
  if (typeof x === "number") return Number.isInteger(x) ? "integer" : "number";
  return typeof x;
}

function hasType(x: unknown, type: string): boolean {
  const t = typeOf(x);
  return t === type || (type === "number" && t === "integer");
}

function resolveRef(ref: string): Schema {
  assert.ok(ref.startsWith("#/"), `only local $ref is supported, got ${ref}`);
  let at: unknown = schema;
  for (const part of ref.slice(2).split("/")) at = (at as Record<string, unknown>)[part];
  assert.ok(at !== undefined, `unresolved $ref ${ref}`);
  return at as Schema;
}

/** Returns the JSON pointer paths of every failing value ([] when `value` is valid). */
function validate(s: Schema, value: unknown, path = ""): string[] {
  if (s === true) return [];
  if (s === false) return [path];
  const errors: string[] = [];
  const fail = (why: string) => errors.push(`${path || "/"}: ${why}`);
  const obj = typeOf(value) === "object" ? value as Record<string, unknown> : undefined;
  for (const [kw, arg] of Object.entries(s)) {
    if (ANNOTATIONS.has(kw)) continue;
    switch (kw) {
      case "$ref":
        errors.push(...validate(resolveRef(arg as string), value, path));
        break;
      case "type": {
        const types = Array.isArray(arg) ? arg as string[] : [arg as string];
        if (!types.some((t) => hasType(value, t))) fail(`not ${types.join("|")}`);
        break;
      }
      case "enum":
        if (!(arg as unknown[]).some((e) => e === value)) fail("not in enum");
        break;
      case "const":
        if (arg !== value) fail(`not ${JSON.stringify(arg)}`);
        break;
      case "pattern":
        if (typeof value === "string" && !new RegExp(arg as string, "u").test(value)) {
          fail(`does not match ${arg}`);
        }
        break;
      case "minLength":
      case "maxLength":
        if (typeof value === "string") {
          const n = [...value].length; // JSON Schema counts code points
          if (kw === "minLength" ? n < (arg as number) : n > (arg as number)) fail(kw);
        }
        break;
      case "minimum":
        if (typeof value === "number" && value < (arg as number)) fail("below minimum");
        break;
      case "maximum":
        if (typeof value === "number" && value > (arg as number)) fail("above maximum");
        break;
      case "items":
        if (Array.isArray(value)) {
          value.forEach((x, i) => errors.push(...validate(arg as Schema, x, `${path}/${i}`)));
        }
        break;
      case "required":
        if (obj) { for (const k of arg as string[]) if (!Object.hasOwn(obj, k)) fail(`no ${k}`); }
        break;
      case "properties":
        if (obj) {
          for (const [k, sub] of Object.entries(arg as Record<string, Schema>)) {
            if (Object.hasOwn(obj, k)) errors.push(...validate(sub, obj[k], `${path}/${k}`));
          }
        }
        break;
      case "patternProperties":
        if (obj) {
          for (const [re, sub] of Object.entries(arg as Record<string, Schema>)) {
            for (const k of Object.keys(obj)) {
              if (new RegExp(re, "u").test(k)) {
                errors.push(...validate(sub, obj[k], `${path}/${k}`));
              }
            }
          }
        }
        break;
      case "additionalProperties":
        if (obj) {
          const named = Object.keys((s.properties ?? {}) as object);
          const patterns = Object.keys((s.patternProperties ?? {}) as object)
            .map((re) => new RegExp(re, "u"));
          for (const k of Object.keys(obj)) {
            if (named.includes(k) || patterns.some((re) => re.test(k))) continue;
            errors.push(...validate(arg as Schema, obj[k], `${path}/${k}`));
          }
        }
        break;
      case "propertyNames":
        if (obj) {
          for (const k of Object.keys(obj)) {
            errors.push(...validate(arg as Schema, k, `${path}/${k} (name)`));
          }
        }
        break;
      case "allOf":
        for (const sub of arg as Schema[]) errors.push(...validate(sub, value, path));
        break;
      case "anyOf":
        if (!(arg as Schema[]).some((sub) => validate(sub, value, path).length === 0)) {
          fail("matches no anyOf branch");
        }
        break;
      case "oneOf": {
        const n = (arg as Schema[]).filter((sub) => validate(sub, value, path).length === 0).length;
        if (n !== 1) fail(`matches ${n} oneOf branches`);
        break;
      }
      case "not":
        if (validate(arg as Schema, value, path).length === 0) fail("matches not");
        break;
      default:
        throw new Error(`the test validator does not implement "${kw}" (at ${path || "/"})`);
    }
  }
  return errors;
}

function acceptedByParseManifest(input: unknown): boolean {
  try {
    parseManifest(input, DIR);
    return true;
  } catch (e) {
    assert.ok(e instanceof PluginError, String(e));
    assert.equal(e.code, "ERR_MANIFEST_INVALID");
    return false;
  }
}

const base = { name: "resizer", version: "1.2.0", entry: "./mod.ts" };
const withPerms = (permissions: unknown) => ({ ...base, permissions });
const withLimits = (limits: unknown) => ({ ...base, limits });

// [name, manifest, valid]
const CASES: [string, unknown, boolean][] = [
  ["minimal worker plugin", base, true],
  ["$schema reference", { ...base, $schema: "../lib/plugin.schema.json" }, true],
  ["the full documented shape", {
    ...base,
    description: "Resizes images",
    author: "Ada",
    engine: "^1.0.0",
    isolation: "worker",
    permissions: {
      network: ["api.example.com", "*.cdn.example.com", "api.example.com:443", "10.0.0.0/8"],
      filesystem: { read: ["./data", "/srv/shared"], write: ["./out"] },
      env: ["API_KEY", "_x1"],
      context: { read: ["config", "logger"], write: ["cache", "ns:key.sub-1"] },
    },
    limits: { heapMb: 64, cpuTimeMs: 500, threads: 2, fileDescriptors: 16, connections: 0 },
    dependencies: { "auth-core": "^2.1.0" },
    optionalDependencies: { "metrics.v2": ">=1 <3" },
    hooks: { on_request: 100, "app:ready": 0 },
  }, true],
  ["native plugin", { name: "echo", version: "1.0.0", native: { "linux-x64": "./echo.so" } }, true],
  [
    "native with a bad platform key",
    { ...base, entry: undefined, native: { "linux-x86": "a" } },
    false,
  ],
  [
    "native with an empty path",
    { name: "echo", version: "1.0.0", native: { "linux-x64": "" } },
    false,
  ],
  ["neither entry nor native", { name: "x", version: "1.0.0" }, false],
  ["both entry and native", { ...base, native: { "linux-x64": "./a.so" } }, false],
  ["empty entry", { ...base, entry: "" }, false],
  ["not an object (array)", [base], false],
  ["not an object (null)", null, false],
  ["not an object (string)", "resizer", false],
  ["missing name", { version: "1.0.0", entry: "./mod.ts" }, false],
  ["missing version", { name: "x", entry: "./mod.ts" }, false],
  ["upper-case name", { ...base, name: "Resizer" }, false],
  ["name starting with '-'", { ...base, name: "-x" }, false],
  ["name of 64 characters", { ...base, name: "a".repeat(64) }, true],
  ["name of 65 characters", { ...base, name: "a".repeat(65) }, false],
  ["version with two parts", { ...base, version: "1.0" }, false],
  ["version with a v prefix", { ...base, version: "v1.0.0" }, false],
  ["version with build metadata", { ...base, version: "1.0.0+build.5" }, false],
  ["pre-release version", { ...base, version: "1.0.0-rc.1" }, true],
  ["pre-release with a leading zero", { ...base, version: "1.0.0-01" }, false],
  ["version with a leading zero", { ...base, version: "01.0.0" }, false],
  ["numeric version", { ...base, version: 1 }, false],
  ["engine that is not a string", { ...base, engine: 1 }, false],
  ["unknown top-level field", { ...base, permission: {} }, false],
  ["unknown isolation", { ...base, isolation: "thread" }, false],
  ["process isolation", { ...base, isolation: "process" }, true],
  ["description of 1000 characters", { ...base, description: "d".repeat(1000) }, true],
  ["description of 1001 characters", { ...base, description: "d".repeat(1001) }, false],
  ["author of 201 characters", { ...base, author: "a".repeat(201) }, false],
  ["unknown permission", withPerms({ exec: true }), false],
  ["network full", withPerms({ network: "full" }), true],
  ["network none", withPerms({ network: "none" }), true],
  ["network as an unknown word", withPerms({ network: "some" }), false],
  ["empty network list", withPerms({ network: [] }), true],
  ["network list with a number", withPerms({ network: [443] }), false],
  ["network pattern with a space", withPerms({ network: ["api example.com"] }), false],
  ["filesystem none", withPerms({ filesystem: "none" }), true],
  ["filesystem as an unknown word", withPerms({ filesystem: "all" }), false],
  ["filesystem with an unknown mode", withPerms({ filesystem: { exec: [] } }), false],
  ["filesystem with an empty path", withPerms({ filesystem: { read: [""] } }), false],
  ["filesystem list that is a string", withPerms({ filesystem: { read: "./data" } }), false],
  ["env name starting with a digit", withPerms({ env: ["1BAD"] }), false],
  ["env name of 128 characters", withPerms({ env: ["E".repeat(128)] }), true],
  ["env name of 129 characters", withPerms({ env: ["E".repeat(129)] }), false],
  ["context key with a space", withPerms({ context: { read: ["a b"] } }), false],
  ["context with an unknown mode", withPerms({ context: { delete: ["a"] } }), false],
  ["heapMb below its range", withLimits({ heapMb: 7 }), false],
  ["heapMb at both ends of its range", withLimits({ heapMb: 8, threads: 1024 }), true],
  ["heapMb above its range", withLimits({ heapMb: 16385 }), false],
  ["fractional limit", withLimits({ cpuTimeMs: 1.5 }), false],
  ["limit as a string", withLimits({ threads: "2" }), false],
  ["negative connections", withLimits({ connections: -1 }), false],
  ["fileDescriptors below its range", withLimits({ fileDescriptors: 3 }), false],
  ["unknown limit", withLimits({ memoryMb: 64 }), false],
  ["dependency with a bad name", { ...base, dependencies: { Auth: "^1.0.0" } }, false],
  ["dependency range that is not a string", { ...base, dependencies: { auth: 1 } }, false],
  ["optional dependency", { ...base, optionalDependencies: { auth: "*" } }, true],
  ["hook priority above 10000", { ...base, hooks: { on_request: 10001 } }, false],
  ["negative hook priority", { ...base, hooks: { on_request: -1 } }, false],
  ["hook name in camel case", { ...base, hooks: { onRequest: 1 } }, false],
];

// Valid by the JSON schema, rejected by parseManifest: rules JSON Schema cannot express. The
// schema's descriptions name each of them.
const VALIBOT_ONLY: [string, unknown][] = [
  ["entry that escapes the plugin directory", { ...base, entry: "../other/mod.ts" }],
  ["absolute entry", { ...base, entry: "/etc/mod.ts" }],
  ["read path that escapes the plugin directory", withPerms({ filesystem: { read: ["../.."] } })],
  ["absolute path with '..' segments", withPerms({ filesystem: { write: ["/srv/../etc"] } })],
  ["network entry that is a URL", withPerms({ network: ["https://api.example.com"] })],
  ["network wildcard over a top-level domain", withPerms({ network: ["*.com"] })],
  ["network port out of range", withPerms({ network: ["example.com:70000"] })],
  ["version part above 2^53-1", { ...base, version: "9007199254740992.0.0" }],
  ["engine that is not a semver range", { ...base, engine: "latest" }],
  ["a plugin that depends on itself", { ...base, dependencies: { resizer: "^1.0.0" } }],
];

describe("lib/plugin.schema.json", () => {
  it("is a draft 2020-12 schema for a strict object", () => {
    assert.ok(typeof schema === "object");
    assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
    assert.equal(schema.additionalProperties, false);
  });

  it("has the limit ranges and defaults of lib/manifest.ts", () => {
    type Limit = { type: string; minimum: number; maximum: number; default: number };
    const top = schema as { properties: { limits: { properties: Record<string, Limit> } } };
    const props = top.properties.limits.properties;
    assert.deepEqual(Object.keys(props).sort(), Object.keys(LIMIT_RANGES).sort());
    for (const [k, [min, max]] of Object.entries(LIMIT_RANGES)) {
      const limit = props[k] as Limit;
      assert.equal(limit.type, "integer", k);
      assert.equal(limit.minimum, min, k);
      assert.equal(limit.maximum, max, k);
      assert.equal(limit.default, DEFAULT_MANIFEST_LIMITS[k as keyof typeof LIMIT_RANGES], k);
    }
  });

  it(`agrees with parseManifest() on ${CASES.length} manifests`, () => {
    const valid = CASES.filter(([, , ok]) => ok).length;
    assert.ok(valid >= 8 && CASES.length - valid >= 8, "the table has both kinds");
    for (const [name, manifest, expected] of CASES) {
      // JSON has no undefined: round-trip so both validators see the same value.
      const input = manifest === undefined ? manifest : JSON.parse(JSON.stringify(manifest));
      const errors = validate(schema, input);
      assert.equal(errors.length === 0, expected, `schema, ${name}: ${errors.join("; ")}`);
      assert.equal(acceptedByParseManifest(input), expected, `parseManifest, ${name}`);
    }
  });

  it("leaves path, host-pattern, semver and self-dependency rules to parseManifest()", () => {
    for (const [name, manifest] of VALIBOT_ONLY) {
      assert.deepEqual(validate(schema, manifest), [], `schema, ${name}`);
      assert.equal(acceptedByParseManifest(manifest), false, `parseManifest, ${name}`);
    }
  });

  it("accepts every plugin.json under test/fixtures", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name === "plugin.json") files.push(join(dir, e.name));
      }
    };
    walk(join(root, "test", "fixtures"));
    assert.ok(files.length > 0);
    for (const f of files) {
      const json = JSON.parse(readFileSync(f, "utf8"));
      assert.deepEqual(validate(schema, json), [], f);
      assert.equal(acceptedByParseManifest(json), true, f);
    }
  });
});
