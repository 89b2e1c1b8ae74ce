/**
 * Handing the verified private copy of a package to a sandboxed child that runs as its own uid:
 * the copy stays owned by root and becomes readable (never writable) by the sandbox uid's group,
 * and by nothing else. Private to lib/tiers.
 * @module
 */

import { chmodSync, chownSync, lstatSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * Makes `copyDir` (and its private parent made by `mkdtemp`) readable by group `gid` only:
 * directories 0750, files 0440, owner root. Links are never followed (the copy holds none).
 *
 * @param copyDir the private copy's package directory
 * @param gid the sandbox uid's group
 */
export function shareCopyWithSandbox(copyDir: string, gid: number): void {
  const walk = (path: string): void => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    chownSync(path, 0, gid);
    if (st.isDirectory()) {
      chmodSync(path, 0o750);
      for (const name of readdirSync(path)) walk(join(path, name));
    } else {
      chmodSync(path, 0o440);
    }
  };
  const parent = dirname(copyDir);
  chownSync(parent, 0, gid);
  chmodSync(parent, 0o750);
  walk(copyDir);
}
