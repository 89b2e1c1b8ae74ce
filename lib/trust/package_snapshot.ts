/**
 * Verify, then load the same bytes: read a plugin package into memory once, digest those bytes,
 * and write exactly those bytes to a private directory the host loads from.
 *
 * A package must contain only regular files and directories. Symbolic links (and fifos, sockets,
 * devices) are refused with `ERR_MANIFEST_INVALID`, because a link's target lies outside the
 * digest. The root-level `plugin.sig` is read into {@link PackageSnapshot.signature} and is not part
 * of {@link PackageSnapshot.files} or of the digest.
 *
 * One exception keeps a plain `npm install` working: the symbolic links npm puts in a
 * `node_modules/.bin` directory (at any depth) for a dependency's commands. Such a link is
 * skipped: never opened or walked, not digested, not copied into the private copy (a plugin never
 * imports a command link; the file it points to is digested under its own path). It must still
 * resolve to a path inside the package, because a plugin loaded from its own directory reads
 * through links there (Node follows links inside a grant). So adding or removing `.bin` links
 * leaves the digest, and any signature over it, unchanged. Regular files in `.bin` are ordinary
 * files (digested and copied).
 *
 * @example
 * ```ts
 * import { readPackage, writePackageCopy } from "./package_snapshot.ts";
 * const snapshot = await readPackage("./plugins/resizer");
 * // ... check snapshot.digest and snapshot.signature ...
 * await writePackageCopy(snapshot, "/tmp/bulkhead-xyz/resizer");
 * ```
 * @module
 */

import { constants } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, realpath } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { PluginError } from "../errors.ts";
import { digestBytes, digestFiles, type DigestOptions, SIGNATURE_FILE } from "./digest.ts";

/** Everything read from a package directory, held in memory. */
export interface PackageSnapshot {
  /** Absolute real path of the package directory that was read. */
  dir: string;
  /** Relative POSIX path -> bytes, for every file except the root `plugin.sig`. */
  files: ReadonlyMap<string, Uint8Array>;
  /** Package digest (128 hex chars) over {@link files}. */
  digest: string;
  /** Sum of the sizes in {@link files}. */
  totalBytes: number;
  /** Bytes of the root `plugin.sig`, or undefined when the package is unsigned. */
  signature: Uint8Array | undefined;
}

/** Options for {@link readPackage}. */
export interface ReadPackageOptions extends DigestOptions {
  /** Refuse packages larger than this many bytes (default 256 MiB). */
  maxBytes?: number;
  /** Refuse packages with more files than this (default 10,000). */
  maxFiles?: number;
}

/** Options for {@link writePackageCopy}. */
export interface WritePackageCopyOptions {
  /** Write files with mode 0400 instead of 0600 (default true). */
  readOnly?: boolean;
}

/** A single file read once, with its digest. */
export interface FileSnapshot {
  /** Absolute path that was read. */
  path: string;
  /** The bytes that were digested. */
  bytes: Uint8Array;
  /** SHA3-512 hex of {@link bytes}. */
  digest: string;
}

const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
const DEFAULT_MAX_FILES = 10_000;

const FILES_HINT =
  "A package may hold only regular files and directories; replace links with copies";
const LINK_HINT = 'Symbolic links are allowed only in "node_modules/.bin" (npm\'s command links, ' +
  "skipped by the digest and the copy) and must point inside the package; replace this link " +
  "with a copy (npm install --install-links copies local packages)";

function invalid(dir: string, state: string, cause?: unknown, hint = FILES_HINT): PluginError {
  return new PluginError("ERR_MANIFEST_INVALID", `Cannot read package "${dir}": ${state}`, {
    hint,
    cause,
  });
}

/** True when the directory `rel` is a `node_modules/.bin` directory (at any depth). */
function isBinDir(rel: string): boolean {
  return rel === "node_modules/.bin" || rel.endsWith("/node_modules/.bin");
}

/**
 * Checks a command link in `node_modules/.bin` without opening it: its target, resolved by the
 * kernel, must be inside the package root.
 */
async function checkBinLink(abs: string, rel: string, root: string, dir: string): Promise<void> {
  let target: string;
  try {
    target = await realpath(abs);
  } catch (error) {
    throw invalid(dir, `command link "${rel}" does not resolve`, error, LINK_HINT);
  }
  const inside = target === root || target.startsWith(root.endsWith(sep) ? root : root + sep);
  if (!inside) {
    throw invalid(dir, `command link "${rel}" points outside the package`, undefined, LINK_HINT);
  }
}

async function readRegularFile(path: string, label: string, root: string): Promise<Uint8Array> {
  let handle;
  try {
    // O_NOFOLLOW: a file swapped for a link after the listing fails here instead of being followed.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ELOOP") {
      throw invalid(root, `"${label}" is a symbolic link`, error, LINK_HINT);
    }
    throw invalid(root, `"${label}" cannot be read (${code ?? "error"})`, error);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw invalid(root, `"${label}" is not a regular file`);
    const buf = await handle.readFile();
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } finally {
    await handle.close();
  }
}

/**
 * Reads every file of a package into memory once and digests those bytes.
 *
 * @param dir package directory (the directory itself may be reached through a link)
 * @param options size limits and hash implementation
 * @returns the snapshot
 * @throws {PluginError} ERR_MANIFEST_INVALID when the directory is unreadable, holds a symbolic
 *   link (other than a `node_modules/.bin` command link into the package) or special file, or
 *   exceeds `maxBytes`/`maxFiles`
 * @example
 * ```ts
 * const { digest, files, signature } = await readPackage("./plugins/resizer");
 * ```
 */
export async function readPackage(
  dir: string,
  options: ReadPackageOptions = {},
): Promise<PackageSnapshot> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxFiles = options.maxFiles ?? DEFAULT_MAX_FILES;
  let root: string;
  try {
    root = await realpath(resolve(dir));
    if (!(await lstat(root)).isDirectory()) throw new Error("not a directory");
  } catch (error) {
    throw invalid(dir, "it is not a readable directory", error);
  }
  const files = new Map<string, Uint8Array>();
  let signature: Uint8Array | undefined;
  let totalBytes = 0;
  let links = 0;
  const walk = async (abs: string, rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (error) {
      throw invalid(dir, `directory "${rel || "."}" cannot be listed`, error);
    }
    for (const entry of entries) {
      const relPath = rel === "" ? entry.name : `${rel}/${entry.name}`;
      const absPath = join(abs, entry.name);
      if (entry.isSymbolicLink()) {
        if (!isBinDir(rel)) {
          throw invalid(dir, `"${relPath}" is a symbolic link`, undefined, LINK_HINT);
        }
        if (files.size + ++links > maxFiles) {
          throw invalid(dir, `it holds more than ${maxFiles} files`);
        }
        await checkBinLink(absPath, relPath, root, dir);
        continue;
      }
      if (entry.isDirectory()) {
        await walk(absPath, relPath);
        continue;
      }
      if (!entry.isFile()) throw invalid(dir, `"${relPath}" is not a regular file`);
      if (files.size >= maxFiles) throw invalid(dir, `it holds more than ${maxFiles} files`);
      const bytes = await readRegularFile(absPath, relPath, dir);
      totalBytes += bytes.length;
      if (totalBytes > maxBytes) throw invalid(dir, `it is larger than ${maxBytes} bytes`);
      if (relPath === SIGNATURE_FILE) signature = bytes;
      else files.set(relPath, bytes);
    }
  };
  await walk(root, "");
  if (signature !== undefined) totalBytes -= signature.length;
  return { dir: root, files, digest: digestFiles(files, options), totalBytes, signature };
}

/**
 * Computes a package digest from disk (reads every file once).
 *
 * @param dir package directory
 * @param options size limits and hash implementation
 * @returns 128 lowercase hex characters
 * @throws {PluginError} ERR_MANIFEST_INVALID as {@link readPackage}
 * @example
 * ```ts
 * const digest = await digestPackage("./plugins/resizer");
 * ```
 */
export async function digestPackage(
  dir: string,
  options: ReadPackageOptions = {},
): Promise<string> {
  return (await readPackage(dir, options)).digest;
}

/**
 * Reads one file (a native library, for instance) once and digests those bytes.
 *
 * @param path file path; a symbolic link is refused
 * @param options hash implementation
 * @returns the bytes and their digest, so the caller can load exactly what was verified
 * @throws {PluginError} ERR_MANIFEST_INVALID when the path is a link, not a regular file, or
 *   unreadable
 * @example
 * ```ts
 * const { digest, bytes } = await digestFile("./native/libresize.so");
 * ```
 */
export async function digestFile(path: string, options: DigestOptions = {}): Promise<FileSnapshot> {
  const abs = resolve(path);
  const bytes = await readRegularFile(abs, abs, abs);
  return { path: abs, bytes, digest: digestBytes(bytes, options) };
}

function checkRelPath(relPath: string): string[] {
  const parts = relPath.split("/");
  const bad = relPath.includes("\0") || relPath.includes("\\") ||
    parts.some((p) => p === "" || p === "." || p === "..");
  if (bad) throw new RangeError(`Cannot write package copy: path "${relPath}" is not relative`);
  return parts;
}

/**
 * Writes a snapshot's exact bytes into a private directory: the directory and its subdirectories
 * get mode 0700, files 0400 (or 0600 with `readOnly: false`). The host then loads the plugin from
 * this copy, so a file swapped in the original directory after verification is never loaded.
 * The root `plugin.sig` is not copied.
 *
 * @param snapshot result of {@link readPackage}
 * @param destDir target directory; created if missing, must be empty
 * @param options file mode choice
 * @returns the absolute path of the copy
 * @throws {RangeError} when `destDir` is not empty or a snapshot path is not a plain relative path
 * @example
 * ```ts
 * const copy = await writePackageCopy(snapshot, await mkdtemp(join(tmpdir(), "bulkhead-")));
 * ```
 */
export async function writePackageCopy(
  snapshot: PackageSnapshot,
  destDir: string,
  options: WritePackageCopyOptions = {},
): Promise<string> {
  const dest = resolve(destDir);
  await mkdir(dest, { recursive: true, mode: 0o700 });
  const stat = await lstat(dest);
  if (!stat.isDirectory()) {
    throw new RangeError(`Cannot write package copy: "${dest}" is not a directory`);
  }
  await chmod(dest, 0o700);
  if ((await readdir(dest)).length > 0) {
    throw new RangeError(`Cannot write package copy: "${dest}" is not empty`);
  }
  const fileMode = options.readOnly === false ? 0o600 : 0o400;
  const made = new Set<string>();
  for (const [relPath, bytes] of snapshot.files) {
    const parts = checkRelPath(relPath);
    let dir = dest;
    for (const part of parts.slice(0, -1)) {
      dir = join(dir, part);
      if (!made.has(dir)) {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        made.add(dir);
      }
    }
    // O_EXCL | O_NOFOLLOW: never write through a link someone planted in the copy.
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const handle = await open(join(dest, ...parts), flags, 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.chmod(fileMode);
    } finally {
      await handle.close();
    }
  }
  return dest;
}
