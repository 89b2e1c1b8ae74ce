/**
 * Key files written by `bulkhead keygen`: a secret key file (JSON, mode 0600) and a public key
 * file (`<name>.pub`, JSON), plus reading a public key from a file or from text.
 *
 * Secret key file: `{ "format": "bulkhead-ed25519-secret-v1", "keyId", "publicKey", "secretKey" }`
 * with base64 keys. Public key file: `{ "format": "bulkhead-ed25519-public-v1", "keyId",
 * "publicKey" }`.
 *
 * @example
 * ```ts
 * import { readSecretKeyFile, writeKeyFiles } from "./key_files.ts";
 * const { keyId } = await writeKeyFiles("release.key");
 * const { secretKey } = await readSecretKeyFile("release.key");
 * ```
 * @module
 */

import { open, readFile, stat } from "node:fs/promises";
import { PluginError } from "../errors.ts";
import { writeFileAtomic } from "./_atomic_write.ts";
import { fromBase64, toBase64 } from "./_encoding.ts";
import { generateKeyPair, keyIdOf, parsePublicKey, publicKeyFromSecret } from "./keys.ts";

/** Format tag of a secret key file. */
export const SECRET_KEY_FORMAT = "bulkhead-ed25519-secret-v1";
/** Format tag of a public key file. */
export const PUBLIC_KEY_FORMAT = "bulkhead-ed25519-public-v1";

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
}

function keyFileError(path: string, state: string, cause?: unknown): PluginError {
  return new PluginError("ERR_SIGNATURE_INVALID", `Cannot read key file "${path}": ${state}`, {
    hint: "Pass a key file written by `bulkhead keygen`",
    cause,
  });
}

/**
 * Generates a key pair and writes the secret key file (mode 0600, refusing to overwrite unless
 * `force`) and the public key file next to it.
 *
 * @param secretPath where to write the secret key
 * @param options `force` to replace existing files
 * @returns paths, key id and public key (never the secret)
 * @throws {Error} with code EEXIST when the file exists and `force` is not set
 * @example
 * ```ts
 * const { keyId, publicPath } = await writeKeyFiles("./release.key");
 * ```
 */
export async function writeKeyFiles(
  secretPath: string,
  options: { force?: boolean } = {},
): Promise<WrittenKeys> {
  const { secretKey, publicKey, keyId } = generateKeyPair();
  const secretText = `${
    JSON.stringify(
      {
        format: SECRET_KEY_FORMAT,
        keyId,
        publicKey: toBase64(publicKey),
        secretKey: toBase64(secretKey),
      },
      null,
      2,
    )
  }\n`;
  const publicText = `${
    JSON.stringify({ format: PUBLIC_KEY_FORMAT, keyId, publicKey: toBase64(publicKey) }, null, 2)
  }\n`;
  const publicPath = `${secretPath}.pub`;
  secretKey.fill(0);
  if (options.force === true) {
    await writeFileAtomic(secretPath, secretText, { mode: 0o600 });
  } else {
    const handle = await open(secretPath, "wx", 0o600);
    try {
      await handle.writeFile(secretText);
      await handle.chmod(0o600);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  await writeFileAtomic(publicPath, publicText, { mode: 0o644 });
  return { secretPath, publicPath, keyId, publicKey };
}

/**
 * Reads a secret key file.
 *
 * @param path secret key file
 * @returns the secret key, its public key and key id
 * @throws {PluginError} ERR_SIGNATURE_INVALID when the file is unreadable, malformed, readable by
 *   group or others, or its public key does not match the secret key
 * @example
 * ```ts
 * const { secretKey } = await readSecretKeyFile("./release.key");
 * ```
 */
export async function readSecretKeyFile(
  path: string,
): Promise<{ secretKey: Uint8Array; publicKey: Uint8Array; keyId: string }> {
  let text: string;
  try {
    if (((await stat(path)).mode & 0o077) !== 0) {
      throw keyFileError(path, "it is readable by group or others (run chmod 600)");
    }
    text = await readFile(path, "utf8");
  } catch (error) {
    if (error instanceof PluginError) throw error;
    throw keyFileError(path, "it cannot be read", error);
  }
  let value: { format?: unknown; secretKey?: unknown; publicKey?: unknown };
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw keyFileError(path, "it is not JSON", error);
  }
  const secretKey = typeof value.secretKey === "string" ? fromBase64(value.secretKey) : undefined;
  if (value.format !== SECRET_KEY_FORMAT || secretKey?.length !== 32) {
    throw keyFileError(path, "it is not a bulkhead secret key file");
  }
  const publicKey = publicKeyFromSecret(secretKey);
  if (value.publicKey !== toBase64(publicKey)) {
    throw keyFileError(path, "its public key does not match its secret key");
  }
  return { secretKey, publicKey, keyId: keyIdOf(publicKey) };
}

/**
 * Reads a public key given as hex or base64 text, or as a path to a `.pub` file or secret key
 * file, and validates it strictly ({@link parsePublicKey}).
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
  let text = value;
  const isFile = await stat(value).then((s) => s.isFile(), () => false);
  if (isFile) {
    text = (await readFile(value, "utf8")).trim();
    if (text.startsWith("{")) {
      try {
        const json = JSON.parse(text) as { publicKey?: unknown };
        if (typeof json.publicKey === "string") text = json.publicKey;
      } catch (error) {
        throw keyFileError(value, "it is not JSON", error);
      }
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
  const fail = (state: string, cause?: unknown) =>
    new PluginError("ERR_TRUST_LIST", `Cannot read trust list key file "${path}": ${state}`, {
      hint: "Create it with: head -c 32 /dev/urandom > trust.key && chmod 600 trust.key",
      cause,
    });
  let data: Uint8Array;
  try {
    if (((await stat(path)).mode & 0o077) !== 0) {
      throw fail("it is readable by group or others (run chmod 600)");
    }
    data = new Uint8Array(await readFile(path));
  } catch (error) {
    if (error instanceof PluginError) throw error;
    throw fail("it cannot be read", error);
  }
  if (data.length === 32) return data;
  const text = new TextDecoder().decode(data).trim();
  const decoded = /^[0-9a-f]{64}$/i.test(text)
    ? new Uint8Array(Buffer.from(text, "hex"))
    : fromBase64(text);
  if (decoded?.length !== 32) throw fail("it does not hold a 32-byte key");
  return decoded;
}
