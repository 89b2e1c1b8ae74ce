/**
 * Private to `lib/trust`: writing several new files so that none is in place before all are
 * written. Each file goes to a temp file in its directory first (written, fsynced); only then are
 * they moved into place, in the order given. A full disk or a crash while writing therefore
 * leaves no new file at all, and the order decides which file can exist without the others
 * (`keygen` puts the public key first: a secret key is never left without its `.pub`).
 *
 * @example
 * ```ts
 * import { writeNewFiles } from "./_write_new.ts";
 * await writeNewFiles([{ path: "k.pub", text: line, mode: 0o644 }, { path: "k", text, mode: 0o600 }], {
 *   force: false,
 *   fail: (path, error) => error as Error,
 * });
 * ```
 * @module
 */

import { randomBytes } from "node:crypto";
import { link, lstat, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { syncDir } from "./_atomic_write.ts";
import { toHex } from "./_encoding.ts";

/** One file to write. */
export interface NewFile {
  /** Absolute target path. */
  path: string;
  /** Its content. */
  text: string;
  /** Its mode (set after the umask). */
  mode: number;
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

async function writeTemp(file: NewFile): Promise<string> {
  const name = `.${basename(file.path)}.${process.pid}.${toHex(randomBytes(6))}.tmp`;
  const tmp = join(dirname(file.path), name);
  const handle = await open(tmp, "wx", file.mode);
  try {
    await handle.writeFile(file.text);
    await handle.chmod(file.mode); // the umask may have cleared bits
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return tmp;
}

/** Moves a temp file to `path`: replacing it with `force`, else only if `path` does not exist. */
async function place(tmp: string, path: string, force: boolean): Promise<void> {
  if (force) return await rename(tmp, path);
  try {
    await link(tmp, path); // atomic "create if absent"
  } catch (error) {
    // Some file systems have no hard links; the existence check before writing then has to do.
    if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EMLINK"].includes(codeOf(error) ?? "")) {
      throw error;
    }
    await rename(tmp, path);
    return;
  }
  await unlink(tmp);
}

/**
 * Writes the files, all before any is in place, then moves them into place in order.
 *
 * @param files the files, in the order they are put in place
 * @param options `force` replaces existing files (else an existing one fails with EEXIST before
 *   anything is written); `fail` turns a file-system error on a path into the error thrown
 * @returns when every file is in place and durable
 * @throws what `fail` returns; temp files are removed, and without `force` so are the files
 *   this call already put in place
 */
export async function writeNewFiles(
  files: readonly NewFile[],
  options: { force: boolean; fail: (path: string, error: unknown) => Error },
): Promise<void> {
  const { force, fail } = options;
  if (!force) {
    for (const f of files) {
      const found = await lstat(f.path).then(() => true, (e) => codeOf(e) !== "ENOENT");
      if (found) throw fail(f.path, Object.assign(new Error("exists"), { code: "EEXIST" }));
    }
  }
  const temps: string[] = [];
  const placed: string[] = [];
  let current = files[0]?.path ?? "";
  try {
    for (const f of files) {
      current = f.path;
      temps.push(await writeTemp(f));
    }
    for (const [i, f] of files.entries()) {
      current = f.path;
      await place(temps[i]!, f.path, force);
      placed.push(f.path);
    }
  } catch (error) {
    for (const tmp of temps) await unlink(tmp).catch(() => undefined);
    // With `force` the old files are already replaced; without, the new ones are taken back.
    if (!force) { for (const p of placed) await unlink(p).catch(() => undefined); }
    throw fail(current, error);
  }
  for (const dir of new Set(files.map((f) => dirname(f.path)))) await syncDir(dir);
}
