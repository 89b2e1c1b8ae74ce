import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as ed from "@noble/ed25519";
import { sha512 } from "@noble/hashes/sha2.js";
import {
  createTrustStore,
  createVerifier,
  formatPublicKey,
  generateKeyPair,
  keyIdOf,
  parsePublicKey,
  signMessage,
} from "../../lib/trust/mod.ts";
import { PluginError } from "../../lib/errors.ts";

const isBadKey = (e: unknown) => e instanceof PluginError && e.code === "ERR_SIGNATURE_INVALID";

// Encodings of the eight small-order points (and y = p, a non-canonical one).
const SMALL_ORDER = [
  "0100000000000000000000000000000000000000000000000000000000000000",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0000000000000000000000000000000000000000000000000000000000000080",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
];

// y = p + 3: decodes under ZIP-215 rules but is not the canonical encoding (y must be < p).
const NON_CANONICAL = "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
// y = 1 with the sign bit set: "negative zero" x, rejected by RFC 8032.
const NEGATIVE_ZERO = "0100000000000000000000000000000000000000000000000000000000000080";

describe("parsePublicKey()", () => {
  it("accepts a generated key as hex, base64, base64url and bytes", () => {
    const { publicKey } = generateKeyPair();
    const hex = Buffer.from(publicKey).toString("hex");
    assert.deepEqual(parsePublicKey(hex), publicKey);
    assert.deepEqual(parsePublicKey(Buffer.from(publicKey).toString("base64")), publicKey);
    assert.deepEqual(parsePublicKey(Buffer.from(publicKey).toString("base64url")), publicKey);
    assert.deepEqual(parsePublicKey(publicKey), publicKey);
  });

  it("rejects every small-order key", () => {
    for (const hex of SMALL_ORDER) assert.throws(() => parsePublicKey(hex), isBadKey, hex);
  });

  it("rejects non-canonical encodings", () => {
    assert.throws(() => parsePublicKey(NON_CANONICAL), isBadKey);
    assert.throws(() => parsePublicKey(NEGATIVE_ZERO), isBadKey);
    // The same point is accepted by lenient (ZIP-215) decoding, so the strict check matters.
    assert.doesNotThrow(() => ed.Point.fromHex(NON_CANONICAL, true));
  });

  it("rejects a key with a torsion component (mixed order)", () => {
    const { publicKey } = generateKeyPair();
    const torsion = ed.Point.fromHex(SMALL_ORDER[4]!);
    const mixed = ed.Point.fromBytes(publicKey).add(torsion).toBytes();
    assert.throws(() => parsePublicKey(mixed), isBadKey);
  });

  it("rejects malformed text", () => {
    assert.throws(() => parsePublicKey("zz"), isBadKey);
    assert.throws(() => parsePublicKey("00".repeat(31)), isBadKey);
    assert.throws(() => parsePublicKey(new Uint8Array(33)), isBadKey);
  });

  it("accepts the one-line form, with surrounding whitespace, and the legacy JSON .pub text", () => {
    const { publicKey, keyId } = generateKeyPair();
    const line = formatPublicKey(publicKey);
    assert.equal(line, `bulkhead-ed25519:${keyId}:${Buffer.from(publicKey).toString("base64")}`);
    assert.deepEqual(parsePublicKey(line), publicKey);
    assert.deepEqual(parsePublicKey(`  ${line}\n`), publicKey);
    const legacy = JSON.stringify({
      format: "bulkhead-ed25519-public-v1",
      keyId,
      publicKey: Buffer.from(publicKey).toString("base64"),
    });
    assert.deepEqual(parsePublicKey(legacy), publicKey);
  });

  it("rejects a line with another key id, a truncated key, or another algorithm's JSON", () => {
    const { publicKey } = generateKeyPair();
    const line = formatPublicKey(publicKey);
    assert.throws(
      () => parsePublicKey(line.replace(/:[0-9a-f]{16}:/, ":0000000000000000:")),
      isBadKey,
    );
    assert.throws(() => parsePublicKey(line.slice(0, -2)), isBadKey);
    assert.throws(() => parsePublicKey(`${line}:extra`), isBadKey);
    assert.throws(
      () => parsePublicKey(JSON.stringify({ format: "other", publicKey: "x" })),
      isBadKey,
    );
  });

  it("is applied to pinned keys", () => {
    assert.throws(() => createTrustStore({ pinnedKeys: [SMALL_ORDER[0]!] }), isBadKey);
    assert.throws(() => createTrustStore({ pinnedKeys: [NON_CANONICAL] }), isBadKey);
  });
});

describe("createVerifier()", () => {
  it("agrees with noble strict verification on valid and invalid signatures", () => {
    ed.hashes.sha512 ??= sha512;
    const { secretKey, publicKey } = generateKeyPair();
    const v = createVerifier(publicKey);
    for (let i = 0; i < 20; i++) {
      const msg = new TextEncoder().encode(`message ${i}`);
      const sig = signMessage(msg, secretKey);
      assert.equal(v.verify(msg, sig), true);
      assert.equal(ed.verify(sig, msg, publicKey, { zip215: false }), true);
      const bad = sig.slice();
      bad[i % 64]! ^= 1;
      assert.equal(v.verify(msg, bad), ed.verify(bad, msg, publicKey, { zip215: false }));
      assert.equal(v.verify(msg, bad), false);
    }
  });

  it("rejects a signature whose scalar is not reduced (S + L)", () => {
    const { secretKey, publicKey } = generateKeyPair();
    const msg = new TextEncoder().encode("m");
    const sig = signMessage(msg, secretKey);
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    s += 2n ** 252n + 27742317777372353535851937790883648493n;
    const mall = sig.slice();
    for (let i = 32; i < 64; i++) {
      mall[i] = Number(s & 0xffn);
      s >>= 8n;
    }
    assert.equal(createVerifier(publicKey).verify(msg, mall), false);
  });

  it("uses a 16-hex key id derived from the public key", () => {
    const { publicKey, keyId } = generateKeyPair();
    assert.match(keyId, /^[0-9a-f]{16}$/);
    assert.equal(keyIdOf(publicKey), keyId);
    assert.equal(createVerifier(publicKey).keyId, keyId);
  });
});
