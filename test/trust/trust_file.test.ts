import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  addTrustedKey,
  decryptTrustList,
  emptyTrustList,
  encryptTrustList,
  generateKeyPair,
  openTrustList,
  revokeDigest,
  type TrustList,
  writeFileAtomic,
} from "../../lib/trust/mod.ts";
import { PluginError } from "../../lib/errors.ts";
import { removeDir, runtimeCommand, tempDir } from "../fixtures/trust/make_package.ts";

const cleanup: string[] = [];
after(async () => {
  for (const dir of cleanup) await removeDir(dir);
});

const FAST = { scryptLog2N: 10 }; // small N keeps tests fast; the default is 2^17
const PASS = { passphrase: "correct horse battery staple" };
const isListError = (e: unknown) => e instanceof PluginError && e.code === "ERR_TRUST_LIST";

function sampleList(): TrustList {
  let list = addTrustedKey(emptyTrustList(), generateKeyPair().publicKey, { note: "release" });
  list = revokeDigest(list, "ab".repeat(64), { reason: "bad" });
  return list;
}

async function dir(): Promise<string> {
  const d = await tempDir();
  cleanup.push(d);
  return d;
}

describe("encryptTrustList() / decryptTrustList()", () => {
  it("round-trips with a passphrase and with a raw key", async () => {
    const list = sampleList();
    const a = await encryptTrustList(list, PASS, FAST);
    assert.deepEqual(await decryptTrustList(a, PASS), list);
    const key = new Uint8Array(randomBytes(32));
    const b = await encryptTrustList(list, { key });
    assert.deepEqual(await decryptTrustList(b, { key }), list);
  });

  it("writes an opaque file with a versioned header and a fresh nonce each time", async () => {
    const list = sampleList();
    const a = await encryptTrustList(list, PASS, FAST);
    const b = await encryptTrustList(list, PASS, FAST);
    assert.equal(new TextDecoder().decode(a.subarray(0, 7)), "BHTRUST");
    assert.equal(a[8], 1);
    assert.equal(a[10], 10);
    assert.notDeepEqual(a.subarray(32, 56), b.subarray(32, 56));
    assert.equal(Buffer.from(a).includes(Buffer.from("release")), false);
  });

  it("refuses a wrong passphrase", async () => {
    const data = await encryptTrustList(sampleList(), PASS, FAST);
    await assert.rejects(decryptTrustList(data, { passphrase: "wrong" }), isListError);
  });

  it("refuses a wrong raw key and a key file for a passphrase list", async () => {
    const data = await encryptTrustList(sampleList(), { key: new Uint8Array(32).fill(1) });
    await assert.rejects(decryptTrustList(data, { key: new Uint8Array(32).fill(2) }), isListError);
    await assert.rejects(decryptTrustList(data, PASS), isListError);
    const pdata = await encryptTrustList(sampleList(), PASS, FAST);
    await assert.rejects(decryptTrustList(pdata, { key: new Uint8Array(32) }), isListError);
  });

  it("refuses every truncation", async () => {
    const data = await encryptTrustList(sampleList(), PASS, FAST);
    for (const len of [0, 4, 8, 55, 56, 71, data.length - 1]) {
      await assert.rejects(
        decryptTrustList(data.subarray(0, len), PASS),
        isListError,
        `len ${len}`,
      );
    }
  });

  it("refuses a flipped bit anywhere in header or body", async () => {
    const key = { key: new Uint8Array(randomBytes(32)) };
    const data = await encryptTrustList(sampleList(), key);
    for (let i = 0; i < data.length; i += 7) {
      const bad = data.slice();
      bad[i]! ^= 0x10;
      await assert.rejects(decryptTrustList(bad, key), isListError, `byte ${i}`);
    }
  });

  it("refuses a flipped bit in the scrypt parameters", async () => {
    const data = await encryptTrustList(sampleList(), PASS, FAST);
    for (const i of [10, 11, 12, 13, 20]) {
      const bad = data.slice();
      bad[i]! ^= 0x01;
      await assert.rejects(decryptTrustList(bad, PASS), isListError, `byte ${i}`);
    }
  });

  it("refuses foreign files", async () => {
    const foreign = [
      new TextEncoder().encode(JSON.stringify(emptyTrustList())),
      new Uint8Array(randomBytes(200)),
      new Uint8Array(0),
    ];
    for (const data of foreign) await assert.rejects(decryptTrustList(data, PASS), isListError);
  });

  it("refuses absurd scrypt parameters before running the KDF", async () => {
    const data = await encryptTrustList(sampleList(), PASS, FAST);
    const bad = data.slice();
    bad[10] = 40; // N = 2^40
    await assert.rejects(decryptTrustList(bad, PASS), isListError);
  });
});

describe("openTrustList()", () => {
  it("fails on a missing file unless create is set, then saves and reopens", async () => {
    const path = join(await dir(), "trust.bin");
    await assert.rejects(openTrustList(path, PASS), isListError);
    const file = await openTrustList(path, PASS, { ...FAST, create: true });
    assert.equal(file.existed, false);
    const list = sampleList();
    await file.save(list);
    assert.deepEqual(file.list, list);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const again = await openTrustList(path, PASS);
    assert.deepEqual(again.list, list);
    assert.equal(again.existed, true);
  });

  it("refuses to save an invalid list and keeps the old one", async () => {
    const path = join(await dir(), "trust.bin");
    const file = await openTrustList(path, PASS, { ...FAST, create: true });
    await file.save(sampleList());
    const broken = { ...sampleList(), entries: "nope" } as unknown as TrustList;
    await assert.rejects(file.save(broken), isListError);
    assert.deepEqual((await openTrustList(path, PASS)).list.keys.length, 1);
  });

  it("still opens the old list when a partial temp file was left by a crash", async () => {
    const d = await dir();
    const path = join(d, "trust.bin");
    const file = await openTrustList(path, PASS, { ...FAST, create: true });
    const list = sampleList();
    await file.save(list);
    const full = await readFile(path);
    const temps = async () => (await readdir(d)).filter((f) => f.endsWith(".tmp"));
    await writeFile(join(d, ".trust.bin.999.abcdef.tmp"), full.subarray(0, 40));
    // Opening reads the old list and removes the stale temp file.
    assert.deepEqual((await openTrustList(path, PASS)).list, list);
    assert.deepEqual(await temps(), []);
    // Writing works next to a stale temp file and removes it too. Saving an empty copy removes
    // nothing (removals are explicit, through update()), so the list is unchanged.
    await writeFile(join(d, ".trust.bin.998.abcdef.tmp"), full.subarray(0, 40));
    await file.save(emptyTrustList());
    assert.deepEqual((await openTrustList(path, PASS)).list, list);
    assert.deepEqual(await temps(), []);
  });

  it("leaves an intact list when the writing process is killed mid-write", async () => {
    const d = await dir();
    const path = join(d, "trust.bin");
    const keyBytes = new Uint8Array(randomBytes(32));
    const key = { key: keyBytes };
    await (await openTrustList(path, key, { create: true })).save(sampleList());
    const script = fileURLToPath(new URL("../fixtures/trust/write_loop.ts", import.meta.url));
    const [cmd, args] = runtimeCommand(script, [path, Buffer.from(keyBytes).toString("hex")]);
    let killedDuringWrite = 0;
    // Kill the writer as soon as its temp file appears (it is then writing or fsyncing), until a
    // kill has demonstrably landed before the rename: the temp file is still there afterwards.
    for (let round = 0; round < 10 && killedDuringWrite === 0; round++) {
      const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
      const exited = new Promise((ok) => child.on("exit", ok));
      await new Promise<void>((ok) => child.stdout!.once("data", () => ok()));
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        if ((await readdir(d)).some((f) => f.endsWith(".tmp"))) break;
      }
      child.kill("SIGKILL");
      await exited;
      const temps = (await readdir(d)).filter((f) => f.endsWith(".tmp"));
      if (temps.length > 0) killedDuringWrite++;
      const list = (await openTrustList(path, key)).list;
      // The writer's 40,000 revocations merged with the one already in the list.
      assert.equal(list.revokedDigests.length, 40_001);
      assert.match(list.highestVersions.generation ?? "", /^\d+\.0\.0$/);
    }
    assert.ok(killedDuringWrite > 0, "no kill landed while a temp file existed");
  });
});

describe("writeFileAtomic()", () => {
  it("replaces the file and leaves no temp file behind", async () => {
    const d = await dir();
    const path = join(d, "f.bin");
    await writeFileAtomic(path, new Uint8Array([1]));
    await writeFileAtomic(path, new Uint8Array([2, 3]));
    assert.deepEqual(new Uint8Array(await readFile(path)), new Uint8Array([2, 3]));
    assert.deepEqual(await readdir(d), ["f.bin"]);
  });
});
