/**
 * SHA3-512 digests of plugin packages and single files.
 *
 * A package digest is SHA3-512 over a canonical listing of every file in the package directory:
 *
 * ```text
 * bulkhead-package-digest-v1\n
 * <sha3-512 hex of file> <size in bytes> <JSON-quoted relative POSIX path>\n   (one line per file)
 * ```
 *
 * Lines are sorted by the UTF-8 bytes of the path. Adding, removing, renaming or changing any file
 * changes the digest. Only the root-level `plugin.sig` (the signature file, which cannot sign
 * itself) is left out. Empty directories carry no bytes and do not count, and neither do npm's
 * command links in `node_modules/.bin` (the package reader skips them), so running `npm install`
 * after signing, or signing before or after it, gives the same digest. A single file (a native
 * library) is digested as plain SHA3-512 of its bytes, the same value as `sha3sum -a 512`.
 *
 * Hashing uses `node:crypto` `createHash("sha3-512")` (present in Deno, Bun and Node, and about
 * ten times faster) and falls back to `@noble/hashes` when the runtime lacks it. Both give the same
 * digest; `{ impl: "noble" }` forces the portable implementation.
 *
 * @example
 * ```ts
 * import { digestBytes, digestFiles } from "./digest.ts";
 * const files = new Map([["index.js", new TextEncoder().encode("export {}")]]);
 * digestFiles(files); // 128 hex chars
 * digestBytes(new Uint8Array([1, 2, 3]));
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { sha3_512 } from "@noble/hashes/sha3.js";
import { toHex, utf8 } from "./_encoding.ts";

/** First line of the canonical package listing; changes whenever the listing format changes. */
export const DIGEST_FORMAT = "bulkhead-package-digest-v1";

/** Name of the signature file at the package root; the only file the package digest skips. */
export const SIGNATURE_FILE = "plugin.sig";

/** Which SHA3-512 implementation to use: native `node:crypto` or portable `@noble/hashes`. */
export type HashImpl = "native" | "noble";

/** Options for the digest functions. */
export interface DigestOptions {
  /** Hash implementation; defaults to `"native"`, which falls back to noble when unavailable. */
  impl?: HashImpl;
}

let nativeAvailable: boolean | undefined;

function hasNativeSha3(): boolean {
  if (nativeAvailable === undefined) {
    try {
      createHash("sha3-512").update(new Uint8Array(0)).digest();
      nativeAvailable = true;
    } catch {
      nativeAvailable = false;
    }
  }
  return nativeAvailable;
}

/**
 * Computes SHA3-512 of some bytes.
 *
 * @param data bytes to hash
 * @param options implementation choice
 * @returns the 64-byte hash
 * @example
 * ```ts
 * sha3_512Bytes(new Uint8Array(0)).length; // 64
 * ```
 */
export function sha3_512Bytes(data: Uint8Array, options: DigestOptions = {}): Uint8Array {
  if (options.impl !== "noble" && hasNativeSha3()) {
    const out = createHash("sha3-512").update(data).digest();
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  return sha3_512(data);
}

/**
 * Digests a single file's bytes (a native library, for instance): plain SHA3-512 as hex.
 *
 * @param bytes file contents
 * @param options implementation choice
 * @returns 128 lowercase hex characters
 * @example
 * ```ts
 * digestBytes(new TextEncoder().encode("abc")).slice(0, 8); // "b751850b"
 * ```
 */
export function digestBytes(bytes: Uint8Array, options: DigestOptions = {}): string {
  return toHex(sha3_512Bytes(bytes, options));
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Builds the canonical listing that a package digest hashes (see the module doc for the format).
 *
 * @param files relative POSIX path -> file bytes, without the root `plugin.sig`
 * @param options implementation choice
 * @returns the listing text
 * @example
 * ```ts
 * packageListing(new Map([["a.js", new Uint8Array(0)]])).split("\n")[0]; // DIGEST_FORMAT
 * ```
 */
export function packageListing(
  files: ReadonlyMap<string, Uint8Array>,
  options: DigestOptions = {},
): string {
  const paths = [...files.keys()].sort(compareUtf8);
  let listing = `${DIGEST_FORMAT}\n`;
  for (const path of paths) {
    const bytes = files.get(path)!;
    listing += `${digestBytes(bytes, options)} ${bytes.length} ${JSON.stringify(path)}\n`;
  }
  return listing;
}

/**
 * Computes a package digest from files already in memory.
 *
 * @param files relative POSIX path -> file bytes, without the root `plugin.sig`
 * @param options implementation choice
 * @returns 128 lowercase hex characters
 * @throws {TypeError} when `files` holds the root signature file
 * @example
 * ```ts
 * digestFiles(new Map([["plugin.json", new TextEncoder().encode("{}")]]));
 * ```
 */
export function digestFiles(
  files: ReadonlyMap<string, Uint8Array>,
  options: DigestOptions = {},
): string {
  if (files.has(SIGNATURE_FILE)) {
    throw new TypeError(`Cannot digest package: files must not include "${SIGNATURE_FILE}"`);
  }
  return digestBytes(utf8(packageListing(files, options)), options);
}
