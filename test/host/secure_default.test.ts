// Secure by default (issue 15): under default options a plugin runs in a tier that enforces what
// its manifest restricts, or is refused with a hint; running unenforced takes an explicit opt-in
// (allowUnenforced, or the development policy) and is announced on every load.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Logger, PluginHost } from "../../mod.ts";
import type { Manifest } from "../../mod.ts";
import { assertRuntimeVersion } from "../../lib/runtime/detect.ts";
import { describeEnforcement } from "../../permissions/enforcement.ts";
import { chooseIsolation, restrictedAreas } from "../../lib/host/_isolation.ts";
import { probeSandbox } from "../../sandbox/probe.ts";
import { allocateSandboxUid } from "../../sandbox/launcher.ts";
import { fixtures, removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

const ALL_PERMISSION_AREAS = ["filesystem", "network", "env", "subprocess", "ffi", "signals"];
/** What the worker tier leaves unenforced for a plugin with a read-only data grant. */
const WORKER_GAPS: Record<typeof runtime, string[]> = {
  node: [],
  deno: ["filesystem"],
  bun: ALL_PERMISSION_AREAS,
};
const sandbox = process.platform === "linux" &&
  probeSandbox(process.getuid?.() ?? -1, allocateSandboxUid()).namespaces;
const workerEnforces = WORKER_GAPS[runtime].length === 0;
const onlyUnenforcedWorker = workerEnforces ? `${runtime} enforces the worker tier` : false;
const needsSandbox = sandbox ? false : "needs Linux with user namespaces";

interface Captured {
  logger: Logger;
  warnings: { message: string; fields: Record<string, unknown> | undefined }[];
}

function captureLogger(): Captured {
  const warnings: Captured["warnings"] = [];
  return {
    warnings,
    logger: {
      debug() {},
      info() {},
      warn: (message, fields) => void warnings.push({ message, fields }),
      error() {},
    },
  };
}

describe("default isolation (auto)", () => {
  let root: string;
  let dataFile: string;

  before(() => {
    root = tempDir();
    // The process tier's child runs as its own uid: the plugins must be readable to it.
    chmodSync(root, 0o755);
    const manifest = {
      entry: "./mod.ts",
      permissions: { filesystem: { read: ["./data"] } },
      limits: { cpuTimeMs: 5000 },
    };
    const files = {
      "mod.ts": { copy: join(fixtures, "attacker", "mod.ts") },
      "data/records.txt": "original records",
    };
    const dir = writePlugin(root, "reader", manifest, files);
    dataFile = join(dir, "data", "records.txt");
    writePlugin(root, "reader-worker", { ...manifest, isolation: "worker" }, files);
  });

  after(() => removeDir(root));

  it(`runs a read-only data grant where it is enforced, or refuses it (${runtime})`, async () => {
    const host = new PluginHost({ pluginDirs: [root] });
    const unenforced: unknown[] = [];
    host.events.on("unenforced", (e) => void unenforced.push(e));
    try {
      await host.discover();
      let p;
      try {
        p = await host.load("reader");
      } catch (error) {
        // Refused: only where no tier enforces it here, and the hint names the ways out.
        assert.ok(!workerEnforces && !sandbox, `refused on ${runtime}: ${error}`);
        assert.equal((error as { code?: string }).code, "ERR_RUNTIME_UNSUPPORTED");
        assert.match(String((error as { hint?: string }).hint), /"isolation": "process"/);
        assert.match(String((error as { hint?: string }).hint), /allowUnenforced/);
        return;
      }
      const e = p.info.enforcement;
      assert.ok(e);
      // The cheapest tier that enforces it: the worker where the runtime does, else the kernel.
      if (workerEnforces) assert.equal(e.tier, "worker");
      else if (sandbox) assert.equal(e.tier, "process");
      for (const area of ALL_PERMISSION_AREAS) {
        assert.equal(e[area as "filesystem"].enforced, true, `${area} in the ${e.tier} tier`);
      }
      assert.equal(await p.call("read", dataFile), "allowed:original records");
      // The attack: overwrite its read-only data, read a file it was never granted.
      assert.match(String(await p.call("write", dataFile)), /^denied:/);
      assert.equal(readFileSync(dataFile, "utf8"), "original records");
      assert.ok(existsSync("/etc/hostname"), "the attack needs a file the host can read");
      const stolen = String(await p.call("read", "/etc/hostname"));
      assert.match(stolen, /^denied:/);
      assert.notEqual(stolen, "denied:ENOENT");
      assert.deepEqual(unenforced, []);
    } finally {
      await host.close();
    }
  });

  it("refuses an explicit worker tier that leaves restricted areas unenforced, with the hint", {
    skip: onlyUnenforcedWorker,
  }, async () => {
    const host = new PluginHost({ pluginDirs: [root] });
    try {
      await host.discover();
      await assert.rejects(host.load("reader-worker"), (error: Error & { hint?: string }) => {
        assert.equal((error as { code?: string }).code, "ERR_RUNTIME_UNSUPPORTED");
        for (const area of WORKER_GAPS[runtime]) assert.match(error.message, new RegExp(area));
        assert.match(String(error.hint), /"isolation": "process"/);
        assert.match(String(error.hint), /allowUnenforced/);
        return true;
      });
      assert.equal(host.get("reader-worker"), undefined);
    } finally {
      await host.close();
    }
  });

  it("mentions the process tier when requireEnforcement refuses an explicit worker", {
    skip: onlyUnenforcedWorker,
  }, async () => {
    const host = new PluginHost({
      pluginDirs: [root],
      requireEnforcement: true,
      allowUnenforced: true,
    });
    try {
      await host.discover();
      await assert.rejects(host.load("reader-worker"), (error: Error & { hint?: string }) => {
        assert.equal((error as { code?: string }).code, "ERR_RUNTIME_UNSUPPORTED");
        assert.match(String(error.hint), /"isolation": "process"/);
        return true;
      });
    } finally {
      await host.close();
    }
  });

  it("runs the explicit worker with allowUnenforced and warns: logger, event, audit", {
    skip: onlyUnenforcedWorker,
  }, async () => {
    const { logger, warnings } = captureLogger();
    const audit: string[] = [];
    const host = new PluginHost({
      pluginDirs: [root],
      allowUnenforced: true,
      logger,
      audit: (line: string) => void audit.push(line),
    });
    const events: { plugin: string; tier: string; areas: string[] }[] = [];
    host.events.on("unenforced", (e) => void events.push(e));
    try {
      await host.discover();
      const p = await host.load("reader-worker");
      assert.equal(p.info.enforcement?.tier, "worker");
      assert.equal(await p.call("ping"), "pong");
      assert.deepEqual(events, [{
        plugin: "reader-worker",
        runtime,
        tier: "worker",
        areas: WORKER_GAPS[runtime],
      }]);
      const security = warnings.filter((w) => w.fields?.security === true);
      assert.equal(security.length, 1);
      assert.match(security[0]?.message ?? "", /"reader-worker".*not enforced/);
      assert.deepEqual(security[0]?.fields?.areas, WORKER_GAPS[runtime]);
      const lines = audit.map((l) => JSON.parse(l)).filter((l) => l.event === "unenforced");
      assert.equal(lines.length, 1);
      assert.deepEqual(lines[0].areas, WORKER_GAPS[runtime]);
      // Every load is announced, not only the first.
      await host.unload("reader-worker");
      await host.load("reader-worker");
      assert.equal(events.length, 2);
    } finally {
      await host.close();
    }
  });

  it("prefers the enforcing tier under auto even with allowUnenforced", {
    skip: onlyUnenforcedWorker || needsSandbox,
  }, async () => {
    const { logger, warnings } = captureLogger();
    const host = new PluginHost({ pluginDirs: [root], allowUnenforced: true, logger });
    try {
      await host.discover();
      const p = await host.load("reader");
      assert.equal(p.info.enforcement?.tier, "process");
      assert.match(String(await p.call("write", dataFile)), /^denied:/);
      assert.deepEqual(warnings.filter((w) => w.fields?.security === true), []);
    } finally {
      await host.close();
    }
  });

  it("takes the tier that enforces what requireEnforcement names, under auto", {
    skip: onlyUnenforcedWorker || needsSandbox,
  }, async () => {
    const host = new PluginHost({ pluginDirs: [root], requireEnforcement: true });
    try {
      await host.discover();
      assert.equal((await host.load("reader")).info.enforcement?.tier, "process");
    } finally {
      await host.close();
    }
  });

  it("refuses, naming the fix, a plugin the sandbox uid of a root host cannot read", {
    skip: onlyUnenforcedWorker || needsSandbox || (process.getuid?.() !== 0 && "needs root"),
  }, async () => {
    const hidden = tempDir(); // 0700, owned by root
    try {
      writePlugin(hidden, "hidden", { entry: "./mod.ts" }, {
        "mod.ts": "export default { methods: { ping: () => 'pong' } };",
      });
      const host = new PluginHost({ pluginDirs: [hidden] });
      try {
        await host.discover();
        await assert.rejects(host.load("hidden"), (e: Error & { code?: string }) => {
          assert.equal(e.code, "ERR_RUNTIME_UNSUPPORTED");
          assert.match(e.message, /sandbox uid cannot read .*world-readable/);
          return true;
        });
      } finally {
        await host.close();
      }
      // Opted in: the worker tier, warned about.
      const { logger, warnings } = captureLogger();
      const relaxed = new PluginHost({ pluginDirs: [hidden], allowUnenforced: true, logger });
      try {
        await relaxed.discover();
        const p = await relaxed.load("hidden");
        assert.equal(p.info.enforcement?.tier, "worker");
        assert.equal(warnings.filter((w) => w.fields?.security === true).length, 1);
      } finally {
        await relaxed.close();
      }
    } finally {
      removeDir(hidden);
    }
  });

  it("keeps the worker tier under the development policy, and still warns", async () => {
    const { logger, warnings } = captureLogger();
    const host = new PluginHost({ pluginDirs: [root], policy: "development", logger });
    try {
      await host.discover();
      const p = await host.load("reader");
      assert.equal(p.info.enforcement?.tier, "worker");
      const security = warnings.filter((w) => w.fields?.security === true);
      assert.deepEqual(
        security.map((w) => w.fields?.areas),
        workerEnforces ? [] : [
          WORKER_GAPS[runtime],
        ],
      );
    } finally {
      await host.close();
    }
  });
});

describe("chooseIsolation()", () => {
  const manifest = (over: Partial<Manifest["permissions"]> = {}): Manifest => ({
    name: "m",
    version: "1.0.0",
    description: undefined,
    author: undefined,
    entry: "/p/mod.ts",
    native: undefined,
    engine: undefined,
    isolation: undefined,
    dir: "/p",
    permissions: {
      network: "none",
      filesystem: { read: [], write: [] },
      env: [],
      context: { read: [], write: [] },
      ...over,
    },
    limits: {} as Manifest["limits"],
    dependencies: {},
    optionalDependencies: {},
    hooks: {},
  });
  const noProcessTier = () => Promise.resolve({ report: undefined, reason: "it needs Linux" });
  const base = {
    runtime: "bun" as const,
    heapLimit: true,
    explicit: undefined,
    explicitFrom: "plugin.json",
    required: [],
    allowUnenforced: false,
    forecastProcess: noProcessTier,
  };

  it("counts an area as restricted unless the manifest grants all of it", () => {
    assert.deepEqual(restrictedAreas(manifest()), ALL_PERMISSION_AREAS);
    assert.deepEqual(
      restrictedAreas(manifest({ network: "full", filesystem: { read: [], write: ["/"] } })),
      ["env", "subprocess", "ffi", "signals"],
    );
    assert.deepEqual(restrictedAreas(manifest({ filesystem: { read: ["/"], write: [] } })), [
      ...ALL_PERMISSION_AREAS,
    ]);
  });

  it("takes the worker tier where its report enforces every restricted area", async () => {
    const c = await chooseIsolation({ ...base, manifest: manifest(), runtime: "node" });
    assert.equal(c.tier, "worker");
  });

  it("refuses when neither tier can enforce it, naming the areas and the ways out", async () => {
    await assert.rejects(
      chooseIsolation({ ...base, manifest: manifest() }),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, "ERR_RUNTIME_UNSUPPORTED");
        assert.match(e.message, /^Cannot load plugin "m": bun does not enforce filesystem, /);
        assert.match(e.message, /it needs Linux/);
        assert.match(String(e.hint), /"isolation": "process"/);
        assert.match(String(e.hint), /allowUnenforced: true/);
        return true;
      },
    );
  });

  it("falls back to the worker tier there only with allowUnenforced", async () => {
    const c = await chooseIsolation({ ...base, manifest: manifest(), allowUnenforced: true });
    assert.equal(c.tier, "worker");
    await assert.rejects(
      chooseIsolation({
        ...base,
        manifest: manifest(),
        allowUnenforced: true,
        required: ["filesystem"],
      }),
      { code: "ERR_RUNTIME_UNSUPPORTED" },
    );
  });

  it("with allowUnenforced, takes the tier that still enforces the required areas", async () => {
    const node = describeEnforcement("node", { network: "none" });
    const partial = {
      ...node,
      tier: "process" as const,
      filesystem: { mechanism: "none", enforced: false },
    };
    const input = {
      ...base,
      manifest: manifest(),
      required: ["signals" as const],
      forecastProcess: () => Promise.resolve({ report: partial, reason: "no Landlock" }),
    };
    assert.equal((await chooseIsolation({ ...input, allowUnenforced: true })).tier, "process");
    await assert.rejects(chooseIsolation(input), (e: Error & { hint?: string }) => {
      assert.match(e.message, /would leave filesystem unenforced here \(no Landlock\)/);
      assert.match(String(e.hint), /relax requireEnforcement/);
      return true;
    });
  });

  it("takes the process tier when its forecast report enforces everything", async () => {
    const enforced = describeEnforcement("node", { network: "none" });
    const c = await chooseIsolation({
      ...base,
      manifest: manifest(),
      forecastProcess: () =>
        Promise.resolve({ report: { ...enforced, tier: "process" }, reason: "" }),
    });
    assert.equal(c.tier, "process");
    assert.equal(c.requireSandbox, true);
  });
});

describe("the default logger", () => {
  it("prints security warnings to stderr and nothing else", () => {
    const dir = tempDir();
    try {
      const script = join(dir, "log.ts");
      writeFileSync(
        script,
        `import { DEFAULT_LOGGER as l } from ${
          JSON.stringify(new URL("../../lib/logger.ts", import.meta.url).href)
        };\nl.debug("d"); l.info("i"); l.error("e"); l.warn("plain");\n` +
          `l.warn("plugin x runs unenforced", { security: true });\n`,
      );
      const argv = runtime === "deno" ? ["run", "-A", script] : [script];
      const r = spawnSync(process.execPath, argv, { encoding: "utf8", timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr, "bulkhead: security warning: plugin x runs unenforced\n");
    } finally {
      removeDir(dir);
    }
  });

  it("is what a host without a logger warns through", { skip: onlyUnenforcedWorker }, () => {
    const dir = tempDir();
    try {
      writePlugin(dir, "loud", { entry: "./mod.js", isolation: "worker" }, {
        "mod.js": "export default { methods: { ping: () => 'pong' } };",
      });
      const script = join(dir, "host.ts");
      const mod = new URL("../../mod.ts", import.meta.url).href;
      writeFileSync(
        script,
        `import { PluginHost } from ${JSON.stringify(mod)};\n` +
          `const host = new PluginHost({ allowUnenforced: true });\n` +
          `const p = await host.load(${JSON.stringify(join(dir, "loud"))});\n` +
          `process.stdout.write(String(await p.call("ping")));\nawait host.close();\n`,
      );
      const repo = fileURLToPath(new URL("../..", import.meta.url));
      const argv = runtime === "deno"
        ? ["run", "-A", "--unstable-worker-options", "--no-prompt", `--config=${repo}deno.json`]
        : [];
      const r = spawnSync(process.execPath, [...argv, script], {
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.equal(r.stdout, "pong", r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^bulkhead: security warning: Plugin "loud" runs with ${
            WORKER_GAPS[runtime].join(", ")
          } not enforced \\(${runtime}, worker tier\\)`,
          "m",
        ),
      );
    } finally {
      removeDir(dir);
    }
  });
});

describe("assertRuntimeVersion()", () => {
  it("refuses runtimes older than the tested minimums", () => {
    assert.throws(() => assertRuntimeVersion("node", "20.11.1"), {
      code: "ERR_RUNTIME_UNSUPPORTED",
      message:
        "Cannot create the plugin host: bulkhead needs Node >= 26 for per-worker permissions; " +
        "this is Node 20.11.1",
    });
    assert.throws(() => assertRuntimeVersion("node", "25.9.0"), {
      code: "ERR_RUNTIME_UNSUPPORTED",
    });
    assert.throws(() => assertRuntimeVersion("deno", "2.8.3"), /needs Deno >= 2\.9/);
    assert.throws(() => assertRuntimeVersion("deno", "1.46.0"), /this is Deno 1\.46\.0/);
    assert.throws(() => assertRuntimeVersion("bun", "1.3.9"), /needs Bun >= 1\.4/);
  });

  it("accepts the minimums, newer versions, and the current runtime", () => {
    assertRuntimeVersion("node", "26.0.0");
    assertRuntimeVersion("node", "v27.1.0");
    assertRuntimeVersion("deno", "2.9.0");
    assertRuntimeVersion("deno", "3.0.0");
    assertRuntimeVersion("bun", "1.4.0");
    assertRuntimeVersion("bun", "2.0.0");
    assertRuntimeVersion("node", "unknown");
    assertRuntimeVersion();
  });
});

/** /usr/bin/node when it is older than 26 (the version check's real case), else undefined. */
function oldSystemNode(): string | undefined {
  const node = "/usr/bin/node";
  if (!existsSync(node)) return undefined;
  const r = spawnSync(node, ["--version"], { encoding: "utf8" });
  const major = Number(/^v(\d+)\./.exec(r.stdout ?? "")?.[1]);
  return Number.isFinite(major) && major < 26 ? node : undefined;
}

describe("PluginHost on an old Node", () => {
  const node = oldSystemNode();

  it("refuses to be constructed, naming the version it needs", {
    skip: node === undefined ? "no /usr/bin/node older than 26" : false,
  }, () => {
    // Node < 22.6 cannot run TypeScript: transpile what mod.ts reaches (types erased, relative
    // .ts imports rewritten to .js) into a temporary tree and construct a host from there.
    const repo = fileURLToPath(new URL("../..", import.meta.url));
    const ts = createRequire(join(repo, "package.json"))("typescript") as {
      transpileModule(src: string, o: object): { outputText: string };
      ModuleKind: { ESNext: number };
      ScriptTarget: { ES2022: number };
    };
    const out = tempDir();
    try {
      const stack = [join(repo, "mod.ts")];
      const seen = new Set<string>();
      while (stack.length > 0) {
        const file = stack.pop() as string;
        if (seen.has(file)) continue;
        seen.add(file);
        const source = readFileSync(file, "utf8");
        for (const m of source.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+\.ts)["']/g)) {
          stack.push(resolve(dirname(file), m[1] as string));
        }
        const js = ts.transpileModule(source, {
          compilerOptions: {
            module: ts.ModuleKind.ESNext,
            target: ts.ScriptTarget.ES2022,
            rewriteRelativeImportExtensions: true,
            verbatimModuleSyntax: true,
          },
        }).outputText;
        const dest = join(out, relative(repo, file)).replace(/\.ts$/, ".js");
        mkdirSync(dirname(dest), { recursive: true });
        writeFileSync(dest, js);
      }
      writeFileSync(join(out, "package.json"), '{ "type": "module" }');
      symlinkSync(join(repo, "node_modules"), join(out, "node_modules"));
      writeFileSync(
        join(out, "probe.mjs"),
        'import { PluginHost } from "./mod.js";\n' +
          "try { new PluginHost(); console.log('constructed'); }\n" +
          "catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }\n",
      );
      const r = spawnSync(node as string, [join(out, "probe.mjs")], {
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const version = spawnSync(node as string, ["--version"], { encoding: "utf8" }).stdout.trim();
      assert.deepEqual(JSON.parse(r.stdout), {
        code: "ERR_RUNTIME_UNSUPPORTED",
        message: "Cannot create the plugin host: bulkhead needs Node >= 26 for per-worker " +
          `permissions; this is Node ${version.slice(1)}`,
      });
    } finally {
      removeDir(out);
    }
  });
});
