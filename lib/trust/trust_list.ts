/**
 * The trust list as data: approved packages, trusted keys, revocations and the highest version
 * seen per plugin. Every operation returns a new list and leaves its input unchanged; persistence
 * (encrypted at rest) lives in `trust_file.ts`, combining concurrent writers' copies in
 * `trust_merge.ts`.
 *
 * An entry approves one exact package (name, version, digest) signed by one key, even when that
 * key is not trusted for anything else. A trusted key approves every package it signs. Revoking a
 * key or digest overrides both.
 *
 * @example
 * ```ts
 * import { addTrustedKey, emptyTrustList, revokeDigest } from "./trust_list.ts";
 * let list = emptyTrustList();
 * list = addTrustedKey(list, publicKey, { note: "ACME release key" });
 * list = revokeDigest(list, badDigest, { reason: "CVE-2025-1234" });
 * ```
 * @module
 */

import semver from "semver";
import { PluginError } from "../errors.ts";
import { decodeFixed, fromBase64, toBase64 } from "./_encoding.ts";
import { keyIdOf, parsePublicKey } from "./keys.ts";
import type { SignatureFile } from "./signature.ts";

/** One approved package. */
export interface TrustEntry {
  /** Plugin name. */
  name: string;
  /** Plugin version. */
  version: string;
  /** Package digest (128 hex chars). */
  digest: string;
  /** The package's `plugin.sig` signature, base64. */
  signature: string;
  /** The signer's public key, base64. */
  publicKey: string;
  /** Key id of {@link publicKey}. */
  keyId: string;
  /** Free text. */
  note?: string;
  /** When the entry was added (ISO 8601). */
  addedAt: string;
}

/** A key trusted for every package it signs. */
export interface TrustedKeyRecord {
  /** Key id. */
  keyId: string;
  /** Public key, base64. */
  publicKey: string;
  /** Free text. */
  note?: string;
  /** When the key was added (ISO 8601). */
  addedAt: string;
}

/** A revoked key. */
export interface RevokedKey {
  /** Key id. */
  keyId: string;
  /** Why. */
  reason?: string;
  /** When (ISO 8601). */
  revokedAt: string;
}

/** A revoked package digest. */
export interface RevokedDigest {
  /** Package or file digest (128 hex chars). */
  digest: string;
  /** Why. */
  reason?: string;
  /** When (ISO 8601). */
  revokedAt: string;
}

/** The whole trust list. */
export interface TrustList {
  /** Schema version, 1. */
  version: 1;
  /** Approved packages. */
  entries: TrustEntry[];
  /** Trusted keys. */
  keys: TrustedKeyRecord[];
  /** Revoked keys. */
  revokedKeys: RevokedKey[];
  /** Revoked digests. */
  revokedDigests: RevokedDigest[];
  /** Plugin name -> highest version accepted so far (downgrade protection). */
  highestVersions: Record<string, string>;
}

/** Options for revocations. */
export interface RevokeOptions {
  /** Why it was revoked. */
  reason?: string;
  /** Timestamp (default now). */
  now?: Date;
}

/** Common options for list edits. */
export interface EditOptions {
  /** Free-text note or revocation reason. */
  note?: string;
  /** Timestamp (default now). */
  now?: Date;
}

const DIGEST_RE = /^[0-9a-f]{128}$/;
const KEY_ID_RE = /^[0-9a-f]{16}$/;

/**
 * Creates an empty trust list.
 *
 * @returns a list with no entries
 * @example
 * ```ts
 * emptyTrustList().entries.length; // 0
 * ```
 */
export function emptyTrustList(): TrustList {
  return {
    version: 1,
    entries: [],
    keys: [],
    revokedKeys: [],
    revokedDigests: [],
    highestVersions: {},
  };
}

function stamp(options: EditOptions): string {
  return (options.now ?? new Date()).toISOString();
}

function withNote<T extends object>(record: T, note: string | undefined): T & { note?: string } {
  return note === undefined ? record : { ...record, note };
}

/**
 * Adds (or replaces) a trusted key after strict validation.
 *
 * @param list current list
 * @param publicKey hex, base64 or raw 32 bytes
 * @param options note and timestamp
 * @returns the new list
 * @throws {PluginError} ERR_SIGNATURE_INVALID when the key is malformed, small-order or
 *   non-canonical
 * @example
 * ```ts
 * list = addTrustedKey(list, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
 * ```
 */
export function addTrustedKey(
  list: TrustList,
  publicKey: string | Uint8Array,
  options: EditOptions = {},
): TrustList {
  const bytes = parsePublicKey(publicKey);
  const keyId = keyIdOf(bytes);
  const record = withNote(
    { keyId, publicKey: toBase64(bytes), addedAt: stamp(options) },
    options.note,
  );
  return { ...list, keys: [...list.keys.filter((k) => k.keyId !== keyId), record] };
}

/**
 * Removes a trusted key (entries signed by it stay until removed).
 *
 * @param list current list
 * @param keyId key id
 * @returns the new list and whether anything was removed
 * @example
 * ```ts
 * ({ list } = removeTrustedKey(list, "0123456789abcdef"));
 * ```
 */
export function removeTrustedKey(
  list: TrustList,
  keyId: string,
): { list: TrustList; removed: number } {
  const keys = list.keys.filter((k) => k.keyId !== keyId);
  return { list: { ...list, keys }, removed: list.keys.length - keys.length };
}

/**
 * Approves one exact package, identified by its verified signature file. Also raises the highest
 * version seen for the plugin.
 *
 * @param list current list
 * @param sig the package's verified signature file
 * @param options note and timestamp
 * @returns the new list
 * @throws {PluginError} ERR_SIGNATURE_INVALID when the signer's key is unacceptable
 * @example
 * ```ts
 * list = addTrustEntry(list, parseSignatureFile(snapshot.signature!), { note: "reviewed" });
 * ```
 */
export function addTrustEntry(
  list: TrustList,
  sig: SignatureFile,
  options: EditOptions = {},
): TrustList {
  const publicKey = parsePublicKey(fromBase64(sig.publicKey) ?? new Uint8Array(0));
  const { name, version, digest } = sig.statement;
  const entry = withNote({
    name,
    version,
    digest,
    signature: sig.signature,
    publicKey: toBase64(publicKey),
    keyId: keyIdOf(publicKey),
    addedAt: stamp(options),
  }, options.note);
  const entries = list.entries.filter((e) => !(e.name === name && e.version === version));
  return recordVersion({ ...list, entries: [...entries, entry] }, name, version);
}

/**
 * Removes approved packages by name, and optionally version.
 *
 * @param list current list
 * @param name plugin name
 * @param version exact version, or undefined for all versions
 * @returns the new list and how many entries were removed
 * @example
 * ```ts
 * ({ list } = removeTrustEntry(list, "resizer", "1.2.0"));
 * ```
 */
export function removeTrustEntry(
  list: TrustList,
  name: string,
  version?: string,
): { list: TrustList; removed: number } {
  const entries = list.entries.filter((e) =>
    !(e.name === name && (version === undefined || e.version === version))
  );
  return { list: { ...list, entries }, removed: list.entries.length - entries.length };
}

/**
 * Revokes a key by key id or public key; revocation overrides trust from keys, pins and entries.
 *
 * @param list current list
 * @param key 16-hex key id, or a public key (hex, base64 or bytes)
 * @param options reason and timestamp
 * @returns the new list
 * @throws {TypeError} when `key` is neither a key id nor a 32-byte key
 * @example
 * ```ts
 * list = revokeKey(list, "0123456789abcdef", { reason: "leaked" });
 * ```
 */
export function revokeKey(
  list: TrustList,
  key: string | Uint8Array,
  options: RevokeOptions = {},
): TrustList {
  let keyId: string;
  if (typeof key === "string" && KEY_ID_RE.test(key)) keyId = key;
  else {
    // A key being revoked need not be a valid trusted key, only 32 bytes.
    const bytes = typeof key === "string" ? decodeFixed(key, 32) : key;
    if (bytes?.length !== 32) throw new TypeError("Cannot revoke key: not a key id or public key");
    keyId = keyIdOf(bytes);
  }
  const record: RevokedKey = { keyId, revokedAt: stamp(options) };
  if (options.reason !== undefined) record.reason = options.reason;
  return { ...list, revokedKeys: [...list.revokedKeys.filter((k) => k.keyId !== keyId), record] };
}

/**
 * Revokes a package (or native file) digest.
 *
 * @param list current list
 * @param digest 128 hex chars
 * @param options reason and timestamp
 * @returns the new list
 * @throws {TypeError} when the digest is not 128 hex chars
 * @example
 * ```ts
 * list = revokeDigest(list, snapshot.digest, { reason: "malicious" });
 * ```
 */
export function revokeDigest(
  list: TrustList,
  digest: string,
  options: RevokeOptions = {},
): TrustList {
  const d = digest.toLowerCase();
  if (!DIGEST_RE.test(d)) throw new TypeError("Cannot revoke digest: not 128 hex characters");
  const record: RevokedDigest = { digest: d, revokedAt: stamp(options) };
  if (options.reason !== undefined) record.reason = options.reason;
  return {
    ...list,
    revokedDigests: [...list.revokedDigests.filter((r) => r.digest !== d), record],
  };
}

/**
 * Raises the highest version seen for a plugin (never lowers it). The host calls this after
 * accepting a plugin and saves the list.
 *
 * @param list current list
 * @param name plugin name
 * @param version accepted version (semver)
 * @returns the new list (the same object when nothing changed)
 * @example
 * ```ts
 * list = recordVersion(list, "resizer", "1.3.0");
 * ```
 */
export function recordVersion(list: TrustList, name: string, version: string): TrustList {
  const current = list.highestVersions[name];
  if (semver.valid(version) === null) return list;
  if (current !== undefined && semver.valid(current) !== null && !semver.gt(version, current)) {
    return list;
  }
  return { ...list, highestVersions: { ...list.highestVersions, [name]: version } };
}

function listError(state: string): PluginError {
  return new PluginError("ERR_TRUST_LIST", `Cannot open trust list: ${state}`, {
    hint: "The file decrypted but its content is not a bulkhead trust list; restore a backup",
  });
}

function isStr(v: unknown): v is string {
  return typeof v === "string";
}

function optStr(v: unknown): boolean {
  return v === undefined || typeof v === "string";
}

/**
 * Validates decrypted trust list data; nothing partial is ever returned.
 *
 * @param value parsed JSON
 * @returns the list
 * @throws {PluginError} ERR_TRUST_LIST when any field is missing or of the wrong type
 * @example
 * ```ts
 * const list = validateTrustList(JSON.parse(text));
 * ```
 */
export function validateTrustList(value: unknown): TrustList {
  const v = value as Partial<TrustList> | null;
  if (typeof v !== "object" || v === null || v.version !== 1) {
    throw listError("unknown schema version");
  }
  const arrays = ["entries", "keys", "revokedKeys", "revokedDigests"] as const;
  for (const name of arrays) {
    if (!Array.isArray(v[name])) throw listError(`field "${name}" is not an array`);
  }
  v.entries!.forEach((e, i) => {
    const ok = typeof e === "object" && e !== null && isStr(e.name) && isStr(e.version) &&
      isStr(e.digest) && isStr(e.signature) && isStr(e.publicKey) && isStr(e.keyId) &&
      isStr(e.addedAt) && optStr(e.note);
    if (!ok) throw listError(`field "entries.${i}" is malformed`);
  });
  v.keys!.forEach((k, i) => {
    const ok = typeof k === "object" && k !== null && isStr(k.keyId) && isStr(k.publicKey) &&
      isStr(k.addedAt) && optStr(k.note);
    if (!ok) throw listError(`field "keys.${i}" is malformed`);
  });
  v.revokedKeys!.forEach((k, i) => {
    const ok = typeof k === "object" && k !== null && isStr(k.keyId) && isStr(k.revokedAt) &&
      optStr(k.reason);
    if (!ok) throw listError(`field "revokedKeys.${i}" is malformed`);
  });
  v.revokedDigests!.forEach((d, i) => {
    const ok = typeof d === "object" && d !== null && isStr(d.digest) && isStr(d.revokedAt) &&
      optStr(d.reason);
    if (!ok) throw listError(`field "revokedDigests.${i}" is malformed`);
  });
  const hv = v.highestVersions;
  if (typeof hv !== "object" || hv === null || Array.isArray(hv)) {
    throw listError('field "highestVersions" is not an object');
  }
  for (const [name, version] of Object.entries(hv)) {
    if (!isStr(version)) throw listError(`field "highestVersions.${name}" is not a string`);
  }
  return v as TrustList;
}
