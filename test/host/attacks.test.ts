// Security claims tested by attack: a real hostile plugin tries to break each permission.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PluginHost } from "../../mod.ts";
import type { Plugin } from "../../mod.ts";
import {
  fixtures,
  removeDir,
  runtime,
  startServer,
  tempDir,
  type TestServer,
  writePlugin,
} from "../_helpers.ts";

const enforced = runtime !== "bun";
// The denial each runtime raises: Deno's permission error, Node's permission-model error.
const FS = runtime === "deno" ? "denied:NotCapable" : "denied:ERR_ACCESS_DENIED";
const IMPORT = runtime === "deno" ? "denied:ERR_MODULE_NOT_FOUND" : "denied:ERR_PERMISSION_DENIED";
const FFI = runtime === "deno" ? "denied:NotCapable" : "denied:ERR_DLOPEN_DISABLED";
// Undeclared variables read as absent on every runtime (Deno's NotCapable is turned into absence).
const ENV = "denied:ABSENT";
const onBun = runtime === "bun" ? "Bun has no permission system (the report says so)" : false;

describe("worker tier permissions under attack", () => {
  let root: string;
  let dir: string;
  let server: TestServer;
  let host: PluginHost;
  let p: Plugin;
  const denials: string[] = [];

  before(async () => {
    root = tempDir();
    server = await startServer();
    writeFileSync(join(root, "secret.txt"), "TOP SECRET");
    writeFileSync(join(root, "secret.json"), JSON.stringify({ password: "hunter2" }));
    writeFileSync(join(root, "outside.mjs"), "export const stolen = 'outside code ran';");
    // The worker tier under attack: explicit, and the host allows what it leaves unenforced.
    dir = writePlugin(join(root, "plugins"), "attacker", {
      entry: "./mod.ts",
      isolation: "worker",
      permissions: {
        network: [`127.0.0.1:${server.port}`],
        filesystem: { read: ["./data"], write: ["./out"] },
        env: ["ALLOWED_VAR"],
        context: { read: ["config"], write: ["cache"] },
      },
      limits: { cpuTimeMs: 5000 },
    }, {
      "mod.ts": { copy: join(fixtures, "attacker", "mod.ts") },
      "data/ok.txt": "public data",
      "data/inside.mjs": "export const fine = 1;",
      "out/.keep": "",
    });
    process.env.ALLOWED_VAR = "visible";
    process.env.SECRET_TOKEN = "s3cr3t";
    host = new PluginHost({
      pluginDirs: [join(root, "plugins")],
      allowUnenforced: true,
      context: { config: { mode: "test" }, database: { dsn: "postgres://secret" } },
      onDenied: (d) => denials.push(`${d.what}:${d.target}`),
    });
    await host.discover();
    p = await host.load("attacker");
  });

  after(async () => {
    await host?.close();
    await server?.close();
    removeDir(root);
  });

  it("reports honestly what this runtime enforces", () => {
    const e = p.info.enforcement;
    assert.ok(e);
    assert.equal(e.runtime, runtime);
    for (const area of ["env", "subprocess", "ffi"] as const) {
      assert.equal(e[area].enforced, enforced, `${area} on ${runtime}`);
    }
    // Deno skips its read check for imports under any node_modules directory (see
    // node_modules_imports.test.ts), so its filesystem is reported as not enforced.
    assert.equal(e.filesystem.enforced, enforced && runtime !== "deno", `filesystem on ${runtime}`);
    assert.equal(e.network.enforced, enforced);
    // No runtime bounds a worker's memory against one huge allocation or ArrayBuffers
    // (memory_truth.test.ts shows the attacks).
    assert.equal(e.memory.enforced, false);
    if (runtime === "deno") assert.equal(e.cpu.enforced, false);
  });

  it("reads inside its read grant", async () => {
    assert.equal(await p.call("read", join(dir, "data", "ok.txt")), "allowed:public data");
  });

  it("cannot read outside its grant", { skip: onBun }, async () => {
    assert.equal(await p.call("read", join(root, "secret.txt")), FS);
    assert.equal(await p.call("readAsync", join(root, "secret.txt")), FS);
    assert.equal(await p.call("read", "/etc/passwd"), FS);
  });

  it("cannot escape with '..'", { skip: onBun }, async () => {
    const path = `${dir}/data/../../../secret.txt`;
    assert.equal(await p.call("read", path), FS);
  });

  it("writes inside its write grant and nowhere else", { skip: onBun }, async () => {
    assert.equal(await p.call("write", join(dir, "out", "result.txt")), "allowed:undefined");
    assert.equal(await p.call("write", join(root, "pwned.txt")), FS);
    assert.equal(await p.call("write", join(dir, "data", "ok.txt")), FS);
    assert.equal(existsSync(join(root, "pwned.txt")), false);
    assert.equal(readFileSync(join(dir, "data", "ok.txt"), "utf8"), "public data");
  });

  it("cannot create a symlink to escape its write grant", { skip: onBun }, async () => {
    const r = String(
      await p.call("symlinkThenRead", join(root, "secret.txt"), join(dir, "out", "l")),
    );
    assert.equal(r, FS);
  });

  it("sees only declared environment variables", async () => {
    assert.equal(await p.call("env", "ALLOWED_VAR"), "allowed:visible");
    assert.equal(await p.call("env", "SECRET_TOKEN"), ENV);
  });

  it("cannot read the environment through /proc/self/environ", { skip: onBun }, async () => {
    assert.equal(await p.call("environFile"), FS);
  });

  it("cannot start a subprocess", { skip: onBun }, async () => {
    const r = String(await p.call("subprocess"));
    // Deno refuses the spawn (run: false) with a plain Error; what matters is that the command
    // never ran ("pwned" would be its output).
    if (runtime === "deno") assert.match(r, /^denied:/);
    else assert.equal(r, FS);
    assert.doesNotMatch(r, /pwned/);
  });

  it("cannot load native code", { skip: onBun }, async () => {
    assert.equal(await p.call("ffi"), FFI);
  });

  it("cannot import a module outside its directory", { skip: onBun }, async () => {
    const url = pathToFileURL(join(root, "outside.mjs")).href;
    assert.equal(await p.call("importFile", url), IMPORT);
    const json = pathToFileURL(join(root, "secret.json")).href;
    assert.equal(await p.call("importJson", json), IMPORT);
    const inside = pathToFileURL(join(dir, "data", "inside.mjs")).href;
    assert.match(String(await p.call("importFile", inside)), /^allowed:/);
  });

  it(
    "cannot open raw network connections to hosts it did not declare",
    { skip: onBun },
    async () => {
      // Same server, other name: permissions are checked by name.
      assert.equal(await p.call("fetchDirect", `http://localhost:${server.port}/`), FS);
      if (runtime === "deno") {
        // Deno enforces the host list itself: the declared name is reachable directly.
        assert.match(
          String(await p.call("fetchDirect", `http://127.0.0.1:${server.port}/`)),
          /^allowed:hello/,
        );
      } else {
        // Node's network permission is all-or-nothing: declared hosts go through ctx.fetch.
        assert.equal(await p.call("fetchDirect", `http://127.0.0.1:${server.port}/`), FS);
      }
    },
  );

  it("reaches declared hosts through ctx.fetch and nothing else", async () => {
    assert.equal(
      await p.call("ctxFetch", `http://127.0.0.1:${server.port}/`),
      `allowed:hello from 127.0.0.1:${server.port}`,
    );
    assert.equal(
      await p.call("ctxFetch", `http://localhost:${server.port}/`),
      "denied:ERR_PERMISSION_DENIED",
    );
    assert.equal(await p.call("ctxFetch", "file:///etc/passwd"), "denied:ERR_PERMISSION_DENIED");
  });

  it("cannot follow a redirect to an undeclared host through ctx.fetch", async () => {
    const to = encodeURIComponent(`http://localhost:${server.port}/`);
    const r = await p.call("ctxFetch", `http://127.0.0.1:${server.port}/redirect?to=${to}`);
    assert.equal(r, "denied:ERR_PERMISSION_DENIED");
    const ok = encodeURIComponent(`http://127.0.0.1:${server.port}/final`);
    assert.match(
      String(await p.call("ctxFetch", `http://127.0.0.1:${server.port}/redirect?to=${ok}`)),
      /^allowed:hello/,
    );
  });

  it("reaches only declared context keys", async () => {
    assert.equal(await p.call("ctxGet", "config"), 'allowed:{"mode":"test"}');
    assert.equal(await p.call("ctxGet", "database"), "denied:ERR_PERMISSION_DENIED");
    assert.equal(await p.call("ctxSet", "cache", 42), "allowed:undefined");
    assert.equal(host.context.get("cache"), 42);
    assert.equal(
      await p.call("ctxSet", "config", { mode: "evil" }),
      "denied:ERR_PERMISSION_DENIED",
    );
    assert.deepEqual(host.context.get("config"), { mode: "test" });
    assert.ok(denials.includes("context.read:database"));
  });

  it("cannot pollute host prototypes through the raw context port", {
    skip: runtime === "bun" ? "no workerData port on Bun workers" : false,
  }, async () => {
    const r = await p.call("pollute");
    assert.equal(r, "denied:ERR_PERMISSION_DENIED");
    assert.equal(
      (Function.prototype as unknown as Record<string, unknown>).bulkheadPolluted,
      undefined,
    );
  });
});

describe("worker tier on Bun", () => {
  it("is not a boundary, and the enforcement report says so", {
    skip: runtime !== "bun" ? "Bun only" : false,
  }, async () => {
    const root = tempDir();
    writeFileSync(join(root, "secret.txt"), "TOP SECRET");
    writePlugin(root, "bunny", { entry: "./mod.ts", isolation: "worker" }, {
      "mod.ts": { copy: join(fixtures, "attacker", "mod.ts") },
    });
    const host = new PluginHost({ pluginDirs: [root], allowUnenforced: true });
    try {
      await host.discover();
      const p = await host.load("bunny");
      // Declared no filesystem access at all, and still reads: exactly what the report admits.
      assert.equal(await p.call("read", join(root, "secret.txt")), "allowed:TOP SECRET");
      assert.equal(p.info.enforcement?.filesystem.enforced, false);
      assert.equal(p.info.enforcement?.filesystem.mechanism, "none");
      // The guard still stops plain fetch, but it is reported as a guard, not enforcement.
      assert.equal(
        await p.call("fetchDirect", "http://127.0.0.1:9/"),
        "denied:ERR_PERMISSION_DENIED",
      );
      assert.equal(p.info.enforcement?.network.mechanism, "guard");
    } finally {
      await host.close();
      removeDir(root);
    }
  });

  it(
    "is refused under requireEnforcement",
    { skip: runtime !== "bun" ? "Bun only" : false },
    async () => {
      const root = tempDir();
      writePlugin(root, "strict", { entry: "./mod.ts", isolation: "worker" }, {
        "mod.ts": "export default { methods: {} };",
      });
      const host = new PluginHost({ pluginDirs: [root], requireEnforcement: true });
      try {
        await host.discover();
        await assert.rejects(host.load("strict"), { code: "ERR_RUNTIME_UNSUPPORTED" });
      } finally {
        await host.close();
        removeDir(root);
      }
    },
  );
});

describe("Deno without the heap limit (denoHeapLimit: false)", () => {
  const onlyDeno = runtime !== "deno" ? "Deno only" : false;

  it("keeps every permission, and reports memory as not enforced", { skip: onlyDeno }, async () => {
    const root = tempDir();
    writeFileSync(join(root, "secret.txt"), "TOP SECRET");
    writeFileSync(join(root, "outside.mjs"), "export const stolen = 1;");
    writePlugin(root, "quick", { entry: "./mod.ts", isolation: "worker" }, {
      "mod.ts": { copy: join(fixtures, "attacker", "mod.ts") },
    });
    const host = new PluginHost({
      pluginDirs: [root],
      denoHeapLimit: false,
      allowUnenforced: true,
    });
    try {
      await host.discover();
      const p = await host.load("quick");
      assert.equal(await p.call("read", join(root, "secret.txt")), "denied:NotCapable");
      const url = pathToFileURL(join(root, "outside.mjs")).href;
      assert.equal(await p.call("importFile", url), "denied:ERR_MODULE_NOT_FOUND");
      const spawned = String(await p.call("subprocess"));
      assert.match(spawned, /^denied:/);
      assert.doesNotMatch(spawned, /pwned/);
      assert.equal(await p.call("ffi"), "denied:NotCapable");
      assert.equal(p.info.enforcement?.memory.enforced, false);
      assert.equal(await p.call("ping"), "pong");
    } finally {
      await host.close();
      removeDir(root);
    }
  });

  it(
    "checks the plugin's static imports against the plugin's permissions",
    { skip: onlyDeno },
    async () => {
      const root = tempDir();
      writeFileSync(join(root, "outside.ts"), "export const stolen = 'outside';");
      writePlugin(root, "sneaky", { entry: "./mod.ts", isolation: "worker" }, {
        "mod.ts":
          "import { stolen } from '../outside.ts';\nexport default { methods: { s: () => stolen } };",
      });
      const host = new PluginHost({
        pluginDirs: [root],
        denoHeapLimit: false,
        allowUnenforced: true,
      });
      try {
        await host.discover();
        await assert.rejects(host.load("sneaky"), { code: "ERR_PLUGIN_INIT" });
      } finally {
        await host.close();
        removeDir(root);
      }
    },
  );
});

describe("symlinks that leave the grants", () => {
  it("refuses to load a plugin shipping a link to a file outside", async () => {
    const root = tempDir();
    const host = new PluginHost({ pluginDirs: [root] });
    try {
      writeFileSync(join(root, "secret.txt"), "x");
      const dir = writePlugin(root, "linky", {
        entry: "./mod.ts",
        permissions: { filesystem: { read: ["./data"] } },
      }, {
        "mod.ts": "export default { methods: {} };",
      });
      mkdirSync(join(dir, "data"));
      symlinkSync(join(root, "secret.txt"), join(dir, "data", "leak"));
      await host.discover();
      // The package reader refuses links outright (their target is outside the digest).
      await assert.rejects(host.load("linky"), { code: "ERR_MANIFEST_INVALID" });
      assert.equal(host.get("linky"), undefined);
    } finally {
      await host.close();
      removeDir(root);
    }
  });
});
