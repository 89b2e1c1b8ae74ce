/**
 * A cheap fingerprint of a directory tree (paths, sizes, modification times) for hot reload.
 * @module
 */

import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * @param dir directory to fingerprint
 * @param maxEntries stop after this many entries
 * @returns a string that changes when any file is added, removed, resized or touched
 */
export async function fingerprint(dir: string, maxEntries = 10_000): Promise<string> {
  const parts: string[] = [];
  const walk = async (path: string, rel: string): Promise<void> => {
    if (parts.length >= maxEntries) return;
    const st = await lstat(path);
    parts.push(`${rel}:${st.size}:${st.mtimeMs}`);
    if (st.isDirectory()) {
      for (const name of (await readdir(path)).sort()) {
        await walk(join(path, name), `${rel}/${name}`);
      }
    }
  };
  await walk(dir, "");
  return parts.join("\n");
}
