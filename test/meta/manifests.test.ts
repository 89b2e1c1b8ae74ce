// deno.json (JSR) and package.json (npm) describe the same package: same name, version and export
// keys, each npm export the built twin of the JSR one, every target present.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const readJson = (file: string) => JSON.parse(readFileSync(join(root, file), "utf8"));

interface DenoJson {
  name: string;
  version: string;
  exports: Record<string, string>;
  tasks: Record<string, string>;
  publish: { include: string[]; exclude: string[] };
}

interface PackageJson {
  name: string;
  version: string;
  type: string;
  license: string;
  sideEffects: boolean;
  engines: { node: string };
  exports: Record<string, { types: string; default: string }>;
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
}

interface TsConfig {
  extends?: string;
  include: string[];
  compilerOptions: Record<string, unknown>;
}

const deno = readJson("deno.json") as DenoJson;
const pkg = readJson("package.json") as PackageJson;

/** `./lib/define.ts` -> `./dist/lib/define` */
const built = (source: string) => `./dist/${source.replace(/^\.\//, "").replace(/\.ts$/, "")}`;

describe("deno.json and package.json", () => {
  it("name the same package and version", () => {
    assert.equal(deno.name, "@bulkhead/core");
    assert.equal(pkg.name, deno.name);
    assert.match(pkg.version, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    assert.equal(deno.version, pkg.version);
    assert.equal(pkg.license, "MIT");
  });

  it("export the same keys", () => {
    assert.deepEqual(Object.keys(pkg.exports).sort(), Object.keys(deno.exports).sort());
    for (const key of [".", "./plugin", "./permissions", "./ffi", "./cli", "./trust"]) {
      assert.ok(Object.hasOwn(deno.exports, key), key);
    }
  });

  it("point every JSR export at an existing .ts source", () => {
    for (const [key, source] of Object.entries(deno.exports)) {
      assert.match(source, /^\.\/.+\.ts$/, key);
      assert.ok(existsSync(join(root, source)), `${key}: ${source} does not exist`);
    }
  });

  it("point every npm export at the build of the same source", () => {
    for (const [key, target] of Object.entries(pkg.exports)) {
      const source = deno.exports[key] as string;
      assert.deepEqual(Object.keys(target), ["types", "default"], `${key}: types must come first`);
      assert.equal(target.default, `${built(source)}.js`, key);
      assert.equal(target.types, `${built(source)}.d.ts`, key);
    }
  });

  it("build every export target with tsconfig.build.json into dist/", () => {
    const build = readJson("tsconfig.build.json") as TsConfig;
    assert.equal(build.extends, "./tsconfig.json");
    assert.equal(build.compilerOptions.outDir, "dist");
    assert.equal(build.compilerOptions.rootDir, ".");
    assert.equal(build.compilerOptions.declaration, true);
    assert.equal(build.compilerOptions.noEmit, false);
    const base = readJson("tsconfig.json") as TsConfig;
    assert.equal(base.compilerOptions.rewriteRelativeImportExtensions, true);
    for (const source of Object.values(deno.exports)) {
      const file = source.replace(/^\.\//, "");
      assert.ok(
        build.include.some((i) => file === i || file.startsWith(`${i}/`)),
        `${file} is not in tsconfig.build.json include`,
      );
    }
  });

  it("ship a bulkhead bin that is the built CLI with a node shebang", () => {
    assert.deepEqual(Object.keys(pkg.bin), ["bulkhead"]);
    const bin = pkg.bin.bulkhead as string;
    assert.equal(`./${bin}`, pkg.exports["./cli"]?.default);
    const source = readFileSync(join(root, deno.exports["./cli"] as string), "utf8");
    assert.ok(source.startsWith("#!/usr/bin/env node\n"), "lib/cli.ts must start with a shebang");
  });

  it("list files to pack that exist (dist/ is built by prepack)", () => {
    for (const entry of ["dist", "LICENSE", "README.md", "lib/plugin.schema.json", "ffi/*.h"]) {
      assert.ok(pkg.files.includes(entry), `files lacks ${entry}`);
    }
    for (const entry of pkg.files.filter((f) => f !== "dist" && !f.includes("*"))) {
      assert.ok(existsSync(join(root, entry)), `files names ${entry}, which does not exist`);
    }
    assert.equal(pkg.scripts.prepack, "npm run build");
    assert.match(pkg.scripts.build as string, /tsc -p tsconfig\.build\.json/);
  });

  it("publish the sources to JSR without tests, benchmarks or builds", () => {
    for (const entry of ["mod.ts", "lib/", "permissions/", "ffi/", "LICENSE", "README.md"]) {
      assert.ok(deno.publish.include.includes(entry), `publish.include lacks ${entry}`);
    }
    for (const entry of ["test/", "bench/", "examples/", "dist/", "node_modules/"]) {
      assert.ok(deno.publish.exclude.includes(entry), `publish.exclude lacks ${entry}`);
    }
  });

  it("declare an ESM package for Node 26 without side effects", () => {
    assert.equal(pkg.type, "module");
    assert.equal(pkg.sideEffects, false);
    assert.equal(pkg.engines.node, ">=26");
  });

  it("keep the scripts and tasks the project runs", () => {
    for (const script of ["demo", "test", "check", "bench", "build", "prepack"]) {
      assert.equal(typeof pkg.scripts[script], "string", `package.json script ${script}`);
    }
    for (const task of ["demo", "test", "bench"]) {
      const command = deno.tasks[task] as string;
      assert.equal(typeof command, "string", `deno.json task ${task}`);
      assert.match(command, /--unstable-worker-options/, task);
      assert.match(command, /--no-prompt/, task);
    }
  });
});
