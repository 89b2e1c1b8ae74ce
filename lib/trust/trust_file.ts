/**
 * The trust list encrypted at rest, written atomically.
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
 * Writes go to a temporary file in the same directory (mode 0600), which is fsynced, renamed over
 * the list, and the directory fsynced: a crash at any point leaves either the old or the new list.
 *
 * @example
 * ```ts
 * import { openTrustList } from "./trust_file.ts";
 * import { addTrustedKey } from "./trust_list.ts";
 * const file = await openTrustList("trust.bin", { passphrase: "correct horse" }, { create: true });
 * await file.save(addTrustedKey(file.list, publicKey));
 * ```
 * @module
 */

import { randomBytes, scrypt as nodeScrypt } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { PluginError } from "../errors.ts";
import { toHex, utf8 } from "./_encoding.ts";
import { emptyTrustList, type TrustList, validateTrustList } from "./trust_list.ts";

/** How the trust list key is obtained: a passphrase (scrypt) or a raw 32-byte key. */
export type TrustSecret = { passphrase: string } | { key: Uint8Array };

/** Options for writing a new encrypted file. */
export interface TrustFileOptions {
  /** scrypt log2(N) for a new file (default 17, range 10–22). Opening reads it from the header. */
  scryptLog2N?: number;
}

/** Options for {@link openTrustList}. */
export interface OpenTrustListOptions extends TrustFileOptions {
  /** Return an empty list when the file does not exist (default false: ERR_TRUST_LIST). */
  create?: boolean;
}

/** An open trust list: its contents and a way to save a new version with the same key. */
export interface TrustListFile {
  /** Absolute path of the file. */
  readonly path: string;
  /** The list as last read or saved. */
  readonly list: TrustList;
  /** Whether the file existed when opened. */
  readonly existed: boolean;
  /**
   * Encrypts `list` (fresh nonce) and atomically replaces the file.
   *
   * @param list the new list
   */
  save(list: TrustList): Promise<void>;
}

const MAGIC = utf8("BHTRUST\0");
const FORMAT_VERSION = 1;
const KDF_RAW = 0;
const KDF_SCRYPT = 1;
const HEADER_LEN = 56;
const TAG_LEN = 16;
const DEFAULT_LOG2N = 17;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const MAX_SCRYPT_MEM = 1024 * 1024 * 1024;

interface KdfParams {
  kdf: number;
  log2N: number;
  r: number;
  p: number;
  salt: Uint8Array;
}

function listError(state: string, cause?: unknown): PluginError {
  return new PluginError("ERR_TRUST_LIST", `Cannot open trust list: ${state}`, {
    hint: "Check BULKHEAD_TRUST_PASSPHRASE or the key file, or restore the list from a backup",
    cause,
  });
}

async function deriveKey(secret: TrustSecret, params: KdfParams): Promise<Uint8Array> {
  if ("key" in secret) {
    if (params.kdf !== KDF_RAW) throw listError("it is protected by a passphrase, not a key file");
    if (!(secret.key instanceof Uint8Array) || secret.key.length !== 32) {
      throw new TypeError("Cannot open trust list: key must be 32 bytes");
    }
    return secret.key;
  }
  if (params.kdf !== KDF_SCRYPT) throw listError("it is protected by a key file, not a passphrase");
  if (typeof secret.passphrase !== "string" || secret.passphrase.length === 0) {
    throw new TypeError("Cannot open trust list: passphrase must be a non-empty string");
  }
  const password = utf8(secret.passphrase.normalize("NFC"));
  const N = 2 ** params.log2N;
  const { r, p, salt } = params;
  try {
    return await new Promise<Uint8Array>((ok, fail) => {
      // node:crypto needs maxmem above 128 * N * r (its default is 32 MiB).
      const maxmem = 128 * N * r * 2 + 1024 * 1024;
      nodeScrypt(password, salt, 32, { N, r, p, maxmem }, (err, key) => {
        if (err) fail(err);
        else ok(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
      });
    });
  } catch {
    return scryptAsync(password, salt, { N, r, p, dkLen: 32, maxmem: MAX_SCRYPT_MEM * 2 });
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
  header.set(nonce, 32);
  return header;
}

function parseHeader(data: Uint8Array): { params: KdfParams; nonce: Uint8Array } {
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
  return { params, nonce: data.slice(32, HEADER_LEN) };
}

function encryptWith(key: Uint8Array, params: KdfParams, list: TrustList): Uint8Array {
  const nonce = new Uint8Array(randomBytes(24));
  const header = buildHeader(params, nonce);
  const sealed = xchacha20poly1305(key, nonce, header).encrypt(utf8(JSON.stringify(list)));
  const out = new Uint8Array(HEADER_LEN + sealed.length);
  out.set(header, 0);
  out.set(sealed, HEADER_LEN);
  return out;
}

function newParams(secret: TrustSecret, options: TrustFileOptions): KdfParams {
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

async function decryptWithParams(
  data: Uint8Array,
  secret: TrustSecret,
): Promise<{ list: TrustList; key: Uint8Array; params: KdfParams }> {
  const { params, nonce } = parseHeader(data);
  const key = await deriveKey(secret, params);
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
  return { list: validateTrustList(value), key, params };
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
  return encryptWith(await deriveKey(secret, params), params, list);
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
  return (await decryptWithParams(data, secret)).list;
}

async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch {
    // Some platforms cannot open or fsync a directory; the rename itself is still atomic.
  } finally {
    await handle?.close();
  }
}

/**
 * Writes bytes to a file atomically: temp file (0600) in the same directory, fsync, rename, fsync
 * of the directory. On failure the temp file is removed and the old file is untouched.
 *
 * @param path target file
 * @param data bytes to write
 * @param options `mode` of the new file (default 0600)
 * @returns when the data is durable
 * @example
 * ```ts
 * await writeFileAtomic("trust.bin", bytes);
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: { mode?: number } = {},
): Promise<void> {
  const target = resolve(path);
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${toHex(randomBytes(6))}.tmp`);
  const mode = options.mode ?? 0o600;
  const handle = await open(tmp, "wx", mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.chmod(mode); // the umask may have cleared bits the caller asked for
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  await syncDir(dir);
}

/**
 * Opens an encrypted trust list. The derived key is kept in the returned object so that saving does
 * not run scrypt again (each save still uses a fresh nonce).
 *
 * @param path list file
 * @param secret passphrase or raw 32-byte key
 * @param options `create` to start from an empty list when the file is missing; scrypt cost for a
 *   new file
 * @returns the open list
 * @throws {PluginError} ERR_TRUST_LIST when the file is missing (without `create`), unreadable,
 *   the key is wrong, or the content is corrupted or foreign
 * @example
 * ```ts
 * const file = await openTrustList(path, { passphrase: process.env.BULKHEAD_TRUST_PASSPHRASE! });
 * ```
 */
export async function openTrustList(
  path: string,
  secret: TrustSecret,
  options: OpenTrustListOptions = {},
): Promise<TrustListFile> {
  const abs = resolve(path);
  let data: Uint8Array | undefined;
  try {
    data = new Uint8Array(await readFile(abs));
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== "ENOENT" || options.create !== true) {
      throw listError(`"${abs}" cannot be read (${code ?? "error"})`, error);
    }
  }
  let state: { list: TrustList; key: Uint8Array; params: KdfParams };
  if (data === undefined) {
    const params = newParams(secret, options);
    state = { list: emptyTrustList(), key: await deriveKey(secret, params), params };
  } else {
    state = await decryptWithParams(data, secret);
  }
  const existed = data !== undefined;
  return {
    path: abs,
    existed,
    get list() {
      return state.list;
    },
    async save(list: TrustList): Promise<void> {
      const valid = validateTrustList(structuredClone(list));
      await writeFileAtomic(abs, encryptWith(state.key, state.params, valid));
      state = { ...state, list: valid };
    },
  };
}
