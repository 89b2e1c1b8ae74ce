// Symlinks created after load: a link planted inside a write grant would lead a plugin that
// shares the directory (Node follows links inside grants) outside every grant, past the
// load-time check. So no tier lets a plugin create one: Node's permission model, Deno's, and
// Landlock (no MAKE_SYM) in the process tier. Bun enforces nothing and says so.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";
import { removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

const CODE = `import * as fs from "node:fs";
export default { methods: {
  plant(target, path) {
    try { fs.symlinkSync(target, path); return "allowed"; } catch (e) { return "denied:" + (e.code ?? e.name); }
  },
  write(path) { fs.writeFileSync(path, "ok"); return "ok"; },
} };`;

describe("symlinks planted in a shared write grant", () => {
  let root: string;
  let shared: string;
  before(() => {
    root = tempDir();
    chmodSync(root, 0o755);
    shared = join(root, "shared");
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777);
    for (const isolation of ["worker", "process"]) {
      writePlugin(join(root, "plugins"), `planter-${isolation}`, {
        entry: "./mod.js",
        isolation,
        permissions: { filesystem: { write: [shared] } },
      }, { "mod.js": CODE });
    }
  });
  after(() => removeDir(root));

  for (const isolation of ["worker", "process"] as const) {
    it(`cannot be created by a ${isolation}-tier plugin (${runtime})`, {
      skip: isolation === "process" && process.platform !== "linux" ? "Linux only" : false,
    }, async () => {
      // Each tier is asked for explicitly: Bun's and Deno's worker tiers leave parts unenforced.
      const host = new PluginHost({ pluginDirs: [join(root, "plugins")], allowUnenforced: true });
      try {
        await host.discover();
        const p = await host.load(`planter-${isolation}`);
        const link = join(shared, `link-${isolation}`);
        assert.equal(await p.call("write", join(shared, `file-${isolation}`)), "ok");
        const got = await p.call("plant", "/etc/hostname", link);
        if (p.info.enforcement?.filesystem.mechanism === "none") {
          assert.equal(runtime, "bun"); // the report admits it; requireEnforcement refuses
        } else {
          assert.match(String(got), /^denied:/);
          assert.equal(existsSync(link), false);
        }
      } finally {
        await host.close();
      }
    });
  }
});
