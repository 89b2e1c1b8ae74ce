/**
 * The one upward search of the file system, as Node's resolution does it: from a directory
 * towards `/`, the first `dir/relative` that exists. Used for the package.json files Node reads
 * for module types and for the packages the plugin side needs.
 *
 * @example
 * ```ts
 * import { findUp } from "./find_up.ts";
 * findUp(import.meta.dirname ?? ".", "package.json");
 * ```
 * @module
 */

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * The first `relative` at or above `from`, as a lexical path (links not resolved).
 *
 * @param from the directory to start in
 * @param relative e.g. `"package.json"` or `"node_modules/comlink"`
 * @returns the path, or undefined when no ancestor has it
 */
export function findUp(from: string, relative: string): string | undefined {
  for (let dir = from;; dir = dirname(dir)) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}
