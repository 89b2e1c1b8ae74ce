/**
 * Private to `lib/trust`: sealing a secret key under a passphrase, as minisign does it (a
 * memory-hard KDF, then an AEAD), for the encrypted secret key files of `key_files.ts`.
 *
 * The key is scrypt (`@noble/hashes`; N = 2^log2N, r = 8, p = 1, 16-byte random salt) of the NFC
 * form of the passphrase. The 32-byte seed is sealed with XChaCha20-Poly1305 (`@noble/ciphers`)
 * under a fresh 24-byte nonce, with the canonical JSON of every other field of the file as
 * associated data: no field (key id, public key, KDF cost) can be changed without the opening
 * failing.
 *
 * @example
 * ```ts
 * import { openSecretKey, sealSecretKey } from "./_secret_box.ts";
 * const fields = await sealSecretKey(secretKey, { keyId, publicKey }, { passphrase, log2N: 17 });
 * const seed = await openSecretKey(fields, passphrase, (state) => new Error(state));
 * ```
 * @module
 */

import { randomBytes } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { canonicalJson, fromBase64, toBase64, utf8 } from "./_encoding.ts";

/** Format tag of a passphrase-encrypted secret key file. */
export const ENCRYPTED_SECRET_KEY_FORMAT = "bulkhead-ed25519-secret-encrypted-v1";

const CIPHER = "xchacha20-poly1305";
const SCRYPT_R = 8;
const SCRYPT_P = 1;
/** Smallest and largest scrypt log2(N): 2^20 with r = 8 needs 1 GiB; a file asking more is refused. */
export const LOG2N_RANGE = [10, 20] as const;

function isLog2N(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= LOG2N_RANGE[0] &&
    (value as number) <= LOG2N_RANGE[1];
}

async function stretch(passphrase: string, salt: Uint8Array, log2N: number): Promise<Uint8Array> {
  return await scryptAsync(utf8(passphrase.normalize("NFC")), salt, {
    N: 2 ** log2N,
    r: SCRYPT_R,
    p: SCRYPT_P,
    dkLen: 32,
  });
}

/** The fields the AEAD authenticates: all but the ciphertext. */
function sealedHeader(v: Record<string, unknown>): Uint8Array {
  const { format, keyId, publicKey, kdf, cipher, nonce } = v;
  return utf8(canonicalJson({ format, keyId, publicKey, kdf, cipher, nonce }));
}

/**
 * Seals a secret key: the fields of an encrypted secret key file.
 *
 * @param secretKey the 32-byte seed
 * @param ids the key id and base64 public key, stored in the clear (and authenticated)
 * @param options non-empty passphrase, scrypt log2(N), `onDerive` told before scrypt runs
 * @returns the file's fields, ready for `JSON.stringify`
 * @throws {TypeError} when the passphrase is empty
 * @throws {RangeError} when log2N is outside {@link LOG2N_RANGE}
 */
export async function sealSecretKey(
  secretKey: Uint8Array,
  ids: { keyId: string; publicKey: string },
  options: { passphrase: string; log2N: number; onDerive?: () => void },
): Promise<Record<string, unknown>> {
  if (typeof options.passphrase !== "string" || options.passphrase.length === 0) {
    throw new TypeError("Cannot use passphrase: it must be a non-empty string");
  }
  if (!isLog2N(options.log2N)) {
    throw new RangeError("Cannot write key file: scryptLog2N must be an integer in 10..20");
  }
  const salt = new Uint8Array(randomBytes(16));
  const nonce = new Uint8Array(randomBytes(24));
  const header = {
    format: ENCRYPTED_SECRET_KEY_FORMAT,
    ...ids,
    kdf: { name: "scrypt", log2N: options.log2N, r: SCRYPT_R, p: SCRYPT_P, salt: toBase64(salt) },
    cipher: CIPHER,
    nonce: toBase64(nonce),
  };
  options.onDerive?.();
  const key = await stretch(options.passphrase, salt, options.log2N);
  try {
    const sealed = xchacha20poly1305(key, nonce, sealedHeader(header)).encrypt(secretKey);
    return { ...header, secretKey: toBase64(sealed) };
  } finally {
    key.fill(0);
  }
}

/**
 * Opens the fields of an encrypted secret key file.
 *
 * @param v the parsed file
 * @param passphrase its passphrase (undefined or empty: refused before any work)
 * @param fail builds the error for a state and a hint
 * @param onDerive told before scrypt runs
 * @returns the 32-byte seed
 * @throws what `fail` builds: malformed or unsupported parameters, no passphrase, or a wrong
 *   passphrase or changed file (the two cannot be told apart)
 */
export async function openSecretKey(
  v: Record<string, unknown>,
  passphrase: string | undefined,
  fail: (state: string, hint?: string, cause?: unknown) => Error,
  onDerive?: () => void,
): Promise<Uint8Array> {
  const kdf = v.kdf as Record<string, unknown> | null | undefined;
  const salt = typeof kdf?.salt === "string" ? fromBase64(kdf.salt) : undefined;
  const nonce = typeof v.nonce === "string" ? fromBase64(v.nonce) : undefined;
  const sealed = typeof v.secretKey === "string" ? fromBase64(v.secretKey) : undefined;
  if (
    kdf?.name !== "scrypt" || kdf.r !== SCRYPT_R || kdf.p !== SCRYPT_P || v.cipher !== CIPHER ||
    salt === undefined || salt.length < 16 || nonce?.length !== 24 || sealed?.length !== 48
  ) {
    throw fail("its encryption parameters are malformed or unsupported");
  }
  if (!isLog2N(kdf.log2N)) {
    throw fail(`its scrypt cost must be 2^${LOG2N_RANGE[0]}..2^${LOG2N_RANGE[1]}`);
  }
  if (passphrase === undefined || passphrase === "") {
    throw fail(
      "it is encrypted and no passphrase was given",
      "Set BULKHEAD_PASSPHRASE, or pass --passphrase-file <file> (option `passphrase`)",
    );
  }
  onDerive?.();
  const key = await stretch(passphrase, salt, kdf.log2N);
  try {
    return xchacha20poly1305(key, nonce, sealedHeader(v)).decrypt(sealed);
  } catch (error) {
    throw fail(
      "the passphrase is wrong, or the file was changed",
      "Check BULKHEAD_PASSPHRASE or the --passphrase-file; a changed file cannot be repaired",
      error,
    );
  } finally {
    key.fill(0);
  }
}
