import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { sha3_512 } from "@noble/hashes/sha3.js";
import {
  digestBytes,
  digestFile,
  digestFiles,
  digestPackage,
  packageListing,
  readPackage,
  writePackageCopy,
} from "../../lib/trust/mod.ts";
import { PluginError } from "../../lib/errors.ts";
import { makePackage, removeDir, tempDir } from "../fixtures/trust/make_package.ts";

const cleanup: string[] = [];
after(async () => {
  for (const dir of cleanup) await removeDir(dir);
});

async function pkg(files?: Record<string, string>): Promise<string> {
  const dir = await makePackage(files);
  cleanup.push(dir);
  return dir;
}

describe("digestBytes()", () => {
  it("equals sha3-512 from node:crypto and from @noble/hashes", () => {
    const data = new TextEncoder().encode("abc".repeat(1000));
    const native = createHash("sha3-512").update(data).digest("hex");
    assert.equal(digestBytes(data), native);
    assert.equal(digestBytes(data, { impl: "noble" }), native);
    assert.equal(Buffer.from(sha3_512(data)).toString("hex"), native);
  });
});

describe("digestPackage()", () => {
  it("gives the same digest with the native and the noble implementation", async () => {
    const dir = await pkg();
    assert.equal(await digestPackage(dir), await digestPackage(dir, { impl: "noble" }));
  });

  it("is stable and independent of file creation order", async () => {
    const a = await pkg({ "b.js": "2", "a.js": "1", "z/y.js": "3" });
    const b = await pkg({ "z/y.js": "3", "a.js": "1", "b.js": "2" });
    assert.equal(await digestPackage(a), await digestPackage(b));
  });

  it("changes when a file is tampered with", async () => {
    const dir = await pkg();
    const before = await digestPackage(dir);
    await writeFile(join(dir, "index.js"), "export function resize(x) { return x * 3; }\n");
    assert.notEqual(await digestPackage(dir), before);
  });

  it("changes when a file is added, even an empty one", async () => {
    const dir = await pkg();
    const before = await digestPackage(dir);
    await writeFile(join(dir, "lib/extra.js"), "");
    assert.notEqual(await digestPackage(dir), before);
  });

  it("changes when a file is renamed", async () => {
    const dir = await pkg();
    const before = await digestPackage(dir);
    await rename(join(dir, "lib/util.js"), join(dir, "lib/util2.js"));
    assert.notEqual(await digestPackage(dir), before);
  });

  it("changes when a file is removed", async () => {
    const dir = await pkg();
    const before = await digestPackage(dir);
    await rm(join(dir, "assets/data.bin"));
    assert.notEqual(await digestPackage(dir), before);
  });

  it("changes when a file moves to another directory", async () => {
    const dir = await pkg();
    const before = await digestPackage(dir);
    await mkdir(join(dir, "other"));
    await rename(join(dir, "lib/util.js"), join(dir, "other/util.js"));
    assert.notEqual(await digestPackage(dir), before);
  });

  it("skips only the root plugin.sig", async () => {
    const dir = await pkg();
    const before = await digestPackage(dir);
    await writeFile(join(dir, "plugin.sig"), "{}");
    assert.equal(await digestPackage(dir), before);
    await writeFile(join(dir, "lib/plugin.sig"), "{}");
    assert.notEqual(await digestPackage(dir), before);
  });

  it("refuses a package containing a symbolic link with ERR_MANIFEST_INVALID", async () => {
    const dir = await pkg();
    await symlink("/etc/hostname", join(dir, "lib/link.js"));
    await assert.rejects(
      digestPackage(dir),
      (e: unknown) => e instanceof PluginError && e.code === "ERR_MANIFEST_INVALID",
    );
  });

  it("refuses a symbolic link to a directory", async () => {
    const dir = await pkg();
    const other = await pkg({ "x.js": "1" });
    await symlink(other, join(dir, "linked"));
    await assert.rejects(
      digestPackage(dir),
      (e: unknown) => e instanceof PluginError && e.code === "ERR_MANIFEST_INVALID",
    );
  });

  it("refuses packages over maxBytes or maxFiles", async () => {
    const dir = await pkg();
    const isInvalid = (e: unknown) => e instanceof PluginError && e.code === "ERR_MANIFEST_INVALID";
    await assert.rejects(readPackage(dir, { maxBytes: 10 }), isInvalid);
    await assert.rejects(readPackage(dir, { maxFiles: 2 }), isInvalid);
  });

  it("refuses a missing directory", async () => {
    await assert.rejects(
      digestPackage("/nonexistent/bulkhead/pkg"),
      (e: unknown) => e instanceof PluginError && e.code === "ERR_MANIFEST_INVALID",
    );
  });
});

describe("packageListing()", () => {
  it("lists sorted paths with sizes and per-file digests", () => {
    const enc = new TextEncoder();
    const listing = packageListing(new Map([["b", enc.encode("xy")], ["a", enc.encode("")]]));
    const lines = listing.trimEnd().split("\n");
    assert.equal(lines[0], "bulkhead-package-digest-v1");
    assert.match(lines[1]!, /^[0-9a-f]{128} 0 "a"$/);
    assert.match(lines[2]!, /^[0-9a-f]{128} 2 "b"$/);
  });

  it("distinguishes names that contain separators or newlines", () => {
    const enc = new TextEncoder();
    const a = digestFiles(new Map([["x\n0 y", enc.encode("1")]]));
    const b = digestFiles(new Map([["x", enc.encode("1")], ["y", enc.encode("")]]));
    assert.notEqual(a, b);
  });
});

describe("digestFile()", () => {
  it("returns plain sha3-512 of the file and the bytes it hashed", async () => {
    const dir = await pkg();
    const file = join(dir, "assets/data.bin");
    const { digest, bytes } = await digestFile(file);
    assert.deepEqual(bytes, new Uint8Array(await readFile(file)));
    assert.equal(digest, createHash("sha3-512").update(bytes).digest("hex"));
  });

  it("refuses a symbolic link", async () => {
    const dir = await pkg();
    await symlink(join(dir, "index.js"), join(dir, "lib.so"));
    await assert.rejects(
      digestFile(join(dir, "lib.so")),
      (e: unknown) => e instanceof PluginError && e.code === "ERR_MANIFEST_INVALID",
    );
  });
});

describe("readPackage() and writePackageCopy()", () => {
  it("keeps plugin.sig out of files and returns it separately", async () => {
    const dir = await pkg();
    await writeFile(join(dir, "plugin.sig"), "sig");
    const snap = await readPackage(dir);
    assert.equal(snap.files.has("plugin.sig"), false);
    assert.equal(new TextDecoder().decode(snap.signature), "sig");
    assert.equal(snap.files.size, 4);
    const sum = [...snap.files.values()].reduce((n, b) => n + b.length, 0);
    assert.equal(snap.totalBytes, sum);
  });

  it("writes the verified bytes even when the original is swapped after reading", async () => {
    const dir = await pkg();
    const snap = await readPackage(dir);
    const original = await readFile(join(dir, "index.js"), "utf8");
    // The attacker swaps the file between verification and load.
    await writeFile(join(dir, "index.js"), "globalThis.pwned = true;\n");
    await writeFile(join(dir, "evil.js"), "globalThis.pwned = true;\n");
    const dest = join(await tempDir(), "copy");
    cleanup.push(dest);
    await writePackageCopy(snap, dest);
    assert.equal(await readFile(join(dest, "index.js"), "utf8"), original);
    await assert.rejects(stat(join(dest, "evil.js")), { code: "ENOENT" });
    assert.equal(await digestPackage(dest), snap.digest);
    assert.notEqual(await digestPackage(dir), snap.digest);
  });

  it("creates the copy with mode 0700 directories and 0400 files (0600 when writable)", async () => {
    const snap = await readPackage(await pkg());
    const dest = join(await tempDir(), "copy");
    cleanup.push(dest);
    await writePackageCopy(snap, dest);
    assert.equal((await stat(dest)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dest, "lib"))).mode & 0o777, 0o700);
    assert.equal((await stat(join(dest, "index.js"))).mode & 0o777, 0o400);
    const dest2 = join(await tempDir(), "copy");
    cleanup.push(dest2);
    await writePackageCopy(snap, dest2, { readOnly: false });
    assert.equal((await stat(join(dest2, "index.js"))).mode & 0o777, 0o600);
  });

  it("refuses a non-empty destination and unsafe paths", async () => {
    const snap = await readPackage(await pkg());
    const dest = await tempDir();
    cleanup.push(dest);
    await writeFile(join(dest, "x"), "1");
    await assert.rejects(writePackageCopy(snap, dest), RangeError);
    const bad = { ...snap, files: new Map([["../escape.js", new Uint8Array(1)]]) };
    const dest2 = join(await tempDir(), "copy");
    cleanup.push(dest2);
    await assert.rejects(writePackageCopy(bad, dest2), RangeError);
  });
});
