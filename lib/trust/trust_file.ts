/**
 * The trust list encrypted at rest, shared safely by every process that uses it.
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
 * Every write is a locked read-merge-write: take `<list>.lock` (`_lock.ts`), re-read the file,
 * merge (revocations and highest versions only grow, additions are added, removals are explicit
 * edits through {@link TrustListFile.update}), write a temp file in the same directory (mode 0600),
 * fsync, rename it over the list, fsync the directory, release. A crash at any point leaves the old
 * or the new list; a temp file left by a killed writer is removed by the next open or write.
 *
 * The nonce is fresh for every write, so it is also the file's write id: checking whether another
 * process changed the list reads 56 bytes and decrypts only when the id moved. That is how a store
 * built from {@link TrustListFile.list} sees a revocation before its next decision.
 *
 * First use and loss are told apart by a marker, `<list>.created`, written after the first write
 * (and added to older lists when they are opened). A missing list with a marker was lost or deleted:
 * opening it, even with `create`, fails with `ERR_TRUST_LIST` instead of starting empty, which
 * would silently drop its revocations and downgrade protection.
 *
 * @example
 * ```ts
 * import { openTrustList } from "./trust_file.ts";
 * import { addTrustedKey, removeTrustedKey } from "./trust_list.ts";
 * const file = await openTrustList("trust.bin", { passphrase: "correct horse" }, { create: true });
 * await file.save(addTrustedKey(file.list, publicKey));
 * await file.update((list) => removeTrustedKey(list, oldKeyId).list);
 * ```
 * @module
 */

import { randomBytes, scrypt as nodeScrypt, scryptSync } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { scrypt as nobleScrypt, scryptAsync } from "@noble/hashes/scrypt.js";
import { PluginError } from "../errors.ts";
import { bytesEqual, toHex, utf8 } from "./_encoding.ts";
import { acquireLock, tryAcquireLock } from "./_lock.ts";
import {
  emptyTrustList,
  mergeTrustLists,
  type TrustedKeyRecord,
  type TrustEntry,
  type TrustList,
  validateTrustList,
} from "./trust_list.ts";

/** How the trust list key is obtained: a passphrase (scrypt) or a raw 32-byte key. */
export type TrustSecret = { passphrase: string } | { key: Uint8Array };

/** Options for writing a new encrypted file. */
export interface TrustFileOptions {
  /** scrypt log2(N) for a new file (default 17, range 10–22). Opening reads it from the header. */
  scryptLog2N?: number;
}

/** Options for {@link openTrustList}. */
export interface OpenTrustListOptions extends TrustFileOptions {
  /**
   * Start from an empty list when the file does not exist yet (default false: ERR_TRUST_LIST).
   * Never applies to a list that existed (its `<list>.created` marker is there).
   */
  create?: boolean;
  /** How long a write waits for another writer's lock, ms (default 15 000). */
  lockTimeoutMs?: number;
}

/** An open trust list: its contents and ways to change it with the same key. */
export interface TrustListFile {
  /** Absolute path of the file. */
  readonly path: string;
  /** The list as last read, refreshed or written. */
  readonly list: TrustList;
  /** Whether the file existed when opened. */
  readonly existed: boolean;
  /**
   * Merges `list` into the list on disk under the lock and writes the result (fresh nonce).
   * Keys and entries that `list` adds or changes relative to what this handle has read are
   * written; revocations are united and highest versions raised. Nothing is removed, so saving a
   * stale copy never undoes another process's revocation or removal: use {@link update} to remove.
   *
   * @param list a list derived from {@link list}
   * @throws {PluginError} ERR_TRUST_LIST when `list` is invalid, the file is unreadable or lost,
   *   or another writer holds the lock too long
   */
  save(list: TrustList): Promise<void>;
  /**
   * Runs `edit` on the current list under the lock and writes its result: the way to remove keys
   * and entries. Revocations and highest versions still only grow. Nothing is written when the
   * edit changes nothing; when it throws, the error propagates and nothing is written. `edit` must
   * not write the same list itself (it would wait for its own lock).
   *
   * @param edit pure function from the current list to the new one
   * @returns the list as written
   * @throws {PluginError} ERR_TRUST_LIST as for {@link save}
   */
  update(edit: (current: TrustList) => TrustList): Promise<TrustList>;
  /**
   * Re-reads the list when another process changed it (a 56-byte read when it did not).
   *
   * @returns true when {@link list} changed
   * @throws {PluginError} ERR_TRUST_LIST when the file became unreadable or was lost
   */
  refresh(): Promise<boolean>;
}

const MAGIC = utf8("BHTRUST\0");
const FORMAT_VERSION = 1;
const KDF_RAW = 0;
const KDF_SCRYPT = 1;
const HEADER_LEN = 56;
const NONCE_AT = 32;
const TAG_LEN = 16;
const DEFAULT_LOG2N = 17;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const MAX_SCRYPT_MEM = 1024 * 1024 * 1024;
const MARKER_SUFFIX = ".created";
const TEMP_RE = /^\.(.+)\.\d+\.[0-9a-f]+\.tmp$/;

interface KdfParams {
  kdf: number;
  log2N: number;
  r: number;
  p: number;
  salt: Uint8Array;
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

function listError(state: string, cause?: unknown): PluginError {
  return new PluginError("ERR_TRUST_LIST", `Cannot open trust list: ${state}`, {
    hint: "Check BULKHEAD_TRUST_PASSPHRASE or the key file, or restore the list from a backup",
    cause,
  });
}

function lostError(path: string): PluginError {
  return new PluginError(
    "ERR_TRUST_LIST",
    `Cannot open trust list: "${path}" existed but is missing`,
    {
      hint: `Restore it from a backup. To start over with an empty list, which drops its ` +
        `revocations and downgrade protection, delete "${path}${MARKER_SUFFIX}"`,
    },
  );
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

async function deriveKey(secret: TrustSecret, params: KdfParams): Promise<Uint8Array> {
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

/** Only for a list re-created under new KDF parameters while a store follows it (rare). */
function deriveKeySync(secret: TrustSecret, params: KdfParams): Uint8Array {
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
  return { params, nonce: data.slice(NONCE_AT, HEADER_LEN) };
}

function sameParams(a: KdfParams, b: KdfParams): boolean {
  return a.kdf === b.kdf && a.log2N === b.log2N && a.r === b.r && a.p === b.p &&
    bytesEqual(a.salt, b.salt);
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

function decryptWithKey(data: Uint8Array, key: Uint8Array, nonce: Uint8Array): TrustList {
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
  const { params, nonce } = parseHeader(data);
  return decryptWithKey(data, await deriveKey(secret, params), nonce);
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

function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${toHex(randomBytes(6))}.tmp`);
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
  const tmp = tempName(target);
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
  await syncDir(dirname(target));
}

async function staleTemps(target: string): Promise<string[]> {
  const base = basename(target);
  const names = await readdir(dirname(target)).catch((e) =>
    codeOf(e) === "ENOENT" ? [] : Promise.reject(e)
  );
  return names.filter((n) => TEMP_RE.exec(n)?.[1] === base).map((n) => join(dirname(target), n));
}

/**
 * Removes temp files of `target` (by the {@link writeFileAtomic} name pattern) that are not newer
 * than the lock: every writer holds the lock while its temp file exists, so under the lock any
 * older one was left by a writer that was killed.
 */
async function removeStaleTemps(target: string, lockMtimeMs: number): Promise<void> {
  for (const path of await staleTemps(target)) {
    const s = await stat(path).catch((e) => codeOf(e) === "ENOENT" ? undefined : Promise.reject(e));
    if (s === undefined || s.mtimeMs > lockMtimeMs) continue;
    await unlink(path).catch((e) => codeOf(e) === "ENOENT" ? undefined : Promise.reject(e));
  }
}

async function cleanTempsOnOpen(target: string): Promise<void> {
  if ((await staleTemps(target)).length === 0) return;
  let lock;
  try {
    lock = await tryAcquireLock(target);
  } catch (error) {
    // A read-only location can still be read; the temp files cannot be removed from it anyway.
    if (["EACCES", "EPERM", "EROFS"].includes(codeOf(error) ?? "")) return;
    throw error;
  }
  if (lock === undefined) return; // a live writer holds it and cleans up under it
  try {
    await removeStaleTemps(target, lock.mtimeMs);
  } finally {
    await lock.release();
  }
}

function markerPath(target: string): string {
  return `${target}${MARKER_SUFFIX}`;
}

async function hasMarker(target: string): Promise<boolean> {
  return await stat(markerPath(target)).then(
    () => true,
    (e) => codeOf(e) === "ENOENT" ? false : Promise.reject(e),
  );
}

/**
 * Whether a trust list was ever written at `path` (its `<path>.created` marker exists), so that a
 * caller which treats a missing list as "none yet" can tell first use from loss: when this is
 * true, open the list (and let a missing one fail with ERR_TRUST_LIST) instead of skipping it.
 *
 * @param path list file
 * @returns true when the list existed
 * @example
 * ```ts
 * if (existsSync(path) || await hasTrustListMarker(path)) file = await openTrustList(path, secret);
 * ```
 */
export function hasTrustListMarker(path: string): Promise<boolean> {
  return hasMarker(resolve(path));
}

function hasMarkerSync(target: string): boolean {
  try {
    statSync(markerPath(target));
    return true;
  } catch (error) {
    if (codeOf(error) === "ENOENT") return false;
    throw error;
  }
}

const MARKER_TEXT = JSON.stringify({
  format: "bulkhead-trust-marker/1",
  meaning: "the trust list next to this file exists; if it goes missing, bulkhead refuses to " +
    "start a new empty one (delete this file to allow that)",
}) + "\n";

async function ensureMarker(target: string, readOnlyOk: boolean): Promise<void> {
  const handle = await open(markerPath(target), "wx", 0o600).catch((e) => {
    if (codeOf(e) === "EEXIST") return undefined;
    // Opening a list in a read-only location must keep working; it cannot be lost from there.
    if (readOnlyOk && ["EACCES", "EPERM", "EROFS"].includes(codeOf(e) ?? "")) return undefined;
    return Promise.reject(e);
  });
  if (handle === undefined) return;
  try {
    await handle.writeFile(MARKER_TEXT);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncDir(dirname(target));
}

type Read = { kind: "missing" } | { kind: "same" } | { kind: "data"; data: Uint8Array };

function cannotRead(path: string, error: unknown): PluginError {
  return listError(`"${path}" cannot be read (${codeOf(error) ?? "error"})`, error);
}

async function readAt(handle: FileHandle, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

function readAtSync(fd: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

function isSame(head: Uint8Array, known: Uint8Array | undefined): boolean {
  return known !== undefined && head.length === HEADER_LEN &&
    bytesEqual(head.subarray(NONCE_AT), known);
}

/** Reads the list file unless its write id (nonce) is `known`. The file is only ever renamed over,
 * never changed in place, so one open file is one consistent version. */
async function readChanged(path: string, known: Uint8Array | undefined): Promise<Read> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return { kind: "missing" };
    throw cannotRead(path, error);
  }
  try {
    const size = (await handle.stat()).size;
    if (isSame(await readAt(handle, Math.min(size, HEADER_LEN)), known)) return { kind: "same" };
    return { kind: "data", data: await readAt(handle, size) };
  } catch (error) {
    throw cannotRead(path, error);
  } finally {
    await handle.close();
  }
}

function readChangedSync(path: string, known: Uint8Array | undefined): Read {
  let fd;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return { kind: "missing" };
    throw cannotRead(path, error);
  }
  try {
    const size = fstatSync(fd).size;
    if (isSame(readAtSync(fd, Math.min(size, HEADER_LEN)), known)) return { kind: "same" };
    return { kind: "data", data: readAtSync(fd, size) };
  } catch (error) {
    throw cannotRead(path, error);
  } finally {
    closeSync(fd);
  }
}

/** Lists handed out by an open file, so that a store built from one can follow the file. */
const FOLLOW = new WeakMap<TrustList, () => TrustList>();

/**
 * For a list obtained from {@link TrustListFile.list}: a function that re-reads the file when it
 * changed (synchronously: trust decisions are synchronous) and returns the current list.
 *
 * @param list a list
 * @returns the follower, or undefined for a list that did not come from an open file
 * @example
 * ```ts
 * const current = followerOf(file.list)?.() ?? file.list;
 * ```
 */
export function followerOf(list: TrustList): (() => TrustList) | undefined {
  return FOLLOW.get(list);
}

function fingerprint(record: TrustedKeyRecord | TrustEntry): string {
  return JSON.stringify(record);
}

interface HandleInit {
  path: string;
  secret: TrustSecret;
  params: KdfParams;
  key: Uint8Array;
  list: TrustList;
  nonce: Uint8Array | undefined;
  lockTimeoutMs: number | undefined;
}

class OpenList implements TrustListFile {
  readonly path: string;
  readonly existed: boolean;
  #secret: TrustSecret;
  #params: KdfParams;
  #key: Uint8Array;
  #lockTimeoutMs: number | undefined;
  #list: TrustList = emptyTrustList();
  /** Write id of the version {@link #list} came from; undefined while the file never existed. */
  #nonce: Uint8Array | undefined;
  /** Every key and entry this handle has read or written: what a caller's copy can hold without
   * having added it. */
  #seen = new Set<string>();

  constructor(init: HandleInit) {
    this.path = init.path;
    this.existed = init.nonce !== undefined;
    this.#secret = init.secret;
    this.#params = init.params;
    this.#key = init.key;
    this.#lockTimeoutMs = init.lockTimeoutMs;
    this.#adopt(init.list, init.nonce);
  }

  get list(): TrustList {
    return this.#list;
  }

  async save(list: TrustList): Promise<void> {
    const ours = validateTrustList(structuredClone(list));
    const isNew = (r: TrustedKeyRecord | TrustEntry) => !this.#seen.has(fingerprint(r));
    const added = new Set([...ours.keys, ...ours.entries].filter(isNew).map(fingerprint));
    await this.#write((current) =>
      mergeTrustLists(current, ours, { isNew: (r) => added.has(fingerprint(r)) })
    );
  }

  update(edit: (current: TrustList) => TrustList): Promise<TrustList> {
    return this.#write((current) => {
      const edited = validateTrustList(structuredClone(edit(structuredClone(current))));
      const next = mergeTrustLists(edited, current, { isNew: () => false });
      return JSON.stringify(next) === JSON.stringify(current) ? current : next;
    });
  }

  async refresh(): Promise<boolean> {
    const before = this.#list;
    const read = await readChanged(this.path, this.#nonce);
    if (read.kind === "missing") this.#onMissing(await hasMarker(this.path));
    else if (read.kind === "data") {
      const { params } = parseHeader(read.data);
      const same = sameParams(params, this.#params);
      this.#accept(read.data, same ? this.#key : await deriveKey(this.#secret, params));
    }
    return this.#list !== before;
  }

  #refreshSync(): TrustList {
    const read = readChangedSync(this.path, this.#nonce);
    if (read.kind === "missing") this.#onMissing(hasMarkerSync(this.path));
    else if (read.kind === "data") {
      const { params } = parseHeader(read.data);
      const same = sameParams(params, this.#params);
      this.#accept(read.data, same ? this.#key : deriveKeySync(this.#secret, params));
    }
    return this.#list;
  }

  #onMissing(marked: boolean): void {
    if (this.#nonce !== undefined || marked) throw lostError(this.path);
    // First use: nothing was ever written, the list stays empty.
  }

  #accept(data: Uint8Array, key: Uint8Array): void {
    const { params, nonce } = parseHeader(data);
    const list = decryptWithKey(data, key, nonce);
    this.#params = params;
    this.#key = key;
    this.#adopt(list, nonce);
  }

  #adopt(list: TrustList, nonce: Uint8Array | undefined): void {
    for (const r of [...list.keys, ...list.entries]) this.#seen.add(fingerprint(r));
    this.#list = list;
    this.#nonce = nonce;
    FOLLOW.set(list, () => this.#refreshSync());
  }

  async #write(merge: (current: TrustList) => TrustList): Promise<TrustList> {
    if (this.#nonce === undefined) {
      // First use: the list's directory (e.g. ~/.config/bulkhead) may not exist yet.
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    }
    const timeout = this.#lockTimeoutMs;
    const lock = await acquireLock(this.path, timeout === undefined ? {} : { timeoutMs: timeout });
    try {
      await removeStaleTemps(this.path, lock.mtimeMs);
      await this.refresh();
      const current = this.#list;
      const next = merge(current);
      if (next === current && this.#nonce !== undefined) return current;
      const data = encryptWith(this.#key, this.#params, next);
      await writeFileAtomic(this.path, data);
      await ensureMarker(this.path, false);
      this.#adopt(next, data.slice(NONCE_AT, HEADER_LEN));
      return next;
    } finally {
      await lock.release();
    }
  }
}

/**
 * Opens an encrypted trust list. The derived key is kept in the returned object so that saving and
 * refreshing do not run scrypt again (each write still uses a fresh nonce). Temp files left by a
 * killed writer are removed first.
 *
 * @param path list file
 * @param secret passphrase or raw 32-byte key
 * @param options `create` to start from an empty list when the file does not exist yet; scrypt
 *   cost for a new file; lock wait
 * @returns the open list
 * @throws {PluginError} ERR_TRUST_LIST when the file is missing (without `create`, or at all once
 *   it has existed), unreadable, the key is wrong, or the content is corrupted or foreign
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
  await cleanTempsOnOpen(abs);
  const read = await readChanged(abs, undefined);
  const lockTimeoutMs = options.lockTimeoutMs;
  if (read.kind !== "data") {
    if (await hasMarker(abs)) throw lostError(abs);
    if (options.create !== true) throw listError(`"${abs}" cannot be read (ENOENT)`);
    const params = newParams(secret, options);
    const key = await deriveKey(secret, params);
    const list = emptyTrustList();
    return new OpenList({ path: abs, secret, params, key, list, nonce: undefined, lockTimeoutMs });
  }
  const { params, nonce } = parseHeader(read.data);
  const key = await deriveKey(secret, params);
  const list = decryptWithKey(read.data, key, nonce);
  await ensureMarker(abs, true);
  return new OpenList({ path: abs, secret, params, key, list, nonce, lockTimeoutMs });
}
