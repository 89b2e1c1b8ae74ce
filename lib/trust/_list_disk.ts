/**
 * Private to `lib/trust`: what is on disk for one trust list, read without the lock. Which version
 * of the list file is there (a 56-byte read tells whether it changed), and whether the list ever
 * existed.
 *
 * First use and loss are told apart by a marker, `<list>.created`, written after the first write
 * (and added to older lists when they are opened). A missing list with a marker was lost or
 * deleted; starting it over empty would silently drop its revocations and downgrade protection.
 *
 * @example
 * ```ts
 * import { hasMarker, lostError, readChanged } from "./_list_disk.ts";
 * const read = await readChanged(path, knownWriteId);
 * if (read.kind === "missing" && await hasMarker(path)) throw lostError(path);
 * ```
 * @module
 */

import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { PluginError } from "../errors.ts";
import { syncDir } from "./_atomic_write.ts";
import { HEADER_LEN, isWriteId, listError } from "./_trust_codec.ts";

const MARKER_SUFFIX = ".created";

const MARKER_TEXT = JSON.stringify({
  format: "bulkhead-trust-marker/1",
  meaning: "the trust list next to this file exists; if it goes missing, bulkhead refuses to " +
    "start a new empty one (delete this file to allow that)",
}) + "\n";

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

function markerPath(target: string): string {
  return `${target}${MARKER_SUFFIX}`;
}

/**
 * The error for a list whose marker says it existed but that is missing now.
 *
 * @param path absolute list path
 * @returns an ERR_TRUST_LIST error whose hint says how to restore or explicitly start over
 */
export function lostError(path: string): PluginError {
  return new PluginError(
    "ERR_TRUST_LIST",
    `Cannot open trust list: "${path}" existed but is missing`,
    {
      hint: `Restore it from a backup. To start over with an empty list, which drops its ` +
        `revocations and downgrade protection, delete "${path}${MARKER_SUFFIX}"`,
    },
  );
}

/**
 * Whether the list at `target` was ever written (its marker exists).
 *
 * @param target absolute list path
 * @returns true when the marker exists
 */
export async function hasMarker(target: string): Promise<boolean> {
  return await stat(markerPath(target)).then(
    () => true,
    (e) => codeOf(e) === "ENOENT" ? false : Promise.reject(e),
  );
}

/**
 * {@link hasMarker}, blocking (for a store following the list).
 *
 * @param target absolute list path
 * @returns true when the marker exists
 */
export function hasMarkerSync(target: string): boolean {
  try {
    statSync(markerPath(target));
    return true;
  } catch (error) {
    if (codeOf(error) === "ENOENT") return false;
    throw error;
  }
}

/**
 * Creates the marker of `target` unless it exists.
 *
 * @param target absolute list path, which exists
 * @param readOnlyOk skip when the directory is not writable (opening a list there must keep
 *   working; it cannot be lost from there)
 * @returns when the marker is durable
 */
export async function ensureMarker(target: string, readOnlyOk: boolean): Promise<void> {
  const handle = await open(markerPath(target), "wx", 0o600).catch((e) => {
    if (codeOf(e) === "EEXIST") return undefined;
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

/** Result of reading the list file: not there, the version already held, or new bytes. */
export type ListRead = { kind: "missing" } | { kind: "same" } | { kind: "data"; data: Uint8Array };

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

/**
 * Reads the list file unless its write id (nonce) is `known`. The file is only ever renamed over,
 * never changed in place, so one open file is one consistent version.
 *
 * @param path absolute list path
 * @param known write id of the version held, or undefined to read whatever is there
 * @returns what was found
 * @throws {PluginError} ERR_TRUST_LIST when the file exists but cannot be read
 */
export async function readChanged(path: string, known: Uint8Array | undefined): Promise<ListRead> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return { kind: "missing" };
    throw cannotRead(path, error);
  }
  try {
    const size = (await handle.stat()).size;
    if (isWriteId(await readAt(handle, Math.min(size, HEADER_LEN)), known)) return { kind: "same" };
    return { kind: "data", data: await readAt(handle, size) };
  } catch (error) {
    throw cannotRead(path, error);
  } finally {
    await handle.close();
  }
}

/**
 * {@link readChanged}, blocking (trust decisions are synchronous).
 *
 * @param path absolute list path
 * @param known write id of the version held, or undefined to read whatever is there
 * @returns what was found
 * @throws {PluginError} ERR_TRUST_LIST when the file exists but cannot be read
 */
export function readChangedSync(path: string, known: Uint8Array | undefined): ListRead {
  let fd;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return { kind: "missing" };
    throw cannotRead(path, error);
  }
  try {
    const size = fstatSync(fd).size;
    if (isWriteId(readAtSync(fd, Math.min(size, HEADER_LEN)), known)) return { kind: "same" };
    return { kind: "data", data: readAtSync(fd, size) };
  } catch (error) {
    throw cannotRead(path, error);
  } finally {
    closeSync(fd);
  }
}
