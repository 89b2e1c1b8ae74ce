// `bulkhead init`, `bulkhead call` and `bulkhead --version` in real child processes: the generated
// skeleton is a valid plugin that loads, answers, passes its own test, and can be signed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseManifestText } from "../../lib/manifest.ts";
import { main } from "../../lib/cli.ts";
import { removeDir, tempDir } from "../fixtures/trust/make_package.ts";
import { jsonError, type Run, runCli } from "./_cli_run.ts";

let work = "";
let dir = "";

const run = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
  runCli(args, { home: work, env });

before(async () => {
  work = await tempDir("bulkhead-cli-init-");
  // mkdtemp makes the directory 0700: a root host's process tier runs the plugin as another uid.
  await chmod(work, 0o755);
  dir = join(work, "Greeter Plugin");
});

after(() => removeDir(work));

describe("bulkhead --version", () => {
  it("prints the version of package.json", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    const r = await run(["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `bulkhead ${pkg.version}\n`);
    const j = await run(["--version", "--json"]);
    assert.deepEqual(JSON.parse(j.stdout), { version: pkg.version });
  });
});

describe("bulkhead init", () => {
  it("writes plugin.json with a resolvable $schema, a typed mod.ts and a test", async () => {
    const r = await run(["init", dir, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).name, "greeter-plugin");
    const text = await readFile(join(dir, "plugin.json"), "utf8");
    const manifest = parseManifestText(text, dir);
    assert.equal(manifest.name, "greeter-plugin");
    assert.equal(manifest.entry, join(dir, "mod.ts"));
    const schema = JSON.parse(text).$schema as string;
    assert.ok(existsSync(resolve(dir, schema)), schema);
    assert.match(JSON.parse(readFileSync(resolve(dir, schema), "utf8")).title, /plugin manifest/);
    const entry = await readFile(join(dir, "mod.ts"), "utf8");
    assert.match(
      entry,
      /^import type \{[^}]*PluginDefinition[^}]*\} from "@bulkhead\/core\/plugin";$/m,
    );
    assert.match(entry, /satisfies PluginDefinition/);
    assert.ok(existsSync(join(dir, "mod.test.ts")));
  });

  it("keeps existing files unless --force", async () => {
    const marker = "// edited by hand\n";
    await writeFile(join(dir, "mod.test.ts"), marker);
    const r = await run(["init", dir, "--json"]);
    assert.equal(r.code, 1);
    assert.equal(jsonError(r).code, "ERR_IO");
    assert.match(jsonError(r).hint ?? "", /--force/);
    assert.equal(await readFile(join(dir, "mod.test.ts"), "utf8"), marker);
    const forced = await run(["init", dir, "--force"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(await readFile(join(dir, "mod.test.ts"), "utf8"), marker);
  });

  it("refuses a directory name that makes no plugin name, unless --name", async () => {
    const r = await run(["init", join(work, "---")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--name/);
  });

  it("generates a test that passes on this runtime", () => {
    const test = join(dir, "mod.test.ts");
    const [cmd, argv] = process.versions.deno !== undefined
      ? [process.execPath, ["test", "-A", "--no-check", test]]
      : process.versions.bun !== undefined
      ? [process.execPath, ["test", test]]
      : [process.execPath, ["--test", test]];
    // The runner's own variables would make a nested `node --test` skip its files.
    const env: Record<string, string> = { HOME: work };
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== "NODE_TEST_CONTEXT" && k !== "NODE_OPTIONS") env[k] ??= v;
    }
    const r = spawnSync(cmd, argv, { cwd: dir, encoding: "utf8", env });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(`${r.stdout}\n${r.stderr}`, /\b2 pass|\bpass 2\b|\(2 steps\)/); // both cases ran
  });
});

describe("bulkhead call", () => {
  it("loads the skeleton, prints the result as JSON, the enforcement report and no denials", async () => {
    const r = await run(["call", dir, "greet", '"Ada"']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), "Hello, Ada!");
    assert.match(r.stderr, /^Enforcement \((node|deno|bun), worker tier\):$/m);
    assert.match(r.stderr, /^ {2}filesystem /m);
    assert.match(r.stderr, /^Denied: nothing$/m);
    const j = await run(["call", dir, "add", "2", "3", "--json"]);
    assert.equal(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    assert.equal(out.result, 5);
    assert.equal(out.enforcement.tier, "worker");
    assert.deepEqual(out.denials, []);
    assert.equal(out.trust.state, "unsigned");
  });

  it("exits 1 with the error, and reports what was denied", async () => {
    const nope = await run(["call", dir, "nope", "--json"]);
    assert.equal(nope.code, 1);
    assert.equal(jsonError(nope).code, "ERR_METHOD_NOT_FOUND");
    assert.equal(JSON.parse(nope.stdout).enforcement.tier, "worker");
    const peeker = join(work, "peeker");
    const init = await run(["init", peeker]);
    assert.equal(init.code, 0, init.stderr);
    await writeFile(
      join(peeker, "mod.ts"),
      "let ctx;\nexport default {\n  init(c) { ctx = c; },\n" +
        '  methods: { peek: () => ctx.get("config") },\n};\n',
    );
    const r = await run(["call", peeker, "peek", "--context", '{"config":{"k":1}}', "--json"]);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    // The refusal reached the plugin, which rethrew it: the host reports the plugin's code apart.
    assert.equal(out.error.code, "ERR_PLUGIN_THREW");
    assert.equal(out.error.pluginCode, "ERR_PERMISSION_DENIED");
    assert.deepEqual(out.denials, [{ plugin: "peeker", what: "context.read", target: "config" }]);
  });

  it("refuses arguments that are not JSON with a usage error", async () => {
    const r = await run(["call", dir, "greet", "Ada"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not JSON/);
  });

  it(
    "runs the plugin in the process tier with --isolation process (Linux only)",
    { skip: process.platform !== "linux" },
    async () => {
      const r = await run([
        "call",
        dir,
        "add",
        "--isolation",
        "process",
        "--json",
        "--",
        "-1",
        "3",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.result, 2);
      assert.equal(out.enforcement.tier, "process");
    },
  );

  it("under --policy standard refuses the unsigned skeleton, and loads it once signed and pinned", async () => {
    const refused = await run(["call", dir, "greet", '"Ada"', "--policy", "standard", "--json"]);
    assert.equal(refused.code, 1);
    assert.equal(jsonError(refused).code, "ERR_UNTRUSTED");
    const key = join(work, "skeleton.key");
    assert.equal((await run(["keygen", "--out", key, "--unencrypted"])).code, 0);
    const signed = await run(["sign", dir, "--key", key]);
    assert.equal(signed.code, 0, signed.stderr);
    const pin = readFileSync(`${key}.pub`, "utf8").trim();
    const r = await run(["call", dir, "whoami", "--policy", "standard", "--pin", pin, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.result, { name: "greeter-plugin", version: "0.1.0" });
    assert.equal(out.trust.state, "trusted");
  });
});

describe("main() help for the new commands", () => {
  it("prints help for init and call with exit 0", async () => {
    for (const cmd of [["init", "--help"], ["call", "--help"]]) {
      let out = "";
      const io = {
        stdout: { write: (s: string) => out += s },
        stderr: { write: () => 0 },
        env: {},
      };
      assert.equal(await main(cmd, io), 0, cmd.join(" "));
      assert.match(out, /^Usage: bulkhead /);
    }
  });
});
