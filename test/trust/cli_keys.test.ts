// The key workflow of the CLI in real child processes: one-line public keys accepted everywhere,
// encrypted secret keys, and the errors a user meets on the way.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PluginHost } from "../../mod.ts";
import { makePackage, removeDir, tempDir } from "../fixtures/trust/make_package.ts";
import { jsonError, type Run, runCli } from "./_cli_run.ts";

const PASS = { BULKHEAD_PASSPHRASE: "correct horse battery staple" };
const LIST_PASS = { BULKHEAD_TRUST_PASSPHRASE: "hunter2 but longer" };
const FAST = ["--scrypt-log2n", "12"];
const PLUGIN = {
  "plugin.json": JSON.stringify({ name: "signed", version: "1.0.0", entry: "./mod.ts" }),
  "mod.ts": 'export default { methods: { word: () => "genuine" } };\n',
};

let work = "";
let pkg = "";
let key = "";

const run = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
  runCli(args, { home: work, env });

before(async () => {
  work = await tempDir("bulkhead-cli-keys-");
  pkg = await makePackage(PLUGIN);
  key = join(work, "release.key");
});

after(async () => {
  await removeDir(work);
  await removeDir(pkg);
});

describe("bulkhead keygen, sign and verify with one-line public keys", () => {
  it('round trip: keygen, sign, verify --pin "$(cat x.pub)", and a host pinning the .pub text loads the plugin', async () => {
    const k = await run(["keygen", "--out", key, ...FAST, "--json"], PASS);
    assert.equal(k.code, 0, k.stderr);
    const s = await run(["sign", pkg, "--key", key], PASS);
    assert.equal(s.code, 0, s.stderr);
    const pubText = await readFile(`${key}.pub`, "utf8");
    const v = await run(["verify", pkg, "--pin", pubText.trim(), "--json"]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(JSON.parse(v.stdout).state, "trusted");
    const host = new PluginHost({ trust: { pinnedKeys: [pubText] } });
    try {
      const p = await host.load(pkg);
      assert.equal(await p.call("word"), "genuine");
      assert.equal(p.info.trust?.state, "trusted");
      assert.equal(p.info.trust?.keyId, JSON.parse(k.stdout).keyId);
    } finally {
      await host.close();
    }
  });

  it("still reads the JSON .pub files of earlier versions (verify --pin, trust add --key)", async () => {
    const line = (await readFile(`${key}.pub`, "utf8")).trim();
    const [, keyId, base64] = line.split(":");
    const legacy = join(work, "legacy.pub");
    await writeFile(
      legacy,
      JSON.stringify({ format: "bulkhead-ed25519-public-v1", keyId, publicKey: base64 }, null, 2),
    );
    const v = await run(["verify", pkg, "--pin", legacy, "--json"]);
    assert.equal(v.code, 0, v.stderr);
    const list = join(work, "legacy-list.bin");
    const a = await run(
      ["trust", "add", "--key", legacy, "--list", list, "--scrypt-log2n", "10", "--json"],
      LIST_PASS,
    );
    assert.equal(a.code, 0, a.stderr);
    assert.equal(JSON.parse(a.stdout).keyId, keyId);
  });

  it("refuses a key line whose key id is not the key's own", async () => {
    const line = (await readFile(`${key}.pub`, "utf8")).trim();
    const forged = line.replace(/:[0-9a-f]{16}:/, ":0123456789abcdef:");
    const v = await run(["verify", pkg, "--pin", forged, "--json"]);
    assert.equal(v.code, 1);
    assert.equal(jsonError(v).code, "ERR_SIGNATURE_INVALID");
    assert.match(jsonError(v).message, /key id/);
  });
});

describe("bulkhead keygen: encrypted secret keys", () => {
  it("signs with the passphrase from the environment or a file, and refuses a wrong one with a typed error", async () => {
    const out = join(work, "file-pass.key");
    const passFile = join(work, "passphrase.txt");
    await writeFile(passFile, "from a file\n");
    const k = await run(["keygen", "--out", out, ...FAST, "--passphrase-file", passFile]);
    assert.equal(k.code, 0, k.stderr);
    const ok = await run(["sign", pkg, "--key", out, "--passphrase-file", passFile]);
    assert.equal(ok.code, 0, ok.stderr);
    // The same passphrase from the environment works too.
    const env = await run(["sign", pkg, "--key", out], { BULKHEAD_PASSPHRASE: "from a file" });
    assert.equal(env.code, 0, env.stderr);
    const wrong = await run(["sign", pkg, "--key", out, "--json"], {
      BULKHEAD_PASSPHRASE: "not it",
    });
    assert.equal(wrong.code, 1);
    assert.equal(jsonError(wrong).code, "ERR_SIGNATURE_INVALID");
    assert.match(jsonError(wrong).message, /passphrase is wrong/);
    assert.match(jsonError(wrong).hint ?? "", /BULKHEAD_PASSPHRASE/);
    const none = await run(["sign", pkg, "--key", out, "--json"]);
    assert.equal(none.code, 1);
    assert.match(jsonError(none).message, /encrypted and no passphrase/);
    assert.match(jsonError(none).hint ?? "", /--passphrase-file/);
  });

  it("needs a passphrase unless --unencrypted, and sign reads an unencrypted key without one", async () => {
    const out = join(work, "plain.key");
    const refused = await run(["keygen", "--out", out]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--unencrypted/);
    await assert.rejects(stat(out), { code: "ENOENT" });
    const k = await run(["keygen", "--out", out, "--unencrypted", "--json"]);
    assert.equal(k.code, 0, k.stderr);
    assert.equal(JSON.parse(k.stdout).encrypted, false);
    assert.equal(JSON.parse(await readFile(out, "utf8")).format, "bulkhead-ed25519-secret-v1");
    const s = await run(["sign", pkg, "--key", out]);
    assert.equal(s.code, 0, s.stderr);
  });
});

describe("bulkhead keygen and sign: errors that say what to do", () => {
  it("keygen onto an existing key points to --force, keeps the old key, and --force replaces both files", async () => {
    const before = await readFile(key, "utf8");
    const again = await run(["keygen", "--out", key, ...FAST, "--json"], PASS);
    assert.equal(again.code, 1);
    assert.equal(jsonError(again).code, "ERR_IO");
    assert.match(jsonError(again).message, /already exists/);
    assert.match(jsonError(again).hint ?? "", /--force/);
    assert.doesNotMatch(again.stdout + again.stderr, /EEXIST/);
    assert.equal(await readFile(key, "utf8"), before);
    const forced = await run(["keygen", "--out", key, ...FAST, "--force", "--json"], PASS);
    assert.equal(forced.code, 0, forced.stderr);
    const { keyId } = JSON.parse(forced.stdout);
    assert.notEqual(await readFile(key, "utf8"), before);
    assert.equal((await readFile(`${key}.pub`, "utf8")).split(":")[1], keyId);
  });

  it("keygen into a missing directory names it, with no hint about links and no file left", async () => {
    const out = join(work, "no-such-dir", "k");
    const r = await run(["keygen", "--out", out, "--unencrypted", "--json"]);
    assert.equal(r.code, 1);
    assert.match(jsonError(r).message, /does not exist/);
    assert.match(jsonError(r).hint ?? "", /Create the directory/);
    assert.doesNotMatch(r.stderr, /ENOENT|links/);
  });

  it("keygen never leaves a secret key without its .pub when the .pub cannot be written", async () => {
    const dir = join(work, "blocked");
    await mkdir(join(dir, "k.pub", "occupied"), { recursive: true }); // the .pub path is a directory
    const r = await run(["keygen", "--out", join(dir, "k"), "--unencrypted", "--force"]);
    assert.equal(r.code, 1);
    assert.deepEqual((await readdir(dir)).sort(), ["k.pub"]); // no secret key, no temp file
  });

  it("sign refuses an expiry in the past and writes no signature", async () => {
    const fresh = await makePackage(PLUGIN);
    try {
      for (const expires of ["2020-01-01", "0d"]) {
        const r = await run(["sign", fresh, "--key", key, "--expires", expires], PASS);
        assert.equal(r.code, 2, expires);
        assert.match(r.stderr, /--expires/);
      }
      await assert.rejects(stat(join(fresh, "plugin.sig")), { code: "ENOENT" });
    } finally {
      await removeDir(fresh);
    }
  });

  it("sign with the .pub as --key says it is a public key, without chmod advice", async () => {
    const r = await run(["sign", pkg, "--key", `${key}.pub`, "--json"], PASS);
    assert.equal(r.code, 1);
    assert.match(jsonError(r).message, /is a public key/);
    assert.doesNotMatch(r.stderr, /chmod/);
  });

  it("sign on a broken manifest lists every issue on its own line; --json carries them and the hint", async () => {
    const broken = await makePackage({
      "plugin.json": JSON.stringify({ name: "Bad Name", version: "one" }),
    });
    try {
      const r = await run(["sign", broken, "--key", key], PASS);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^ {2}- name: /m);
      assert.match(r.stderr, /^ {2}- version: /m);
      assert.match(r.stderr, /^hint: /m);
      const j = await run(["sign", broken, "--key", key, "--json"], PASS);
      const error = JSON.parse(j.stdout).error;
      assert.equal(error.code, "ERR_MANIFEST_INVALID");
      assert.ok(error.issues.some((i: { path: string }) => i.path === "name"));
      assert.equal(typeof error.hint, "string");
    } finally {
      await removeDir(broken);
    }
  });

  it("sign and verify on a missing directory say so, with no hint about links", async () => {
    for (
      const args of [["sign", join(work, "gone"), "--key", key], ["verify", join(work, "gone")]]
    ) {
      const r = await run([...args, "--json"], PASS);
      const what = args.join(" ");
      assert.equal(r.code, 1, what);
      assert.match(jsonError(r).message, /does not exist/, what);
      assert.doesNotMatch(jsonError(r).hint ?? "", /links/, what);
    }
  });
});

describe("bulkhead trust: notes and repeated edits", () => {
  it("add notes the key derivation, says when a key is already trusted, list says where it looked, revoke takes a positional key id", async () => {
    const list = join(work, "notes.bin");
    const missing = await run(["trust", "list", "--json"], LIST_PASS);
    assert.equal(missing.code, 0, missing.stderr);
    assert.equal(
      JSON.parse(missing.stdout).path,
      join(work, ".config", "bulkhead", "trust-list.bin"),
    );
    const args = ["trust", "add", "--key", `${key}.pub`, "--list", list, "--scrypt-log2n", "10"];
    const first = await run([...args, "--json"], LIST_PASS);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /^note: deriving the trust list key/m);
    assert.equal(JSON.parse(first.stdout).alreadyTrusted, false);
    const second = await run(args, LIST_PASS);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /already trusted/);
    const l = await run(["trust", "list", "--list", list], LIST_PASS);
    assert.match(l.stdout, new RegExp(`^Trust list ${list}$`, "m"));
    assert.match(l.stdout, /bulkhead-ed25519:[0-9a-f]{16}:/);
    const keyId = (await readFile(`${key}.pub`, "utf8")).split(":")[1]!;
    const r = await run(["trust", "revoke", keyId, "--list", list, "--json"], LIST_PASS);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { revoked: "key", id: keyId, alreadyRevoked: false });
    const byFile = await run(
      ["trust", "revoke", `${key}.pub`, "--list", list, "--json"],
      LIST_PASS,
    );
    assert.equal(byFile.code, 0, byFile.stderr);
    assert.equal(JSON.parse(byFile.stdout).alreadyRevoked, true);
  });
});
