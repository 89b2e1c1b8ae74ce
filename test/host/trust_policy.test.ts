// The host under a trust policy: verify, then load the same bytes.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";
import {
  addTrustedKey,
  createSignature,
  encodeSignatureFile,
  formatPublicKey,
  generateKeyPair,
  openTrustList,
  readPackage,
} from "../../lib/trust/mod.ts";
import { removeDir, tempDir, writePlugin } from "../_helpers.ts";

async function sign(
  dir: string,
  name: string,
  version: string,
  secretKey: Uint8Array,
): Promise<void> {
  const snap = await readPackage(dir);
  writeFileSync(
    join(dir, "plugin.sig"),
    encodeSignatureFile(createSignature({ name, version, digest: snap.digest }, secretKey)),
  );
}

const code = (word: string) => `export default { methods: { word: () => "${word}" } };`;

describe("host trust policy", () => {
  let root: string;
  const key = generateKeyPair();
  const other = generateKeyPair();

  before(async () => {
    root = tempDir();
    const plugins = join(root, "plugins");
    await sign(
      writePlugin(plugins, "signed", { entry: "./mod.ts" }, { "mod.ts": code("genuine") }),
      "signed",
      "1.0.0",
      key.secretKey,
    );
    writePlugin(plugins, "unsigned", { entry: "./mod.ts" }, { "mod.ts": code("unsigned") });
    const tampered = writePlugin(plugins, "tampered", { entry: "./mod.ts" }, {
      "mod.ts": code("genuine"),
    });
    await sign(tampered, "tampered", "1.0.0", key.secretKey);
    writeFileSync(join(tampered, "mod.ts"), code("evil"));
    await sign(
      writePlugin(plugins, "stranger", { entry: "./mod.ts" }, { "mod.ts": code("x") }),
      "stranger",
      "1.0.0",
      other.secretKey,
    );
  });

  after(() => removeDir(root));

  it("loads a plugin signed by a pinned key and records the decision", async () => {
    const host = new PluginHost({
      pluginDirs: [join(root, "plugins")],
      trust: { pinnedKeys: [formatPublicKey(key.publicKey)] },
    });
    try {
      await host.discover();
      assert.equal(host.policy.name, "standard");
      const p = await host.load("signed");
      assert.equal(await p.call("word"), "genuine");
      assert.equal(p.info.trust?.state, "trusted");
      assert.equal(p.info.trust?.keyId, key.keyId);
      assert.match(p.info.digest ?? "", /^[0-9a-f]{128}$/);
    } finally {
      await host.close();
    }
  });

  it("refuses unsigned, tampered and unknown-key plugins, and still lists them with the reason", async () => {
    const host = new PluginHost({
      pluginDirs: [join(root, "plugins")],
      trust: { pinnedKeys: [formatPublicKey(key.publicKey)] },
    });
    try {
      await host.discover();
      await assert.rejects(host.load("unsigned"), { code: "ERR_UNTRUSTED" });
      await assert.rejects(host.load("tampered"), { code: "ERR_SIGNATURE_INVALID" });
      await assert.rejects(host.load("stranger"), { code: "ERR_UNTRUSTED" });
      const untrusted = host.untrusted().map((i) => i.name).sort();
      assert.deepEqual(untrusted, ["stranger", "tampered", "unsigned"]);
      assert.ok(host.info("tampered")?.trust?.reason);
      assert.equal(host.get("tampered"), undefined);
    } finally {
      await host.close();
    }
  });

  it("runs the verified bytes even when a file is swapped right after verification", async () => {
    const dir = writePlugin(join(root, "swap"), "swapme", { entry: "./mod.ts" }, {
      "mod.ts": code("genuine"),
    });
    await sign(dir, "swapme", "1.0.0", key.secretKey);
    const host = new PluginHost({ trust: { pinnedKeys: [formatPublicKey(key.publicKey)] } });
    try {
      const loading = host.load(dir).then(
        (p) => p.call("word"),
        (e: { code?: string }) => `refused:${e.code}`,
      );
      // Race the loader: swap the entry while it verifies and starts.
      for (let i = 0; i < 20; i++) {
        writeFileSync(join(dir, "mod.ts"), code("evil"));
        await new Promise((r) => setTimeout(r, 1));
      }
      const outcome = await loading;
      // Either the swap was seen before verification (refused) or it cannot matter (genuine).
      assert.ok(
        outcome === "genuine" || outcome === "refused:ERR_SIGNATURE_INVALID",
        String(outcome),
      );
      if (outcome === "genuine") {
        // The file on disk is now evil, but the worker runs the verified copy.
        assert.equal(await host.get("swapme")?.call("word"), "genuine");
      }
    } finally {
      await host.close();
    }
  });

  it("imports later modules from the verified copy, not from the directory on disk", async () => {
    const dir = writePlugin(join(root, "lazy"), "lazy", { entry: "./mod.ts" }, {
      "mod.ts":
        'export default { methods: { word: async () => (await import("./lazy.ts")).word } };',
      "lazy.ts": 'export const word = "genuine";',
    });
    await sign(dir, "lazy", "1.0.0", key.secretKey);
    const host = new PluginHost({ trust: { pinnedKeys: [formatPublicKey(key.publicKey)] } });
    try {
      const p = await host.load(dir);
      // Swapped after verification and after the worker started, before the module is imported.
      writeFileSync(join(dir, "lazy.ts"), 'export const word = "evil";');
      assert.equal(await p.call("word"), "genuine");
    } finally {
      await host.close();
    }
  });

  it("uses the encrypted trust list and refuses a downgrade", async () => {
    const listPath = join(root, "trust.bin");
    const secret = { key: new Uint8Array(32).fill(7) };
    const file = await openTrustList(listPath, secret, { create: true });
    await file.save(addTrustedKey(file.list, key.publicKey));
    const dir = writePlugin(join(root, "versions"), "versioned", {
      version: "2.0.0",
      entry: "./mod.ts",
    }, { "mod.ts": code("v2") });
    await sign(dir, "versioned", "2.0.0", key.secretKey);
    let host = new PluginHost({ trust: { listPath, secret } });
    try {
      assert.equal(await (await host.load(dir)).call("word"), "v2");
    } finally {
      await host.close();
    }
    writePlugin(join(root, "versions"), "versioned", { version: "1.0.0", entry: "./mod.ts" }, {
      "mod.ts": code("v1"),
    });
    await sign(dir, "versioned", "1.0.0", key.secretKey);
    host = new PluginHost({ trust: { listPath, secret } });
    try {
      await assert.rejects(host.load(dir), { code: "ERR_DOWNGRADE" });
    } finally {
      await host.close();
    }
  });
});

describe("pinned keys at construction", () => {
  it("a malformed pinned key is a TypeError when the host is created", () => {
    assert.throws(
      () => new PluginHost({ trust: { pinnedKeys: ["./release.key.pub"] } }),
      TypeError,
    );
    assert.throws(() => new PluginHost({ trust: { pinnedKeys: ["zz"] } }), TypeError);
  });
});
