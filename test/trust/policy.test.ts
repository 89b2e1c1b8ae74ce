import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  addTrustedKey,
  addTrustEntry,
  createSignature,
  emptyTrustList,
  formatPublicKey,
  generateKeyPair,
  recordVersion,
  removeTrustedKey,
  removeTrustEntry,
  resolvePolicy,
  revokeDigest,
  revokeKey,
  validateTrustList,
} from "../../lib/trust/mod.ts";
import { PluginError } from "../../lib/errors.ts";
import { resolvePinnedKeys } from "../../lib/trust/policy.ts";

describe("resolvePolicy()", () => {
  it("resolves the three presets", () => {
    const dev = resolvePolicy("development");
    assert.equal(dev.requireSignature, false);
    assert.equal(dev.allowDowngrade, true);
    const std = resolvePolicy("standard");
    assert.equal(std.requireSignature, true);
    assert.equal(std.allowDowngrade, false);
    assert.equal(std.requireEnforcement, false);
    const strict = resolvePolicy("strict");
    assert.equal(strict.requireSignature, true);
    assert.equal(strict.requireEnforcement, true);
    assert.equal(strict.isolation, "process");
    assert.equal(strict.tightenLimits, "strict");
    assert.ok(strict.package.maxPackageBytes < std.package.maxPackageBytes);
    assert.deepEqual(resolvePolicy(), std);
  });

  it("applies custom overrides on top of a preset", () => {
    const p = resolvePolicy({
      extends: "strict",
      allowDowngrade: true,
      package: { maxPackageFiles: 5 },
    });
    assert.equal(p.name, "custom");
    assert.equal(p.allowDowngrade, true);
    assert.equal(p.requireEnforcement, true);
    assert.equal(p.package.maxPackageFiles, 5);
    assert.equal(resolvePolicy({ tightenLimits: 0.5 }).tightenLimits, 0.5);
  });

  it("rejects unknown presets and wrong types", () => {
    assert.throws(() => resolvePolicy("lax" as "strict"), TypeError);
    assert.throws(() => resolvePolicy({ extends: "lax" as "strict" }), TypeError);
    assert.throws(
      () => resolvePolicy({ requireSignature: "yes" as unknown as boolean }),
      TypeError,
    );
    assert.throws(() => resolvePolicy({ isolation: "vm" as "worker" }), TypeError);
    assert.throws(() => resolvePolicy({ package: { maxPackageBytes: -1 } }), RangeError);
    assert.throws(() => resolvePolicy({ tightenLimits: 2 }), TypeError);
  });
});

describe("trust list edits", () => {
  it("never mutate their input", () => {
    const list = emptyTrustList();
    const copy = structuredClone(list);
    addTrustedKey(list, generateKeyPair().publicKey);
    revokeDigest(list, "cd".repeat(64));
    revokeKey(list, "0123456789abcdef");
    recordVersion(list, "x", "1.0.0");
    assert.deepEqual(list, copy);
  });

  it("add, remove and revoke keys and entries", () => {
    const key = generateKeyPair();
    let list = addTrustedKey(emptyTrustList(), key.publicKey, { note: "n" });
    assert.equal(list.keys[0]?.keyId, key.keyId);
    assert.equal(list.keys[0]?.note, "n");
    list = addTrustedKey(list, key.publicKey);
    assert.equal(list.keys.length, 1);
    const sig = createSignature(
      { name: "p", version: "2.0.0", digest: "ef".repeat(64) },
      key.secretKey,
    );
    list = addTrustEntry(list, sig);
    assert.equal(list.entries.length, 1);
    assert.equal(list.highestVersions.p, "2.0.0");
    let removed: number;
    ({ list, removed } = removeTrustEntry(list, "p", "1.0.0"));
    assert.equal(removed, 0);
    ({ list, removed } = removeTrustEntry(list, "p"));
    assert.equal(removed, 1);
    ({ list, removed } = removeTrustedKey(list, key.keyId));
    assert.equal(removed, 1);
    list = revokeKey(list, key.publicKey, { reason: "leak" });
    assert.deepEqual(list.revokedKeys.map((k) => [k.keyId, k.reason]), [[key.keyId, "leak"]]);
    assert.throws(() => revokeDigest(list, "xyz"), TypeError);
    assert.throws(() => revokeKey(list, "nothex"), TypeError);
  });

  it("refuse small-order keys", () => {
    assert.throws(
      () => addTrustedKey(emptyTrustList(), "01" + "00".repeat(31)),
      (e: unknown) => e instanceof PluginError && e.code === "ERR_SIGNATURE_INVALID",
    );
  });

  it("only raise the highest version", () => {
    let list = recordVersion(emptyTrustList(), "p", "1.5.0");
    list = recordVersion(list, "p", "1.2.0");
    assert.equal(list.highestVersions.p, "1.5.0");
    list = recordVersion(list, "p", "1.10.0");
    assert.equal(list.highestVersions.p, "1.10.0");
  });
});

describe("validateTrustList()", () => {
  it("rejects malformed data with ERR_TRUST_LIST", () => {
    const bad = [
      null,
      {},
      { ...emptyTrustList(), version: 2 },
      { ...emptyTrustList(), keys: [{}] },
      {
        ...emptyTrustList(),
        highestVersions: { p: 1 },
      },
    ];
    for (const value of bad) {
      assert.throws(
        () => validateTrustList(value),
        (e: unknown) => e instanceof PluginError && e.code === "ERR_TRUST_LIST",
      );
    }
    assert.deepEqual(validateTrustList(emptyTrustList()), emptyTrustList());
  });
});

describe("resolvePinnedKeys()", () => {
  it("accepts the .pub line, the bare hex key and raw bytes, in order", () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const c = generateKeyPair();
    const keys = resolvePinnedKeys([
      `${formatPublicKey(a.publicKey)}\n`,
      Buffer.from(b.publicKey).toString("hex"),
      c.publicKey,
    ]);
    assert.deepEqual(keys, [a.publicKey, b.publicKey, c.publicKey]);
    assert.deepEqual(resolvePinnedKeys(undefined), []);
  });

  it("refuses a malformed key or a path with a TypeError naming the expected form", () => {
    const expected = (re: RegExp) => (e: unknown) =>
      e instanceof TypeError && /bulkhead-ed25519:<key id>:<base64>/.test(e.message) &&
      re.test(e.message);
    assert.throws(() => resolvePinnedKeys(["nope"]), expected(/"pinnedKeys\.0"/));
    assert.throws(
      () => resolvePinnedKeys([formatPublicKey(generateKeyPair().publicKey), "./release.key.pub"]),
      expected(/"pinnedKeys\.1".*looks like a path/),
    );
    assert.throws(() => resolvePinnedKeys("abc"), expected(/must be an array/));
    assert.throws(() => resolvePinnedKeys([42]), expected(/"pinnedKeys\.0"/));
  });
});
