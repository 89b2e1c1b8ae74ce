import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestPackage, readSecretKeyFile } from "../../lib/trust/mod.ts";
import { main } from "../../lib/cli.ts";
import { makePackage, removeDir, tempDir } from "../fixtures/trust/make_package.ts";
import { type Run, runCli } from "./_cli_run.ts";

const MANIFEST = JSON.stringify({ name: "hello", version: "1.0.0", entry: "./index.js" });

function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runCli(args, { home: work, env });
}

let work = "";
let pkg = "";
let key = "";
let list = "";
const PASS = { BULKHEAD_TRUST_PASSPHRASE: "hunter2 but longer" };
const KEY_PASS = { BULKHEAD_PASSPHRASE: "correct horse battery staple" };

before(async () => {
  work = await tempDir("bulkhead-cli-");
  pkg = await makePackage({ "plugin.json": MANIFEST, "index.js": "export const hi = () => 1;\n" });
  key = join(work, "release.key");
  list = join(work, "trust.bin");
});

after(async () => {
  await removeDir(work);
  await removeDir(pkg);
});

describe("bulkhead CLI (child process)", () => {
  it("keygen writes a one-line .pub, an encrypted 0600 secret key, and never prints the secret", async () => {
    const r = await run(["keygen", "--out", key, "--json"], KEY_PASS);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.keyId, /^[0-9a-f]{16}$/);
    assert.equal(out.encrypted, true);
    assert.equal((await stat(key)).mode & 0o777, 0o600);
    // The .pub holds exactly the key's one line, the same text keygen printed.
    const pub = await readFile(`${key}.pub`, "utf8");
    assert.match(pub, /^bulkhead-ed25519:[0-9a-f]{16}:[A-Za-z0-9+/]{43}=\n$/);
    assert.equal(pub, `${out.publicKey}\n`);
    assert.equal(pub.split(":")[1], out.keyId);
    const file = JSON.parse(await readFile(key, "utf8"));
    assert.equal(file.format, "bulkhead-ed25519-secret-encrypted-v1");
    assert.equal(file.kdf.log2N, 17);
    // The seed appears in no encoding, neither on stdout nor in the file.
    const { secretKey } = await readSecretKeyFile(key, {
      passphrase: KEY_PASS.BULKHEAD_PASSPHRASE,
    });
    const text = await readFile(key, "utf8");
    for (const enc of ["base64", "hex", "base64url"] as const) {
      const secret = Buffer.from(secretKey).toString(enc);
      assert.equal(r.stdout.includes(secret), false, enc);
      assert.equal(text.includes(secret), false, enc);
    }
    // Refuses to overwrite without --force, and says so.
    const again = await run(["keygen", "--out", key], KEY_PASS);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    assert.match(again.stderr, /--force/);
    assert.doesNotMatch(again.stderr, /EEXIST/);
  });

  it("sign writes plugin.sig and verify accepts it pinned by the .pub path or its line", async () => {
    const s = await run(["sign", pkg, "--key", key, "--json"], KEY_PASS);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).digest, await digestPackage(pkg));
    const line = (await readFile(`${key}.pub`, "utf8")).trim();
    for (const pin of [`${key}.pub`, line, `${line}\n`]) {
      const v = await run(["verify", pkg, "--pin", pin, "--json"]);
      assert.equal(v.code, 0, v.stderr);
      const d = JSON.parse(v.stdout);
      assert.equal(d.state, "trusted");
      assert.equal(d.source, "pinned");
    }
  });

  it("verify exits 1 for an unknown key and for an unsigned package", async () => {
    const v = await run(["verify", pkg, "--json"]);
    assert.equal(v.code, 1);
    assert.equal(JSON.parse(v.stdout).code, "ERR_UNTRUSTED");
  });

  it("trust add --key, list, and verify through the encrypted list", async () => {
    const a = await run([
      "trust",
      "add",
      "--key",
      `${key}.pub`,
      "--list",
      list,
      "--scrypt-log2n",
      "10",
    ], PASS);
    assert.equal(a.code, 0, a.stderr);
    assert.equal((await stat(list)).mode & 0o777, 0o600);
    const l = await run(["trust", "list", "--list", list, "--json"], PASS);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(JSON.parse(l.stdout).keys.length, 1);
    const v = await run(["verify", pkg, "--list", list, "--json"], PASS);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(JSON.parse(v.stdout).source, "list");
  });

  it("fails with ERR_TRUST_LIST on a wrong or missing passphrase", async () => {
    const wrong = await run(["trust", "list", "--list", list, "--json"], {
      BULKHEAD_TRUST_PASSPHRASE: "wrong",
    });
    assert.equal(wrong.code, 1);
    assert.equal(JSON.parse(wrong.stdout).error.code, "ERR_TRUST_LIST");
    const missing = await run(["trust", "list", "--list", list]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ERR_TRUST_LIST/);
  });

  it("verify exits 1 after a file is tampered with", async () => {
    const original = await readFile(join(pkg, "index.js"));
    await writeFile(join(pkg, "index.js"), "export const hi = () => 2;\n");
    try {
      const v = await run(["verify", pkg, "--pin", `${key}.pub`, "--json"]);
      assert.equal(v.code, 1);
      assert.equal(JSON.parse(v.stdout).code, "ERR_SIGNATURE_INVALID");
    } finally {
      await writeFile(join(pkg, "index.js"), original);
    }
  });

  it("trust revoke --key makes verify fail, inspect still reports the package", async () => {
    const keyId = (await readFile(`${key}.pub`, "utf8")).split(":")[1]!;
    const r = await run(
      ["trust", "revoke", "--key", keyId, "--list", list, "--reason", "leak"],
      PASS,
    );
    assert.equal(r.code, 0, r.stderr);
    const v = await run(["verify", pkg, "--list", list, "--json"], PASS);
    assert.equal(v.code, 1);
    assert.equal(JSON.parse(v.stdout).state, "revoked");
    const i = await run(["inspect", pkg, "--list", list, "--json"], PASS);
    assert.equal(i.code, 0, i.stderr);
    const info = JSON.parse(i.stdout);
    assert.equal(info.name, "hello");
    assert.equal(info.signature.state, "revoked");
    assert.equal(info.digest, await digestPackage(pkg));
  });

  it("hash prints the package digest and a file digest", async () => {
    const r = await run(["hash", pkg, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).digest, await digestPackage(pkg));
    const f = await run(["hash", join(pkg, "index.js")]);
    assert.equal(f.code, 0);
    assert.match(f.stdout, /^[0-9a-f]{128} {2}/);
  });
});

describe("main() in process", () => {
  function capture() {
    let out = "";
    let err = "";
    return {
      io: {
        stdout: { write: (s: string) => out += s },
        stderr: { write: (s: string) => err += s },
        env: {},
      },
      out: () => out,
      err: () => err,
    };
  }

  it("prints help with exit 0 for every command", async () => {
    for (
      const cmd of [
        ["--help"],
        ["keygen", "--help"],
        ["sign", "--help"],
        ["verify", "--help"],
        [
          "hash",
          "--help",
        ],
        ["inspect", "--help"],
        ["trust", "--help"],
        ["trust", "add", "--help"],
      ]
    ) {
      const c = capture();
      assert.equal(await main(cmd, c.io), 0, cmd.join(" "));
      assert.match(c.out(), /Usage/);
    }
  });

  it("exits 2 on usage errors", async () => {
    for (
      const cmd of [[], ["nope"], ["hash"], ["hash", "--bogus", "x"], ["keygen"], ["trust", "zap"]]
    ) {
      const c = capture();
      assert.equal(await main(cmd, c.io), 2, cmd.join(" "));
    }
  });

  it("with the default list path, starts without a list but refuses one that existed and is gone", async () => {
    const config = join(work, "xdg");
    const env = { XDG_CONFIG_HOME: config, ...PASS };
    const listPath = join(config, "bulkhead", "trust-list.bin");
    const run = async (argv: string[]) => {
      const c = capture();
      const code = await main([...argv, "--json"], { ...c.io, env });
      return { code, out: c.out() === "" ? undefined : JSON.parse(c.out()) };
    };
    // First use: no list and no marker is "no list yet", not an error; it says where it looked.
    assert.deepEqual(await run(["trust", "list"]), {
      code: 0,
      out: { exists: false, path: listPath },
    });
    const keyOut = join(work, "default-path.key");
    assert.equal((await run(["keygen", "--out", keyOut, "--unencrypted"])).code, 0);
    const added = await run(["trust", "add", "--key", `${keyOut}.pub`, "--scrypt-log2n", "10"]);
    assert.equal(added.code, 0);
    assert.deepEqual((await readdir(join(config, "bulkhead"))).sort(), [
      "trust-list.bin",
      "trust-list.bin.created",
    ]);
    await rm(listPath);
    for (const argv of [["trust", "list"], ["verify", pkg], ["inspect", pkg]]) {
      const r = await run(argv);
      assert.equal(r.code, 1, argv.join(" "));
      assert.equal(r.out?.error?.code, "ERR_TRUST_LIST", argv.join(" "));
    }
  });

  it("never reads the passphrase from argv", async () => {
    const c = capture();
    assert.equal(await main(["trust", "list", "--passphrase", "x"], c.io), 2);
  });
});
