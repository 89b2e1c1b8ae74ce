/**
 * Signed statements about plugin packages and the `plugin.sig` file format.
 *
 * A signature covers a statement, not raw bytes:
 * `{ name, version, digest, keyId, created, expires }` (`created`/`expires` are ISO 8601 UTC
 * strings, `expires` may be null). The signed message is the UTF-8 of
 * {@link SIGNATURE_DOMAIN} followed by the statement as canonical JSON (keys sorted, no spaces), so a
 * signature can never be replayed as a signature over something else.
 *
 * `plugin.sig` lives in the package root (the package digest skips it) and holds JSON:
 * `{ "format": "bulkhead-signature-v1", "statement": {...}, "publicKey": "<base64>",
 *    "signature": "<base64>" }`. The embedded public key is informational: verification uses the
 * trusted key with the statement's `keyId` and requires the embedded key to equal it.
 *
 * @example
 * ```ts
 * import { createSignature, verifyStatement } from "./signature.ts";
 * const sig = createSignature({ name: "x", version: "1.0.0", digest }, secretKey);
 * verifyStatement(sig, { name: "x", version: "1.0.0", digest }, createVerifier(publicKey));
 * ```
 * @module
 */

import { PluginError } from "../errors.ts";
import { bytesEqual, canonicalJson, fromBase64, toBase64, utf8 } from "./_encoding.ts";
import { keyIdOf, publicKeyFromSecret, signMessage, type Verifier } from "./keys.ts";

/** Prefix of every signed message (domain separation). */
export const SIGNATURE_DOMAIN = "bulkhead-signature-v1\n";

/** Value of the `format` field of `plugin.sig`. */
export const SIGNATURE_FORMAT = "bulkhead-signature-v1";

/** What a signer asserts about a package. */
export interface SignatureStatement {
  /** Plugin name, as in its manifest. */
  name: string;
  /** Plugin version, as in its manifest. */
  version: string;
  /** Package digest (128 hex chars). */
  digest: string;
  /** Key id of the signing key. */
  keyId: string;
  /** When the statement was signed (ISO 8601). */
  created: string;
  /** When the statement stops being valid (ISO 8601), or null for never. */
  expires: string | null;
}

/** Parsed contents of `plugin.sig`. */
export interface SignatureFile {
  /** Always {@link SIGNATURE_FORMAT}. */
  format: typeof SIGNATURE_FORMAT;
  /** The signed statement. */
  statement: SignatureStatement;
  /** Signer's public key, base64. */
  publicKey: string;
  /** Ed25519 signature over {@link statementMessage}, base64. */
  signature: string;
}

/** What to sign. */
export interface SignInput {
  /** Plugin name. */
  name: string;
  /** Plugin version. */
  version: string;
  /** Package digest. */
  digest: string;
  /** Signing time (default now). */
  created?: Date;
  /** Expiry: a date, or null for never (default created + 365 days). */
  expires?: Date | null;
}

/** What the verifier expects the statement to say. */
export interface ExpectedPackage {
  /** Plugin name from the manifest. */
  name: string;
  /** Plugin version from the manifest. */
  version: string;
  /** Digest computed from the package bytes. */
  digest: string;
}

/** Options for {@link verifyStatement}. */
export interface VerifyStatementOptions {
  /** Current time (default now). */
  now?: Date;
  /** Allowed clock skew for `created` in the future, ms (default 5 minutes). */
  clockSkewMs?: number;
}

const DIGEST_RE = /^[0-9a-f]{128}$/;
const KEY_ID_RE = /^[0-9a-f]{16}$/;
const YEAR_MS = 365 * 24 * 3600 * 1000;

function invalidSig(state: string, cause?: unknown): PluginError {
  return new PluginError("ERR_SIGNATURE_INVALID", `Cannot verify signature: ${state}`, {
    hint: "Re-sign the package with `bulkhead sign`, or reinstall it from its publisher",
    cause,
  });
}

/**
 * Builds the exact bytes that are signed for a statement.
 *
 * @param statement the statement
 * @returns UTF-8 of {@link SIGNATURE_DOMAIN} + canonical JSON
 * @example
 * ```ts
 * new TextDecoder().decode(statementMessage(s)).startsWith("bulkhead-signature-v1\n"); // true
 * ```
 */
export function statementMessage(statement: SignatureStatement): Uint8Array {
  const { name, version, digest, keyId, created, expires } = statement;
  return utf8(SIGNATURE_DOMAIN + canonicalJson({ name, version, digest, keyId, created, expires }));
}

/**
 * Signs a statement about a package.
 *
 * @param input name, version, digest and validity window
 * @param secretKey 32-byte Ed25519 secret key
 * @returns the `plugin.sig` contents
 * @throws {TypeError} when the digest is not 128 hex chars or the key is not 32 bytes
 * @example
 * ```ts
 * const sig = createSignature({ name: "x", version: "1.0.0", digest }, secretKey);
 * ```
 */
export function createSignature(input: SignInput, secretKey: Uint8Array): SignatureFile {
  if (!DIGEST_RE.test(input.digest)) {
    throw new TypeError("Cannot sign: digest must be 128 lowercase hex characters");
  }
  const publicKey = publicKeyFromSecret(secretKey);
  const created = input.created ?? new Date();
  const expires = input.expires === undefined
    ? new Date(created.getTime() + YEAR_MS)
    : input.expires;
  const statement: SignatureStatement = {
    name: input.name,
    version: input.version,
    digest: input.digest,
    keyId: keyIdOf(publicKey),
    created: created.toISOString(),
    expires: expires === null ? null : expires.toISOString(),
  };
  const signature = signMessage(statementMessage(statement), secretKey);
  return {
    format: SIGNATURE_FORMAT,
    statement,
    publicKey: toBase64(publicKey),
    signature: toBase64(signature),
  };
}

/**
 * Serializes a signature file (pretty JSON with a trailing newline).
 *
 * @param sig parsed signature file
 * @returns text to write to `plugin.sig`
 * @example
 * ```ts
 * await writeFile("plugin.sig", encodeSignatureFile(sig));
 * ```
 */
export function encodeSignatureFile(sig: SignatureFile): string {
  return `${JSON.stringify(sig, null, 2)}\n`;
}

function isIsoDate(value: unknown): value is string {
  return typeof value === "string" && !Number.isNaN(Date.parse(value));
}

/**
 * Parses and structurally validates `plugin.sig` contents.
 *
 * @param data file bytes or text
 * @returns the parsed file
 * @throws {PluginError} ERR_SIGNATURE_INVALID when the content is not a valid signature file
 * @example
 * ```ts
 * const sig = parseSignatureFile(await readFile("plugin.sig"));
 * ```
 */
export function parseSignatureFile(data: Uint8Array | string): SignatureFile {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
  } catch (error) {
    throw invalidSig("plugin.sig is not JSON", error);
  }
  const v = value as Partial<SignatureFile> | null;
  if (typeof v !== "object" || v === null || v.format !== SIGNATURE_FORMAT) {
    throw invalidSig(`plugin.sig format is not "${SIGNATURE_FORMAT}"`);
  }
  const s = v.statement as Partial<SignatureStatement> | undefined;
  const ok = typeof s === "object" && s !== null && typeof s.name === "string" &&
    typeof s.version === "string" && typeof s.digest === "string" && DIGEST_RE.test(s.digest) &&
    typeof s.keyId === "string" && KEY_ID_RE.test(s.keyId) && isIsoDate(s.created) &&
    (s.expires === null || isIsoDate(s.expires));
  if (!ok) throw invalidSig("plugin.sig statement is malformed");
  const pub = typeof v.publicKey === "string" ? fromBase64(v.publicKey) : undefined;
  const sig = typeof v.signature === "string" ? fromBase64(v.signature) : undefined;
  if (pub?.length !== 32) throw invalidSig("plugin.sig publicKey is not 32 bytes of base64");
  if (sig?.length !== 64) throw invalidSig("plugin.sig signature is not 64 bytes of base64");
  const statement: SignatureStatement = {
    name: s.name!,
    version: s.version!,
    digest: s.digest!,
    keyId: s.keyId!,
    created: s.created!,
    expires: s.expires!,
  };
  return {
    format: SIGNATURE_FORMAT,
    statement,
    publicKey: v.publicKey!,
    signature: v.signature!,
  };
}

/**
 * Verifies a signature file with a trusted key and checks its statement against the package:
 * signature, key match, digest, name, version, creation time and expiry.
 *
 * @param sig parsed signature file
 * @param expected name and version from the manifest, digest from the bytes
 * @param verifier verifier of the trusted key the statement names
 * @param options current time and clock skew
 * @returns the verified statement
 * @throws {PluginError} ERR_SIGNATURE_INVALID when anything does not match or has expired
 * @example
 * ```ts
 * verifyStatement(sig, { name, version, digest: snapshot.digest }, createVerifier(trustedKey));
 * ```
 */
export function verifyStatement(
  sig: SignatureFile,
  expected: ExpectedPackage,
  verifier: Verifier,
  options: VerifyStatementOptions = {},
): SignatureStatement {
  const s = sig.statement;
  if (s.keyId !== verifier.keyId) throw invalidSig(`statement key id "${s.keyId}" is not trusted`);
  const embedded = fromBase64(sig.publicKey);
  if (embedded === undefined || !bytesEqual(embedded, verifier.publicKey)) {
    throw invalidSig(`embedded public key does not match key "${verifier.keyId}"`);
  }
  const signature = fromBase64(sig.signature);
  if (signature === undefined || !verifier.verify(statementMessage(s), signature)) {
    throw invalidSig(`signature by key "${s.keyId}" does not verify`);
  }
  if (s.digest !== expected.digest) {
    throw invalidSig(`signed digest "${s.digest.slice(0, 16)}…" does not match the package`);
  }
  if (s.name !== expected.name) {
    throw invalidSig(`signed name "${s.name}" does not match manifest name "${expected.name}"`);
  }
  if (s.version !== expected.version) {
    throw invalidSig(
      `signed version "${s.version}" does not match manifest version "${expected.version}"`,
    );
  }
  const now = (options.now ?? new Date()).getTime();
  if (Date.parse(s.created) > now + (options.clockSkewMs ?? 300_000)) {
    throw invalidSig(`statement created "${s.created}" is in the future`);
  }
  if (s.expires !== null && Date.parse(s.expires) <= now) {
    throw invalidSig(`statement expired at "${s.expires}"`);
  }
  return s;
}
