// The strict preset end to end on a root host: a signed plugin runs in the process tier from the
// verified private copy, which the sandbox uid can read and never write.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";
import {
  createSignature,
  encodeSignatureFile,
  formatPublicKey,
  generateKeyPair,
  readPackage,
} from "../../lib/trust/mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

const skip = process.platform !== "linux"
  ? "the process tier needs Linux"
  : process.getuid?.() !== 0
  ? "the private-copy handover matters for a root host"
  : false;

const CODE = `import { writeFileSync } from "node:fs";
export default { methods: {
  word: () => "verified",
  tamper(path) { try { writeFileSync(path, "evil"); return "allowed"; } catch (e) { return "denied:" + (e.code ?? e.name); } },
} };`;

describe("strict policy with a signed plugin on a root host", { skip }, () => {
  let root: string;
  const key = generateKeyPair();
  before(async () => {
    root = tempDir();
    chmodSync(root, 0o755);
    const dir = writePlugin(join(root, "plugins"), "signed", { entry: "./mod.js" }, {
      "mod.js": CODE,
    });
    const snap = await readPackage(dir);
    writeFileSync(
      join(dir, "plugin.sig"),
      encodeSignatureFile(
        createSignature({ name: "signed", version: "1.0.0", digest: snap.digest }, key.secretKey),
      ),
    );
  });
  after(() => removeDir(root));

  it("loads in the process tier from the verified copy, which the plugin cannot change", async () => {
    const host = new PluginHost({
      pluginDirs: [join(root, "plugins")],
      policy: "strict",
      trust: { pinnedKeys: [formatPublicKey(key.publicKey)] },
    });
    try {
      await host.discover();
      const p = await host.load("signed");
      assert.equal(p.info.enforcement?.tier, "process");
      assert.equal(p.info.trust?.state, "trusted");
      assert.equal(await p.call("word"), "verified");
      // Its own (copied) entry is readable but not writable by the sandbox uid.
      const entry = p.info.path === undefined ? "" : join(p.info.path, "mod.js");
      assert.match(String(await p.call("tamper", entry)), /^denied:/);
    } finally {
      await host.close();
    }
  });
});
