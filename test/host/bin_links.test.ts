// A plugin installed with a plain `npm install`: the command links npm writes into
// node_modules/.bin are skipped by the package reader (not digested, not copied, never opened),
// so the package loads unsigned and signed, and a signature made before the install still
// verifies. Any other symbolic link is still refused, with a hint that names the exception.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PluginHost } from "../../mod.ts";
import {
  createSignature,
  encodeSignatureFile,
  formatPublicKey,
  generateKeyPair,
  readPackage,
} from "../../lib/trust/mod.ts";
import { fixtures, removeDir, tempDir, writePlugin } from "../_helpers.ts";

const CODE = `import { greet } from "./node_modules/greeter/index.js";
export default { methods: { hi: () => greet("bin"), where: () => import.meta.url } };`;
const GENERIC_HINT =
  "A package may hold only regular files and directories; replace links with copies";

/** A plugin with the fixture package installed the way npm does, without the .bin link yet. */
function npmPlugin(root: string, name: string): string {
  const dir = writePlugin(root, name, { entry: "./mod.js", isolation: "worker" }, {
    "package.json": JSON.stringify({ type: "module", dependencies: { greeter: "1.0.0" } }),
    "mod.js": CODE,
  });
  cpSync(join(fixtures, "npm_greeter"), join(dir, "node_modules", "greeter"), { recursive: true });
  return dir;
}

/** What `npm install` adds for a dependency with a `bin`. */
function addBinLink(dir: string, target = "../greeter/cli.js", name = "greeter"): void {
  mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
  symlinkSync(target, join(dir, "node_modules", ".bin", name));
}

async function sign(dir: string, name: string, secretKey: Uint8Array): Promise<void> {
  const snap = await readPackage(dir);
  writeFileSync(
    join(dir, "plugin.sig"),
    encodeSignatureFile(
      createSignature({ name, version: "1.0.0", digest: snap.digest }, secretKey),
    ),
  );
}

const isInvalid = (hint: RegExp) => (error: unknown) => {
  const e = error as { code?: string; hint?: string };
  assert.equal(e.code, "ERR_MANIFEST_INVALID");
  assert.notEqual(e.hint, GENERIC_HINT);
  assert.match(e.hint ?? "", hint);
  return true;
};

describe("readPackage() with npm command links", () => {
  let root: string;
  before(() => (root = tempDir()));
  after(() => removeDir(root));

  it("leaves node_modules/.bin links out of the files and the digest", async () => {
    const dir = npmPlugin(root, "digest");
    const before = await readPackage(dir);
    addBinLink(dir);
    // A nested install's links count the same way.
    const nested = join("node_modules", "greeter");
    mkdirSync(join(dir, nested, "node_modules"), { recursive: true });
    addBinLink(join(dir, nested), "../../cli.js", "again");
    const after = await readPackage(dir);
    assert.equal(after.digest, before.digest);
    assert.deepEqual([...after.files.keys()].sort(), [...before.files.keys()].sort());
    assert.ok(after.files.has("node_modules/greeter/cli.js"));
    assert.ok(![...after.files.keys()].some((k) => k.includes(".bin")));
  });

  it("refuses a command link that points outside the package", async () => {
    const dir = npmPlugin(root, "escape");
    addBinLink(dir, "/etc/passwd", "passwd");
    await assert.rejects(readPackage(dir), isInvalid(/node_modules\/\.bin/));
  });

  it("refuses a dangling command link", async () => {
    const dir = npmPlugin(root, "dangling");
    addBinLink(dir, "../greeter/missing.js");
    await assert.rejects(readPackage(dir), isInvalid(/node_modules\/\.bin/));
  });

  it("refuses a symbolic link elsewhere, with a hint that names the .bin exception", async () => {
    const dir = npmPlugin(root, "elsewhere");
    addBinLink(dir);
    symlinkSync("../mod.js", join(dir, "node_modules", "alias.js"));
    await assert.rejects(readPackage(dir), isInvalid(/only in "node_modules\/\.bin"/));
  });

  it("refuses a node_modules/.bin that is itself a link", async () => {
    const dir = npmPlugin(root, "linkedbin");
    mkdirSync(join(dir, "bin"));
    symlinkSync("../bin", join(dir, "node_modules", ".bin"));
    await assert.rejects(readPackage(dir), isInvalid(/node_modules\/\.bin/));
  });

  it("refuses a link in a .bin directory outside node_modules", async () => {
    const dir = npmPlugin(root, "dotbin");
    mkdirSync(join(dir, ".bin"));
    symlinkSync("../mod.js", join(dir, ".bin", "x"));
    await assert.rejects(readPackage(dir), isInvalid(/node_modules\/\.bin/));
  });
});

describe("a plugin installed with npm (node_modules/.bin links)", () => {
  let root: string;
  const key = generateKeyPair();
  before(async () => {
    root = tempDir();
    addBinLink(npmPlugin(join(root, "plugins"), "unsigned"));
    // Signed before `npm install` wrote the link: the signature must still verify.
    const signed = npmPlugin(join(root, "plugins"), "signed");
    await sign(signed, "signed", key.secretKey);
    addBinLink(signed);
  });
  after(() => removeDir(root));

  it("loads unsigned from its own directory", async () => {
    const host = new PluginHost({
      pluginDirs: [join(root, "plugins")],
      policy: "development",
      allowUnenforced: true,
    });
    try {
      await host.discover();
      const p = await host.load("unsigned");
      assert.equal(await p.call("hi"), "hello bin");
    } finally {
      await host.close();
    }
  });

  it("loads signed from a private copy without the links", async () => {
    const host = new PluginHost({
      pluginDirs: [join(root, "plugins")],
      policy: "standard",
      allowUnenforced: true,
      trust: { pinnedKeys: [formatPublicKey(key.publicKey)] },
    });
    try {
      await host.discover();
      const p = await host.load("signed");
      assert.equal(p.info.trust?.state, "trusted");
      assert.equal(await p.call("hi"), "hello bin");
      const copy = dirname(fileURLToPath(String(await p.call("where"))));
      assert.notEqual(copy, join(root, "plugins", "signed"));
      assert.ok(existsSync(join(copy, "node_modules", "greeter", "cli.js")), copy);
      assert.ok(!existsSync(join(copy, "node_modules", ".bin")));
    } finally {
      await host.close();
    }
  });
});
