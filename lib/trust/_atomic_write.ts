/**
 * Private to `lib/trust`: replacing a file atomically (temp file in the same directory, fsync,
 * rename, fsync of the directory) and removing the temp files a killed writer left behind. A crash
 * at any point leaves the old or the new file, never a mix.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./_atomic_write.ts";
 * await writeFileAtomic("trust.bin", bytes);
 * ```
 * @module
 */

import { randomBytes } from "node:crypto";
import { open, readdir, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { toHex } from "./_encoding.ts";
import { tryAcquireLock } from "./_lock.ts";

const TEMP_RE = /^\.(.+)\.\d+\.[0-9a-f]+\.tmp$/;

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/**
 * Makes a directory's entries (a rename, a new file) durable.
 *
 * @param dir directory
 * @returns when synced, or at once where a directory cannot be opened or synced
 */
export async function syncDir(dir: string): Promise<void> {
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
 *
 * @param target the file the temp files would have replaced
 * @param lockMtimeMs `mtimeMs` of the lock the caller holds
 * @returns when they are removed
 */
export async function removeStaleTemps(target: string, lockMtimeMs: number): Promise<void> {
  for (const path of await staleTemps(target)) {
    const s = await stat(path).catch((e) => codeOf(e) === "ENOENT" ? undefined : Promise.reject(e));
    if (s === undefined || s.mtimeMs > lockMtimeMs) continue;
    await unlink(path).catch((e) => codeOf(e) === "ENOENT" ? undefined : Promise.reject(e));
  }
}

/**
 * {@link removeStaleTemps} for a reader: takes the lock only when there are temp files, and skips
 * the clean-up when a live writer holds the lock (it cleans up under it) or the location is
 * read-only.
 *
 * @param target the file the temp files would have replaced
 * @returns when they are removed or left to the writer
 */
export async function cleanStaleTemps(target: string): Promise<void> {
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
