/**
 * Key files written by `bulkhead keygen`: a secret key file (JSON, mode 0600, encrypted with a
 * passphrase unless asked not to) and a public key file (`<name>.pub`), plus reading a public key
 * from a file or from text.
 *
 * The public key file holds one line, the key's one text form (`formatPublicKey` in `keys.ts`):
 * `bulkhead-ed25519:<key id>:<base64>\n`. The JSON public key files of earlier versions
 * (`{ "format": "bulkhead-ed25519-public-v1", ... }`) are still read.
 *
 * Encrypted secret key file, as minisign does it (scrypt, then an AEAD):
 * `{ "format": "bulkhead-ed25519-secret-encrypted-v1", "keyId", "publicKey", "kdf": { "name":
 * "scrypt", "log2N", "r": 8, "p": 1, "salt" }, "cipher": "xchacha20-poly1305", "nonce",
 * "secretKey" }`, byte fields base64. The key is scrypt (`@noble/hashes`, default N = 2^17) of the
 * NFC passphrase; `secretKey` is the 32-byte seed sealed with XChaCha20-Poly1305
 * (`@noble/ciphers`) under a fresh 24-byte nonce, with the canonical JSON of every other field as
 * associated data, so no field can be changed without the decryption failing. Unencrypted:
 * `{ "format": "bulkhead-ed25519-secret-v1", "keyId", "publicKey", "secretKey" }`.
 *
 * @example
 * ```ts
 * import { readSecretKeyFile, writeKeyFiles } from "./key_files.ts";
 * const passphrase = process.env.BULKHEAD_PASSPHRASE!;
 * const { keyId } = await writeKeyFiles("release.key", { passphrase });
 * const { secretKey } = await readSecretKeyFile("release.key", { passphrase });
 * ```
 * @module
 */

import { lstat, readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { PluginError } from "../errors.ts";
import { ENCRYPTED_SECRET_KEY_FORMAT, openSecretKey, sealSecretKey } from "./_secret_box.ts";
import { writeNewFiles } from "./_write_new.ts";
import { bytesEqual, fromBase64, toBase64 } from "./_encoding.ts";
import {
  formatPublicKey,
  generateKeyPair,
  keyIdOf,
  LEGACY_PUBLIC_KEY_FORMAT,
  parsePublicKey,
  publicKeyFromSecret,
} from "./keys.ts";

/** Format tag of an unencrypted secret key file. */
export const SECRET_KEY_FORMAT = "bulkhead-ed25519-secret-v1";
/** Format tag of a passphrase-encrypted secret key file. */
export { ENCRYPTED_SECRET_KEY_FORMAT };
/** Format tag of the JSON public key files of earlier versions (still read). */
export const PUBLIC_KEY_FORMAT: string = LEGACY_PUBLIC_KEY_FORMAT;

/** Paths and identity of freshly written key files. */
export interface WrittenKeys {
  /** Secret key file (mode 0600). */
  secretPath: string;
  /** Public key file (`<secretPath>.pub`). */
  publicPath: string;
  /** Key id. */
  keyId: string;
  /** Public key, 32 bytes. */
  publicKey: Uint8Array;
  /** The public key's one-line text form, the content of the `.pub` file. */
  publicKeyLine: string;
  /** Whether the secret key file is encrypted with a passphrase. */
  encrypted: boolean;
}

function keyFileError(path: string, state: string, hint?: string, cause?: unknown): PluginError {
  return new PluginError("ERR_SIGNATURE_INVALID", `Cannot read key file "${path}": ${state}`, {
    hint: hint ?? "Pass a key file written by `bulkhead keygen`",
    cause,
  });
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/** A write failure in words, with what to do: never a bare errno. */
function writeError(path: string, error: unknown): PluginError {
  const dir = dirname(path);
  const known: Record<string, [string, string]> = {
    EEXIST: [
      "it already exists",
      "Choose another path, or replace it with `bulkhead keygen --force` (option `force: true`); " +
      "the old key is then lost",
    ],
    ENOENT: [`directory "${dir}" does not exist`, "Create the directory first, or choose another"],
    ENOTDIR: [`"${dir}" is not a directory`, "Choose a path inside a directory"],
    EISDIR: ["it is a directory", "Choose a file name, not a directory"],
    EACCES: [
      "permission denied",
      `Choose a directory you can write to, or fix the rights of "${dir}"`,
    ],
    EPERM: [
      "permission denied",
      `Choose a directory you can write to, or fix the rights of "${dir}"`,
    ],
    EROFS: ["the file system is read-only", "Choose a writable directory"],
    ENOSPC: ["the disk is full", "Free some space, then run keygen again"],
    EDQUOT: ["the disk quota is exhausted", "Free some space, then run keygen again"],
  };
  const code = codeOf(error);
  const [state, hint] = known[code ?? ""] ??
    [`it cannot be written (${code ?? (error as Error)?.message})`, "Check the path and the disk"];
  return new PluginError("ERR_IO", `Cannot write key file "${path}": ${state}`, {
    hint,
    cause: error,
  });
}

async function secretFileText(
  secretKey: Uint8Array,
  publicKey: Uint8Array,
  options: Parameters<typeof writeKeyFiles>[1] & object,
): Promise<string> {
  const ids = { keyId: keyIdOf(publicKey), publicKey: toBase64(publicKey) };
  const fields = options.passphrase === undefined
    ? { format: SECRET_KEY_FORMAT, ...ids, secretKey: toBase64(secretKey) }
    : await sealSecretKey(secretKey, ids, {
      passphrase: options.passphrase,
      log2N: options.scryptLog2N ?? 17,
      ...(options.onDerive === undefined ? {} : { onDerive: options.onDerive }),
    });
  return `${JSON.stringify(fields, null, 2)}\n`;
}

/**
 * Generates a key pair and writes the public key file `<secretPath>.pub` and the secret key file
 * (mode 0600), encrypted when a passphrase is given. Both are written in full before either is
 * put in place, the public key first; existing files are kept unless `force`.
 *
 * @param secretPath where to write the secret key
 * @param options `force`, `passphrase`, scrypt cost
 * @returns paths, key id and public key (never the secret)
 * @throws {PluginError} ERR_IO when a file exists (without `force`) or cannot be written; the
 *   message says why (missing directory, permission, full disk)
 * @throws {TypeError} when the passphrase is empty
 * @throws {RangeError} when `scryptLog2N` is outside 10..20
 * @example
 * ```ts
 * const { keyId, publicPath } = await writeKeyFiles("./release.key", { passphrase: "…" });
 * ```
 */
export async function writeKeyFiles(
  secretPath: string,
  options: {
    /** Replace existing files (the old key is lost). */
    force?: boolean;
    /** Encrypt the secret key with this passphrase (non-empty); without it the file is plain. */
    passphrase?: string;
    /** scrypt cost, log2(N) (default 17, range 10–20). */
    scryptLog2N?: number;
    /** Called once before the passphrase is stretched (it takes about a second). */
    onDerive?: () => void;
  } = {},
): Promise<WrittenKeys> {
  const files = [resolve(`${secretPath}.pub`), resolve(secretPath)];
  if (options.force !== true) {
    // Before the slow passphrase stretching; writing checks again (and atomically).
    for (const path of [files[1]!, files[0]!]) {
      const found = await lstat(path).then(() => true, (e) => codeOf(e) !== "ENOENT");
      if (found) throw writeError(path, Object.assign(new Error("exists"), { code: "EEXIST" }));
    }
  }
  const { secretKey, publicKey, keyId } = generateKeyPair();
  let secretText: string;
  try {
    secretText = await secretFileText(secretKey, publicKey, options);
  } finally {
    secretKey.fill(0);
  }
  const publicPath = `${secretPath}.pub`;
  const publicKeyLine = formatPublicKey(publicKey);
  await writeNewFiles([
    { path: files[0]!, text: `${publicKeyLine}\n`, mode: 0o644 },
    { path: files[1]!, text: secretText, mode: 0o600 },
  ], { force: options.force === true, fail: writeError });
  const encrypted = options.passphrase !== undefined;
  return { secretPath, publicPath, keyId, publicKey, publicKeyLine, encrypted };
}

function isPublicKeyText(text: string): boolean {
  try {
    parsePublicKey(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a secret key file, encrypted or not.
 *
 * @param path secret key file
 * @param options passphrase of an encrypted file
 * @returns the secret key, its public key and key id
 * @throws {PluginError} ERR_SIGNATURE_INVALID when the file is unreadable, malformed, a public
 *   key, readable by group or others, encrypted and the passphrase is missing or wrong, or its
 *   public key does not match the secret key
 * @example
 * ```ts
 * const { secretKey } = await readSecretKeyFile("./release.key", { passphrase });
 * ```
 */
export async function readSecretKeyFile(
  path: string,
  options: {
    /** Passphrase of an encrypted file. */
    passphrase?: string;
    /** Called once before the passphrase is stretched, only for an encrypted file. */
    onDerive?: () => void;
  } = {},
): Promise<{ secretKey: Uint8Array; publicKey: Uint8Array; keyId: string }> {
  let text: string;
  let mode: number;
  try {
    mode = (await stat(path)).mode;
    text = await readFile(path, "utf8");
  } catch (error) {
    const state = codeOf(error) === "ENOENT" ? "it does not exist" : "it cannot be read";
    throw keyFileError(path, state, undefined, error);
  }
  if (isPublicKeyText(text)) {
    throw keyFileError(
      path,
      "it is a public key, and signing needs the secret key",
      "Pass the secret key file `bulkhead keygen` wrote next to the .pub (the name without .pub)",
    );
  }
  let v: Record<string, unknown> | null;
  try {
    v = JSON.parse(text);
  } catch (error) {
    throw keyFileError(path, "it is not JSON", undefined, error);
  }
  if (typeof v !== "object" || v === null) throw keyFileError(path, "it is not a key file");
  if ((mode & 0o077) !== 0) {
    throw keyFileError(
      path,
      "it is readable by group or others",
      `Run chmod 600 "${path}"; if others could read it, make a new key and revoke this one`,
    );
  }
  let secretKey: Uint8Array | undefined;
  if (v.format === ENCRYPTED_SECRET_KEY_FORMAT) {
    const fail = (state: string, hint?: string, cause?: unknown) =>
      keyFileError(path, state, hint, cause);
    secretKey = await openSecretKey(v, options.passphrase, fail, options.onDerive);
  } else if (v.format === SECRET_KEY_FORMAT && typeof v.secretKey === "string") {
    secretKey = fromBase64(v.secretKey);
  }
  if (secretKey?.length !== 32) throw keyFileError(path, "it is not a bulkhead secret key file");
  const publicKey = publicKeyFromSecret(secretKey);
  const stored = typeof v.publicKey === "string" ? fromBase64(v.publicKey) : undefined;
  if (stored === undefined || !bytesEqual(stored, publicKey)) {
    secretKey.fill(0);
    throw keyFileError(path, "its public key does not match its secret key");
  }
  return { secretKey, publicKey, keyId: keyIdOf(publicKey) };
}

/**
 * Reads a public key given as text (any form `parsePublicKey` accepts, such as the `.pub` line
 * `bulkhead-ed25519:<key id>:<base64>` or 64 hex characters), or as a path to a `.pub` file (one
 * line, or the JSON of earlier versions) or to a secret key file (its public half), and validates
 * it strictly.
 *
 * @param value text or path
 * @returns the 32-byte key
 * @throws {PluginError} ERR_SIGNATURE_INVALID when it is neither a valid key nor a key file
 * @example
 * ```ts
 * const key = await readPublicKey("./release.key.pub");
 * ```
 */
export async function readPublicKey(value: string): Promise<Uint8Array> {
  const isFile = await stat(value).then((s) => s.isFile(), () => false);
  if (!isFile) {
    if (isPublicKeyText(value) || !/^(\.{1,2}|~)?\/|\.(pub|key)$/.test(value.trim())) {
      return parsePublicKey(value);
    }
    throw keyFileError(value, "it does not exist", "Pass the .pub file, or the key's line itself");
  }
  let text: string;
  try {
    text = (await readFile(value, "utf8")).trim();
  } catch (error) {
    throw keyFileError(value, "it cannot be read", undefined, error);
  }
  if (text.startsWith("{")) {
    // A secret key file names its public half (plain text even when the secret is encrypted).
    try {
      const json = JSON.parse(text) as { format?: unknown; publicKey?: unknown };
      const secret = json.format === SECRET_KEY_FORMAT ||
        json.format === ENCRYPTED_SECRET_KEY_FORMAT;
      if (secret && typeof json.publicKey === "string") return parsePublicKey(json.publicKey);
    } catch (error) {
      throw keyFileError(value, "it is not JSON", undefined, error);
    }
  }
  return parsePublicKey(text);
}

/**
 * Reads a raw 32-byte trust list key file (raw bytes, or 64 hex / base64 characters).
 *
 * @param path key file, which must not be readable by group or others
 * @returns the key
 * @throws {PluginError} ERR_TRUST_LIST when the file is unreadable, too open, or not 32 bytes
 * @example
 * ```ts
 * const key = await readListKeyFile("/etc/bulkhead/trust.key");
 * ```
 */
export async function readListKeyFile(path: string): Promise<Uint8Array> {
  const fail = (state: string, hint: string, cause?: unknown) =>
    new PluginError("ERR_TRUST_LIST", `Cannot read trust list key file "${path}": ${state}`, {
      hint,
      cause,
    });
  const create = "Create it with: head -c 32 /dev/urandom > trust.key && chmod 600 trust.key";
  let data: Uint8Array;
  try {
    if (((await stat(path)).mode & 0o077) !== 0) {
      throw fail("it is readable by group or others", `Run chmod 600 "${path}"`);
    }
    data = new Uint8Array(await readFile(path));
  } catch (error) {
    if (error instanceof PluginError) throw error;
    const state = codeOf(error) === "ENOENT" ? "it does not exist" : "it cannot be read";
    throw fail(state, create, error);
  }
  if (data.length === 32) return data;
  const text = new TextDecoder().decode(data).trim();
  const decoded = /^[0-9a-f]{64}$/i.test(text)
    ? new Uint8Array(Buffer.from(text, "hex"))
    : fromBase64(text);
  if (decoded?.length !== 32) throw fail("it does not hold a 32-byte key", create);
  return decoded;
}
