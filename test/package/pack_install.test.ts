// The npm package as a user gets it: `npm pack` (prepack builds dist/), `npm install <tarball>`
// into a scratch project, then a script that imports "@bulkhead/core" by name loads a plugin that
// imports "@bulkhead/core/plugin", under Node 26, Bun and Deno as child processes.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { removeDir, runtime, tempDir } from "../_helpers.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const skip = runtime === "node"
  ? false
  : "pack-and-install runs once, under the Node runner; it exercises Bun as a child process";

// Children must not think they are node:test workers, and find Node 26 first on PATH.
const env: Record<string, string> = { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };
for (const [k, v] of Object.entries(process.env)) {
  if (v !== undefined && k !== "NODE_TEST_CONTEXT" && k !== "NODE_OPTIONS") env[k] = v;
}
env.PATH = `${join(root, "node_modules", ".bin")}:${process.env.PATH ?? ""}`;

function run(cmd: string, args: string[], cwd: string, timeout = 45_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout });
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.error ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// What `npm pack` needs: the manifest, the build config, the sources and the packed extras.
const STAGED = [
  "package.json",
  "tsconfig.json",
  "tsconfig.build.json",
  "mod.ts",
  "lib",
  "permissions",
  "ffi",
  "sandbox",
  "LICENSE",
  "README.md",
];
const COPY = { recursive: true, filter: (src: string) => !src.endsWith(".test.ts") };

const MAIN = `import { PluginHost } from "@bulkhead/core";
const host = new PluginHost({ pluginDirs: ["./plugins"] });
try {
  await host.discover();
  const adder = await host.load("adder");
  const sum = await adder.call("add", 2, 3);
  const greeting = await adder.call("greet", "npm");
  process.stdout.write(JSON.stringify({ sum, greeting }) + "\\n");
} finally {
  await host.close();
}
`;

const PROCESS_MAIN = `import { PluginHost } from "@bulkhead/core";
const host = new PluginHost({ pluginDirs: ["./plugins"] });
try {
  await host.discover();
  const boxed = await host.load("boxed");
  const sum = await boxed.call("add", 2, 3);
  const peek = await boxed.call("peek");
  const e = boxed.info.enforcement;
  process.stdout.write(JSON.stringify({ sum, peek, tier: e.tier, filesystem: e.filesystem.mechanism }) + "\\n");
} finally {
  await host.close();
}
`;

const BOXED = `import { readFileSync } from "node:fs";
export default {
  methods: {
    add: (a, b) => a + b,
    peek() {
      try {
        readFileSync("/etc/hostname");
        return "ESCAPED";
      } catch (e) {
        return "denied " + e.code;
      }
    },
  },
};
`;

const PLUGIN = `import { definePlugin } from "@bulkhead/core/plugin";
let name = "";
export default definePlugin({
  init(ctx) {
    name = ctx.plugin.name;
  },
  methods: {
    add: (a, b) => a + b,
    greet: (who) => "hello " + who + " from " + name,
  },
});
`;

// The child process entry of a native plugin must resolve from dist/ too.
const NATIVE = `import { startNativePlugin } from "@bulkhead/core/ffi";
const plugin = await startNativePlugin({
  name: "echo",
  libraryPath: process.argv[2],
  limits: { heapMb: 64, cpuTimeMs: 5000, threads: 4, fileDescriptors: 32, connections: 0 },
  permissions: { network: "none", filesystem: "none" },
  sandbox: false,
});
try {
  const out = await plugin.call("echo", new TextEncoder().encode("native"));
  process.stdout.write(JSON.stringify({ echo: new TextDecoder().decode(out) }) + "\\n");
} finally {
  await plugin.close();
}
`;

// Type-checks against the published .d.ts; the @ts-expect-error lines fail the check if the types
// were too loose to catch them.
const TYPES = `import { PluginHost, PluginError, type Manifest } from "@bulkhead/core";
import { definePlugin, type PluginContext } from "@bulkhead/core/plugin";
import { deriveGrants } from "@bulkhead/core/permissions";
import { evaluateTrust } from "@bulkhead/core/trust";
const p = definePlugin({
  init(ctx: PluginContext) {
    void ctx.log("info", ctx.plugin.name);
  },
  methods: { add: (a: number, b: number) => a + b },
});
const n: number | undefined = p.methods?.add(1, 2);
// @ts-expect-error: add takes numbers
p.methods?.add("1", 2);
definePlugin({
  // @ts-expect-error: not a log level
  init: (ctx) => ctx.log("loud", "x"),
});
export { n, PluginHost, PluginError, deriveGrants, evaluateTrust };
export type { Manifest };
`;

describe("npm pack and install (runs once, under the Node runner)", () => {
  let work = "";
  let project = "";
  let tarball = "";

  before(() => {
    if (skip) return;
    work = tempDir("bulkhead-pack-");
    // Under default options Bun and Deno run the plugin in the process tier, whose child has its
    // own uid on a root host: the plugin must be readable to it, as a real deployment's would.
    chmodSync(work, 0o755);
    project = join(work, "project");
    mkdirSync(join(project, "plugins", "adder"), { recursive: true });
  });

  after(() => {
    if (work !== "") removeDir(work);
  });

  it("packs the built package (npm pack runs prepack)", { skip, timeout: 60_000 }, () => {
    // Pack a copy of the sources, so the build writes its dist/ there and parallel runs (or a
    // dist/ in the repo) cannot collide.
    const stage = join(work, "stage");
    for (const entry of STAGED) {
      if (existsSync(join(root, entry))) cpSync(join(root, entry), join(stage, entry), COPY);
    }
    symlinkSync(join(root, "node_modules"), join(stage, "node_modules"), "dir");
    ok(run("npm", ["pack", "--pack-destination", work, "--silent"], stage), "npm pack");
    const found = readdirSync(work).filter((f) => f.endsWith(".tgz"));
    assert.equal(found.length, 1, `${found}`);
    tarball = join(work, found[0] as string);
    const listing = ok(run("tar", ["-tzf", tarball], work), "tar").split("\n").filter(Boolean);
    for (
      const f of [
        "package/package.json",
        "package/LICENSE",
        "package/dist/mod.js",
        "package/dist/mod.d.ts",
        "package/dist/lib/define.js",
        "package/dist/lib/cli.js",
        "package/dist/lib/runtime/_node_worker.js",
        "package/dist/lib/runtime/_web_worker.js",
        "package/dist/lib/runtime/_deno_loader.js",
        "package/lib/plugin.schema.json",
        "package/ffi/bulkhead_plugin.h",
      ]
    ) {
      assert.ok(listing.includes(f), `${f} is not in the tarball`);
    }
    const stray = listing.filter((f) =>
      /^package\/(test|bench|examples|\.tmp)\//.test(f) ||
      (f.endsWith(".ts") && !f.endsWith(".d.ts"))
    );
    assert.deepEqual(stray, []);
  });

  it("installs from the tarball into a fresh project", { skip, timeout: 60_000 }, () => {
    assert.notEqual(tarball, "", "the pack step failed");
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "scratch", private: true, type: "module" }),
    );
    const args = ["install", tarball, "--no-audit", "--no-fund", "--no-package-lock"];
    // The dependencies are in the npm cache after `npm ci`; reach the registry only if not.
    let r = run("npm", [...args, "--offline"], project);
    if (r.status !== 0) r = run("npm", [...args, "--prefer-offline"], project);
    ok(r, "npm install");
    const installed = join(project, "node_modules", "@bulkhead", "core");
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
    const ours = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    assert.equal(manifest.version, ours.version);
    assert.ok(existsSync(join(project, "node_modules", "valibot")));
    writeFileSync(join(project, "main.js"), MAIN);
    writeFileSync(
      join(project, "plugins", "adder", "plugin.json"),
      JSON.stringify({ name: "adder", version: "1.0.0", entry: "./mod.js" }),
    );
    writeFileSync(join(project, "plugins", "adder", "mod.js"), PLUGIN);
  });

  const expected = { sum: 5, greeting: "hello npm from adder" };
  const runners: [string, () => string[]][] = [
    ["Node 26", () => [bin("node"), "main.js"]],
    ["Bun", () => [bin("bun"), "main.js"]],
    [
      "Deno",
      () => [bin("deno"), "run", "-A", "--unstable-worker-options", "--no-prompt", "main.js"],
    ],
  ];
  for (const [name, argv] of runners) {
    it(`runs a plugin through "@bulkhead/core" under ${name}`, { skip, timeout: 30_000 }, () => {
      assert.ok(existsSync(join(project, "main.js")), "the install step failed");
      const [cmd, ...args] = argv();
      const out = ok(run(cmd as string, args, project, 25_000), `${name} main.js`);
      assert.deepEqual(JSON.parse(out.trim().split("\n").at(-1) as string), expected);
    });
  }

  it('runs a native plugin through "@bulkhead/core/ffi" under Node 26', {
    skip,
    timeout: 30_000,
  }, () => {
    assert.ok(existsSync(join(project, "main.js")), "the install step failed");
    // Built against the header shipped in the package.
    const header = join(project, "node_modules", "@bulkhead", "core", "ffi");
    const source = join(root, "test", "fixtures", "native", "echo.c");
    const lib = join(work, "echo.so");
    ok(run("cc", ["-shared", "-fPIC", "-O1", "-I", header, "-o", lib, source], work), "cc");
    writeFileSync(join(project, "native.js"), NATIVE);
    const out = ok(run(bin("node"), ["native.js", lib], project, 25_000), "native.js");
    assert.deepEqual(JSON.parse(out.trim().split("\n").at(-1) as string), { echo: "native" });
  });

  for (const [name, argv] of runners) {
    it(`runs a process-tier plugin from the installed package under ${name}`, {
      skip: skip || (process.platform !== "linux" ? "the process tier needs Linux" : false),
      timeout: 30_000,
    }, () => {
      assert.ok(existsSync(join(project, "main.js")), "the install step failed");
      const dir = join(project, "plugins", "boxed");
      if (!existsSync(dir)) {
        mkdirSync(dir, { recursive: true });
        writeFileSync(
          join(dir, "plugin.json"),
          JSON.stringify({
            name: "boxed",
            version: "1.0.0",
            entry: "./mod.js",
            isolation: "process",
          }),
        );
        writeFileSync(join(dir, "mod.js"), BOXED);
        writeFileSync(join(project, "process.js"), PROCESS_MAIN);
        // The sandboxed child runs as its own uid: the project must be readable by others.
        ok(run("chmod", ["-R", "a+rX", work], work), "chmod");
      }
      const [cmd, ...args] = argv();
      const out = ok(
        run(cmd as string, [...args.slice(0, -1), "process.js"], project, 25_000),
        `${name} process.js`,
      );
      assert.deepEqual(JSON.parse(out.trim().split("\n").at(-1) as string), {
        sum: 5,
        peek: "denied EACCES",
        tier: "process",
        filesystem: "landlock",
      });
    });
  }

  it("runs the bulkhead bin", { skip, timeout: 30_000 }, () => {
    const cli = join(project, "node_modules", ".bin", "bulkhead");
    const out = ok(run(cli, ["hash", "plugins/adder", "--json"], project), "bulkhead hash");
    assert.match(out, /[0-9a-f]{128}/);
  });

  it("type-checks a consumer against the published .d.ts", { skip, timeout: 30_000 }, () => {
    writeFileSync(join(project, "check.ts"), TYPES);
    const tsconfig = {
      compilerOptions: {
        target: "ES2023",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ["node"],
        typeRoots: [join(root, "node_modules", "@types")],
      },
      files: ["check.ts"],
    };
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(tsconfig));
    ok(run(bin("tsc"), ["-p", "tsconfig.json"], project), "tsc");
  });
});
