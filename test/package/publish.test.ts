// `deno publish --dry-run` runs JSR's checks (type check, slow types, package contents) offline.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const deno = join(root, "node_modules", ".bin", "deno");

describe("deno publish --dry-run", () => {
  it("passes JSR's checks and packs the sources only", { timeout: 120_000 }, () => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== "NODE_TEST_CONTEXT") env[k] = v;
    }
    const r = spawnSync(deno, ["publish", "--dry-run", "--allow-dirty"], {
      cwd: root,
      encoding: "utf8",
      env: { ...env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      timeout: 110_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, out);
    assert.match(out, /Dry run complete/);
    const files = [...out.matchAll(/file:\/\/\S+/g)].map((m) =>
      m[0].slice(`file://${root}/`.length)
    );
    for (const f of ["mod.ts", "lib/define.ts", "lib/plugin.schema.json", "LICENSE", "deno.json"]) {
      assert.ok(files.includes(f), `${f} is not published:\n${files.join("\n")}`);
    }
    const stray = files.filter((f) => /^(test|bench|examples|dist|node_modules|\.tmp)\//.test(f));
    assert.deepEqual(stray, []);
    assert.deepEqual(files.filter((f) => f.endsWith(".test.ts")), []);
  });
});
