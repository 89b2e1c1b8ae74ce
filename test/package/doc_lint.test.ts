// `deno doc --lint` over every public entry point: each export, member and overload has JSDoc, and
// no public signature references a type that no entry point exports (JSR scores both).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const deno = join(root, "node_modules", ".bin", "deno");

// The entry points are the JSR exports, so a new entry point is linted without editing this file.
const manifest = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")) as {
  exports: Record<string, string>;
};
const entries = Object.values(manifest.exports);

describe("deno doc --lint", () => {
  it("finds no missing JSDoc or private type references in the entry points", {
    timeout: 60_000,
  }, () => {
    assert.ok(entries.includes("./mod.ts"), `deno.json exports lack "./mod.ts": ${entries}`);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== "NODE_TEST_CONTEXT" && k !== "NODE_OPTIONS") env[k] = v;
    }
    const r = spawnSync(deno, ["doc", "--lint", ...entries], {
      cwd: root,
      encoding: "utf8",
      env: { ...env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      timeout: 55_000,
    });
    // Deno warns about @types/node's triple-slash references it cannot resolve; that is noise.
    const stderr = r.stderr.split("\n").filter((line, i, all) =>
      !line.startsWith("Warning Failed resolving types") &&
      !(line.trimStart().startsWith("at file://") &&
        all[i - 1]?.startsWith("Warning Failed resolving types"))
    ).join("\n");
    assert.equal(r.status, 0, `deno doc --lint failed (${r.error ?? r.signal}):\n${stderr}`);
  });
});
