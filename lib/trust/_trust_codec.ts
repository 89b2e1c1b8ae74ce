/**
 * Private to `lib/trust`: the trust list's on-disk format and its crypto, bytes in and bytes out
 * (no file I/O; `trust_file.ts` does that).
 *
 * File layout (all integers unsigned, big-endian); the 56-byte header is the AEAD's associated
 * data, so no header byte can be changed without detection:
 *
 * | offset | size | field                                            |
 * | -----: | ---: | ------------------------------------------------ |
 * |      0 |    8 | magic `BHTRUST\0`                                |
 * |      8 |    1 | format version, 1                                |
 * |      9 |    1 | KDF: 0 = raw 32-byte key, 1 = scrypt             |
 * |     10 |    1 | scrypt log2(N) (0 for raw)                       |
 * |     11 |    1 | scrypt r                                         |
 * |     12 |    1 | scrypt p                                         |
 * |     13 |    3 | reserved, zero                                   |
 * |     16 |   16 | scrypt salt (zero for raw)                       |
 * |     32 |   24 | XChaCha20 nonce, fresh random for every write    |
 * |     56 |    … | XChaCha20-Poly1305 ciphertext of the list's JSON |
 *
 * The key comes from a passphrase (scrypt, default N = 2^17, r = 8, p = 1; `node:crypto` scrypt,
 * noble as fallback) or is a raw 32-byte key. A wrong key, a truncated, bit-flipped or foreign file
 * all fail with `ERR_TRUST_LIST`; a partial list is never returned.
 *
 * The nonce is fresh for every write, so it is also the file's write id ({@link writeIdOf}): a
 * reader that knows the id of the version it holds can tell from the 56-byte header alone whether
 * the file changed.
 *
 * @example
 * ```ts
 * import { decryptTrustList, encryptTrustList } from "./_trust_codec.ts";
 * const bytes = await encryptTrustList(list, { passphrase: "correct horse" });
 * const same = await decryptTrustList(bytes, { passphrase: "correct horse" });
 * ```
 * @module
 */

import { randomBytes, scrypt as nodeScrypt, scryptSync } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { scrypt as nobleScrypt, scryptAsync } from "@noble/hashes/scrypt.js";
import { PluginError } from "../errors.ts";
import { bytesEqual, utf8 } from "./_encoding.ts";
import { type TrustList, validateTrustList } from "./trust_list.ts";

/** How the trust list key is obtained: a passphrase (scrypt) or a raw 32-byte key. */
export type TrustSecret = { passphrase: string } | { key: Uint8Array };

/** Options for writing a new encrypted file. */
export interface TrustFileOptions {
  /** scrypt log2(N) for a new file (default 17, range 10–22). Opening reads it from the header. */
  scryptLog2N?: number;
}

/** Key derivation parameters, as stored in the header. */
export interface KdfParams {
  /** 0 = raw 32-byte key, 1 = scrypt. */
  kdf: number;
  /** scrypt log2(N); 0 for a raw key. */
  log2N: number;
  /** scrypt r; 0 for a raw key. */
  r: number;
  /** scrypt p; 0 for a raw key. */
  p: number;
  /** scrypt salt, 16 bytes; zero for a raw key. */
  salt: Uint8Array;
}

/** Length of the header, which is also the length a write-id check reads. */
export const HEADER_LEN = 56;

const MAGIC = utf8("BHTRUST\0");
const FORMAT_VERSION = 1;
const KDF_RAW = 0;
const KDF_SCRYPT = 1;
const NONCE_AT = 32;
const TAG_LEN = 16;
const DEFAULT_LOG2N = 17;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const MAX_SCRYPT_MEM = 1024 * 1024 * 1024;

/**
 * The error for a list that cannot be opened.
 *
 * @param state what is wrong, completing "Cannot open trust list: "
 * @param cause the underlying error
 * @returns an ERR_TRUST_LIST error
 */
export function listError(state: string, cause?: unknown): PluginError {
  return new PluginError("ERR_TRUST_LIST", `Cannot open trust list: ${state}`, {
    hint: "Check BULKHEAD_TRUST_PASSPHRASE or the key file, or restore the list from a backup",
    cause,
  });
}

function rawKey(secret: { key: Uint8Array }, params: KdfParams): Uint8Array {
  if (params.kdf !== KDF_RAW) throw listError("it is protected by a passphrase, not a key file");
  if (!(secret.key instanceof Uint8Array) || secret.key.length !== 32) {
    throw new TypeError("Cannot open trust list: key must be 32 bytes");
  }
  return secret.key;
}

function scryptInput(secret: { passphrase: string }, params: KdfParams) {
  if (params.kdf !== KDF_SCRYPT) throw listError("it is protected by a key file, not a passphrase");
  if (typeof secret.passphrase !== "string" || secret.passphrase.length === 0) {
    throw new TypeError("Cannot open trust list: passphrase must be a non-empty string");
  }
  const N = 2 ** params.log2N;
  // node:crypto needs maxmem above 128 * N * r (its default is 32 MiB).
  const maxmem = 128 * N * params.r * 2 + 1024 * 1024;
  return { password: utf8(secret.passphrase.normalize("NFC")), N, maxmem, ...params };
}

/**
 * Derives the file key from the secret (scrypt off the main thread where `node:crypto` has it).
 *
 * @param secret passphrase or raw key
 * @param params the header's KDF parameters
 * @returns the 32-byte key
 * @throws {PluginError} ERR_TRUST_LIST when the secret is of the other kind than the file's
 */
export async function deriveKey(secret: TrustSecret, params: KdfParams): Promise<Uint8Array> {
  if ("key" in secret) return rawKey(secret, params);
  const { password, salt, N, r, p, maxmem } = scryptInput(secret, params);
  try {
    return await new Promise<Uint8Array>((ok, fail) => {
      nodeScrypt(password, salt, 32, { N, r, p, maxmem }, (err, key) => {
        if (err) fail(err);
        else ok(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
      });
    });
  } catch {
    return scryptAsync(password, salt, { N, r, p, dkLen: 32, maxmem: MAX_SCRYPT_MEM * 2 });
  }
}

/**
 * {@link deriveKey}, blocking. Only for a list re-created under new KDF parameters while a store
 * follows it (rare): trust decisions are synchronous.
 *
 * @param secret passphrase or raw key
 * @param params the header's KDF parameters
 * @returns the 32-byte key
 * @throws {PluginError} ERR_TRUST_LIST as for {@link deriveKey}
 */
export function deriveKeySync(secret: TrustSecret, params: KdfParams): Uint8Array {
  if ("key" in secret) return rawKey(secret, params);
  const { password, salt, N, r, p, maxmem } = scryptInput(secret, params);
  try {
    const key = scryptSync(password, salt, 32, { N, r, p, maxmem });
    return new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
  } catch {
    return nobleScrypt(password, salt, { N, r, p, dkLen: 32, maxmem: MAX_SCRYPT_MEM * 2 });
  }
}

function checkLog2N(log2N: number): number {
  if (!Number.isInteger(log2N) || log2N < 10 || log2N > 22) {
    throw new RangeError("Cannot write trust list: scryptLog2N must be an integer in 10..22");
  }
  return log2N;
}

function buildHeader(params: KdfParams, nonce: Uint8Array): Uint8Array {
  const header = new Uint8Array(HEADER_LEN);
  header.set(MAGIC, 0);
  header[8] = FORMAT_VERSION;
  header[9] = params.kdf;
  header[10] = params.log2N;
  header[11] = params.r;
  header[12] = params.p;
  header.set(params.salt, 16);
  header.set(nonce, NONCE_AT);
  return header;
}

/**
 * Reads and bounds-checks the header, before any key derivation.
 *
 * @param data file bytes
 * @returns the KDF parameters and the nonce (the write id)
 * @throws {PluginError} ERR_TRUST_LIST when the bytes are foreign, truncated, of another format
 *   version or demand out-of-range scrypt work
 */
export function parseHeader(data: Uint8Array): { params: KdfParams; nonce: Uint8Array } {
  if (data.length < MAGIC.length || !MAGIC.every((b, i) => data[i] === b)) {
    throw listError("it is not a bulkhead trust list (bad magic bytes)");
  }
  if (data.length < HEADER_LEN + TAG_LEN) throw listError("the file is truncated");
  if (data[8] !== FORMAT_VERSION) throw listError(`format version "${data[8]}" is not supported`);
  const params: KdfParams = {
    kdf: data[9]!,
    log2N: data[10]!,
    r: data[11]!,
    p: data[12]!,
    salt: data.slice(16, 32),
  };
  if (params.kdf === KDF_SCRYPT) {
    // Bound the work a crafted header can demand before authentication.
    const mem = 128 * 2 ** params.log2N * params.r;
    const sane = params.log2N >= 10 && params.log2N <= 22 && params.r >= 1 && params.p >= 1 &&
      params.p <= 16 && mem <= MAX_SCRYPT_MEM;
    if (!sane) throw listError("its scrypt parameters are out of range");
  } else if (params.kdf !== KDF_RAW) {
    throw listError(`key derivation "${params.kdf}" is not supported`);
  }
  return { params, nonce: data.slice(NONCE_AT, HEADER_LEN) };
}

/**
 * Whether two headers derive the same key from the same secret.
 *
 * @param a parameters
 * @param b parameters
 * @returns true when a key derived for `a` opens a file written with `b`
 */
export function sameParams(a: KdfParams, b: KdfParams): boolean {
  return a.kdf === b.kdf && a.log2N === b.log2N && a.r === b.r && a.p === b.p &&
    bytesEqual(a.salt, b.salt);
}

/**
 * The write id of file bytes written by {@link sealTrustList}: their nonce.
 *
 * @param data file bytes, at least the header
 * @returns the 24-byte id
 */
export function writeIdOf(data: Uint8Array): Uint8Array {
  return data.slice(NONCE_AT, HEADER_LEN);
}

/**
 * Whether the first bytes of a file are the header of the version with write id `known`.
 *
 * @param head up to {@link HEADER_LEN} bytes from the start of the file
 * @param known the write id of the version held, or undefined for none
 * @returns true when the file is that version
 */
export function isWriteId(head: Uint8Array, known: Uint8Array | undefined): boolean {
  return known !== undefined && head.length === HEADER_LEN &&
    bytesEqual(head.subarray(NONCE_AT), known);
}

/**
 * Fresh KDF parameters (random salt) for a new file.
 *
 * @param secret passphrase or raw key
 * @param options scrypt cost
 * @returns parameters for {@link deriveKey} and {@link sealTrustList}
 * @throws {RangeError} when `scryptLog2N` is out of range
 */
export function newParams(secret: TrustSecret, options: TrustFileOptions): KdfParams {
  if ("key" in secret) {
    return { kdf: KDF_RAW, log2N: 0, r: 0, p: 0, salt: new Uint8Array(16) };
  }
  const log2N = checkLog2N(options.scryptLog2N ?? DEFAULT_LOG2N);
  return {
    kdf: KDF_SCRYPT,
    log2N,
    r: SCRYPT_R,
    p: SCRYPT_P,
    salt: new Uint8Array(randomBytes(16)),
  };
}

/**
 * Encrypts a list with an already derived key under a fresh nonce.
 *
 * @param key the key derived for `params`
 * @param params the KDF parameters to record in the header
 * @param list the list
 * @returns the file bytes
 */
export function sealTrustList(key: Uint8Array, params: KdfParams, list: TrustList): Uint8Array {
  const nonce = new Uint8Array(randomBytes(24));
  const header = buildHeader(params, nonce);
  const sealed = xchacha20poly1305(key, nonce, header).encrypt(utf8(JSON.stringify(list)));
  const out = new Uint8Array(HEADER_LEN + sealed.length);
  out.set(header, 0);
  out.set(sealed, HEADER_LEN);
  return out;
}

/**
 * Authenticates, decrypts and validates file bytes with an already derived key.
 *
 * @param data file bytes
 * @param key the key derived for the header's parameters
 * @param nonce the header's nonce
 * @returns the list, complete or not at all
 * @throws {PluginError} ERR_TRUST_LIST when the key is wrong, the bytes were modified or the
 *   content is not a valid list
 */
export function openSealedTrustList(
  data: Uint8Array,
  key: Uint8Array,
  nonce: Uint8Array,
): TrustList {
  let plain: Uint8Array;
  try {
    plain = xchacha20poly1305(key, nonce, data.subarray(0, HEADER_LEN))
      .decrypt(data.subarray(HEADER_LEN));
  } catch (error) {
    throw listError("wrong passphrase or key, or the file is corrupted", error);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch (error) {
    throw listError("the decrypted content is not JSON", error);
  }
  return validateTrustList(value);
}

/**
 * Encrypts a trust list into the file format above (fresh salt and nonce).
 *
 * @param list the list
 * @param secret passphrase or raw key
 * @param options scrypt cost for a passphrase
 * @returns the file bytes
 * @throws {RangeError} when `scryptLog2N` is out of range
 * @example
 * ```ts
 * const bytes = await encryptTrustList(emptyTrustList(), { key: randomKey });
 * ```
 */
export async function encryptTrustList(
  list: TrustList,
  secret: TrustSecret,
  options: TrustFileOptions = {},
): Promise<Uint8Array> {
  const params = newParams(secret, options);
  return sealTrustList(await deriveKey(secret, params), params, list);
}

/**
 * Decrypts and validates trust list file bytes.
 *
 * @param data file bytes
 * @param secret passphrase or raw key
 * @returns the list, complete or not at all
 * @throws {PluginError} ERR_TRUST_LIST when the key is wrong or the bytes are truncated,
 *   modified, foreign or not a valid list
 * @example
 * ```ts
 * const list = await decryptTrustList(bytes, { passphrase });
 * ```
 */
export async function decryptTrustList(data: Uint8Array, secret: TrustSecret): Promise<TrustList> {
  const { params, nonce } = parseHeader(data);
  return openSealedTrustList(data, await deriveKey(secret, params), nonce);
}
