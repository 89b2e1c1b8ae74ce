/**
 * Ed25519 keys: generation, key ids, strict public-key validation and fast verification.
 *
 * Keys are generated and messages signed with `@noble/ed25519`. Verification uses `node:crypto`
 * (`crypto.verify(null, ...)`, present in Deno, Bun and Node, 10–20x faster than noble) and falls
 * back to noble with RFC 8032 strict semantics (`zip215: false`) when the runtime lacks Ed25519.
 *
 * Native verifiers accept small-order and non-canonical public keys, with which a signature can
 * verify for many messages. Such keys are therefore rejected when a key is trusted or pinned, by
 * {@link parsePublicKey}: the encoding must be canonical (`y < p`, no negative zero), the point must
 * not be of small order and must lie in the prime-order subgroup. Signatures with a non-canonical
 * scalar (`S >= L`) are rejected before the native call.
 *
 * The key id is the first 16 hex characters (64 bits) of SHA3-512 of the 32-byte public key. It
 * only selects a key: verification always uses the full trusted key.
 *
 * A public key has one text form, written by {@link formatPublicKey} and read everywhere a key is
 * taken: `bulkhead-ed25519:<key id>:<base64 of the 32 bytes>`, one line, like minisign's public
 * keys (a named algorithm, the key id a human compares, the key). The bare key as 64 hex
 * characters stays accepted.
 *
 * @example
 * ```ts
 * import { createVerifier, generateKeyPair, signMessage } from "./keys.ts";
 * const { secretKey, publicKey, keyId } = generateKeyPair();
 * const msg = new TextEncoder().encode("hi");
 * createVerifier(publicKey).verify(msg, signMessage(msg, secretKey)); // true
 * ```
 * @module
 */

import { createPublicKey, type KeyObject, verify as nativeVerify } from "node:crypto";
import * as ed from "@noble/ed25519";
import { sha512 } from "@noble/hashes/sha2.js";
import { PluginError } from "../errors.ts";
import { decodeFixed, toBase64, toHex } from "./_encoding.ts";
import { sha3_512Bytes } from "./digest.ts";

/** A freshly generated Ed25519 key pair. */
export interface KeyPair {
  /** 32-byte secret seed; keep it private. */
  secretKey: Uint8Array;
  /** 32-byte public key. */
  publicKey: Uint8Array;
  /** {@link keyIdOf} the public key. */
  keyId: string;
}

/** Verifies signatures under one public key. */
export interface Verifier {
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** {@link keyIdOf} the public key. */
  readonly keyId: string;
  /** True when `signature` (64 bytes) is valid for `message`. */
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

function useSyncSha512(): void {
  // noble v3's sync API needs a SHA-512; set on use rather than at import (no import side effects).
  if (ed.hashes.sha512 === undefined) ed.hashes.sha512 = sha512;
}

/**
 * Generates an Ed25519 key pair from the runtime's secure random source.
 *
 * @returns secret key, public key and key id
 * @example
 * ```ts
 * const { keyId } = generateKeyPair();
 * ```
 */
export function generateKeyPair(): KeyPair {
  useSyncSha512();
  const { secretKey, publicKey } = ed.keygen();
  return { secretKey, publicKey, keyId: keyIdOf(publicKey) };
}

/**
 * Derives the public key of a 32-byte secret key.
 *
 * @param secretKey 32-byte secret seed
 * @returns 32-byte public key
 * @throws {TypeError} when the secret key is not 32 bytes
 * @example
 * ```ts
 * const pub = publicKeyFromSecret(generateKeyPair().secretKey);
 * ```
 */
export function publicKeyFromSecret(secretKey: Uint8Array): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw new TypeError("Cannot derive public key: secret key must be 32 bytes");
  }
  useSyncSha512();
  return ed.getPublicKey(secretKey);
}

/**
 * Signs bytes with Ed25519 (deterministic, RFC 8032).
 *
 * @param message bytes to sign
 * @param secretKey 32-byte secret seed
 * @returns 64-byte signature
 * @throws {TypeError} when the secret key is not 32 bytes
 * @example
 * ```ts
 * signMessage(new Uint8Array([1]), generateKeyPair().secretKey).length; // 64
 * ```
 */
export function signMessage(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw new TypeError("Cannot sign: secret key must be 32 bytes");
  }
  useSyncSha512();
  return ed.sign(message, secretKey);
}

/**
 * Computes a key id: the first 16 hex characters of SHA3-512 of the raw public key.
 *
 * @param publicKey 32-byte public key
 * @returns 16 lowercase hex characters
 * @example
 * ```ts
 * keyIdOf(generateKeyPair().publicKey).length; // 16
 * ```
 */
export function keyIdOf(publicKey: Uint8Array): string {
  return toHex(sha3_512Bytes(publicKey)).slice(0, 16);
}

function badKey(state: string, cause?: unknown): PluginError {
  return new PluginError("ERR_SIGNATURE_INVALID", `Cannot use public key: ${state}`, {
    hint: "Pass the line of the `.pub` file from `bulkhead keygen` " +
      "(`bulkhead-ed25519:<key id>:<base64>`), or the key as 64 hex characters",
    cause,
  });
}

/** Prefix of the one-line text form of a public key ({@link formatPublicKey}). */
export const PUBLIC_KEY_PREFIX = "bulkhead-ed25519";

/** Format tag of the JSON `.pub` files written before the one-line form; still read. */
export const LEGACY_PUBLIC_KEY_FORMAT = "bulkhead-ed25519-public-v1";

const LINE_RE = /^bulkhead-ed25519:([0-9a-f]{16}):([A-Za-z0-9+/]{43}=)$/;

/** The bytes of a key written in one of the text forms, with the key id the text names. */
function decodeKeyText(text: string): { bytes: Uint8Array | undefined; keyId?: string } {
  const trimmed = text.trim();
  if (trimmed.startsWith(`${PUBLIC_KEY_PREFIX}:`)) {
    const m = LINE_RE.exec(trimmed);
    if (m === null) throw badKey(`it is not of the form "${PUBLIC_KEY_PREFIX}:<key id>:<base64>"`);
    return { bytes: decodeFixed(m[2]!, 32), keyId: m[1]! };
  }
  if (trimmed.startsWith("{")) {
    let json: { format?: unknown; keyId?: unknown; publicKey?: unknown } | null;
    try {
      json = JSON.parse(trimmed);
    } catch (error) {
      throw badKey('it starts with "{" but is not JSON', error);
    }
    if (json?.format !== LEGACY_PUBLIC_KEY_FORMAT || typeof json.publicKey !== "string") {
      throw badKey(`it is JSON but not a "${LEGACY_PUBLIC_KEY_FORMAT}" public key file`);
    }
    const bytes = decodeFixed(json.publicKey, 32);
    return typeof json.keyId === "string" ? { bytes, keyId: json.keyId } : { bytes };
  }
  return { bytes: decodeFixed(trimmed, 32) };
}

/**
 * Parses and strictly validates an Ed25519 public key. Use it for every key that becomes trusted
 * (trust list, pinned keys). Accepted text forms, surrounding whitespace ignored:
 *
 * - the one line of a `.pub` file, `bulkhead-ed25519:<key id>:<base64>` ({@link formatPublicKey});
 *   the key id must be the key's own, so a line edited by hand cannot name another key;
 * - the bare key as 64 hex characters, or as base64 / base64url;
 * - the JSON of a `.pub` file written by earlier versions (`"format": "bulkhead-ed25519-public-v1"`).
 *
 * @param key text in one of those forms, or the 32 raw bytes
 * @returns the 32 raw bytes
 * @throws {PluginError} ERR_SIGNATURE_INVALID when the key is malformed, names another key id,
 *   is non-canonical, not on the curve, of small order, or outside the prime-order subgroup
 * @example
 * ```ts
 * parsePublicKey(formatPublicKey(generateKeyPair().publicKey)).length; // 32
 * ```
 */
export function parsePublicKey(key: string | Uint8Array): Uint8Array {
  const decoded = typeof key === "string" ? decodeKeyText(key) : { bytes: key };
  const bytes = decoded.bytes;
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
    throw badKey("it is not 32 bytes of hex or base64");
  }
  let point: ed.Point;
  try {
    point = ed.Point.fromBytes(bytes, false); // strict RFC 8032 decoding: y < p, no x = -0
  } catch (error) {
    throw badKey("it is not a canonical curve point", error);
  }
  if (point.isSmallOrder()) throw badKey("it is a small-order point");
  if (!point.isTorsionFree()) throw badKey("it has a torsion component");
  if (decoded.keyId !== undefined && decoded.keyId !== keyIdOf(bytes)) {
    throw badKey(`it names key id "${decoded.keyId}" but the key's id is "${keyIdOf(bytes)}"`);
  }
  return new Uint8Array(bytes);
}

// L = 2^252 + 27742317777372353535851937790883648493, the order of the base point.
const ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

function isCanonicalScalar(signature: Uint8Array): boolean {
  const top = signature[63]!;
  if (top < 0x10) return true;
  if (top > 0x10) return false;
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]!);
  return s < ORDER;
}

let nativeEd25519: boolean | undefined;

function nativeKey(publicKey: Uint8Array): KeyObject | undefined {
  if (nativeEd25519 === false) return undefined;
  try {
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") },
      format: "jwk",
    });
    nativeEd25519 = true;
    return key;
  } catch {
    nativeEd25519 = false;
    return undefined;
  }
}

/**
 * Builds a verifier for one public key. Call {@link parsePublicKey} first for keys that come from
 * users; this function only checks the length.
 *
 * @param publicKey 32-byte public key
 * @returns a verifier that reuses one native key object
 * @throws {TypeError} when the key is not 32 bytes
 * @example
 * ```ts
 * const v = createVerifier(publicKey);
 * v.verify(message, signature);
 * ```
 */
export function createVerifier(publicKey: Uint8Array): Verifier {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new TypeError("Cannot create verifier: public key must be 32 bytes");
  }
  const pub = new Uint8Array(publicKey);
  const keyObject = nativeKey(pub);
  const verify = keyObject === undefined
    ? (message: Uint8Array, signature: Uint8Array): boolean => {
      if (signature.length !== 64 || !isCanonicalScalar(signature)) return false;
      useSyncSha512();
      return ed.verify(signature, message, pub, { zip215: false });
    }
    : (message: Uint8Array, signature: Uint8Array): boolean => {
      if (signature.length !== 64 || !isCanonicalScalar(signature)) return false;
      return nativeVerify(null, message, keyObject, signature);
    };
  return { publicKey: pub, keyId: keyIdOf(pub), verify };
}

/**
 * Formats a public key in its one text form, the line `bulkhead keygen` writes to the `.pub` file:
 * `bulkhead-ed25519:<key id>:<base64 of the 32 bytes>`. Every place that takes a key accepts it
 * (`--pin`, `trust add --key`, the host's `trust.pinnedKeys`, {@link parsePublicKey}).
 *
 * @param publicKey 32-byte key
 * @returns the line, without a newline
 * @throws {TypeError} when the key is not 32 bytes
 * @example
 * ```ts
 * formatPublicKey(generateKeyPair().publicKey); // "bulkhead-ed25519:3f0c…:q1w2…="
 * ```
 */
export function formatPublicKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new TypeError("Cannot format public key: it must be 32 bytes");
  }
  return `${PUBLIC_KEY_PREFIX}:${keyIdOf(publicKey)}:${toBase64(publicKey)}`;
}
