/**
 * Finds symbolic links inside granted directories that lead outside every grant. Node's
 * permission model follows symlinks (documented), so a plugin shipping `data/x -> /etc/shadow`
 * would read through its `data/` grant; the host refuses such a plugin at load instead.
 * @module
 */

import { lstat, readdir, readlink, realpath } from "node:fs/promises";
import { join, resolve, sep } from "node:path";

function inside(path: string, roots: readonly string[]): boolean {
  return roots.some((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
}

/**
 * Walks `dirs` (without following links) and lists every symlink whose target resolves outside
 * `allowed` (or does not resolve).
 *
 * @param dirs directories to walk (absolute; missing ones are skipped)
 * @param allowed absolute real paths the plugin may reach
 * @param maxEntries stop after this many entries (default 100,000) and report the directory
 * @returns `"link -> target"` descriptions, empty when none escape
 * @example
 * ```ts
 * await findEscapingSymlinks(["/srv/p"], ["/srv/p"]); // ["/srv/p/x -> /etc/passwd"]
 * ```
 */
export async function findEscapingSymlinks(
  dirs: readonly string[],
  allowed: readonly string[],
  maxEntries = 100_000,
): Promise<string[]> {
  const found: string[] = [];
  let seen = 0;
  const walk = async (path: string): Promise<void> => {
    if (++seen > maxEntries) {
      found.push(`${path} (too many entries to check)`);
      return;
    }
    let st;
    try {
      st = await lstat(path);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = await realpath(path);
      } catch {
        found.push(`${path} -> ${resolve(path, "..", await readlink(path))} (dangling)`);
        return;
      }
      if (!inside(target, allowed)) found.push(`${path} -> ${target}`);
      return;
    }
    if (st.isDirectory()) {
      for (const name of await readdir(path)) await walk(join(path, name));
    }
  };
  for (const d of dirs) await walk(d);
  return found;
}

/**
 * Resolves a path to its real path when it exists, else returns it unchanged.
 *
 * @param path absolute path
 * @returns the real path
 * @example
 * ```ts
 * await realOrSelf("/tmp"); // "/tmp"
 * ```
 */
export async function realOrSelf(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}
