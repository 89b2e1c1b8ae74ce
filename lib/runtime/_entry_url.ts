/**
 * Resolves a sibling worker entry file with the extension of the calling module, so the same code
 * works from `.ts` sources (Deno, Bun, Node type stripping) and from the `.js` build.
 * @module
 */

/**
 * @param base the caller's `import.meta.url`
 * @param stem file name without extension, relative to `base`
 * @returns the entry URL
 * @example
 * ```ts
 * entryUrl(import.meta.url, "./_node_worker"); // file:///.../_node_worker.ts
 * ```
 */
export function entryUrl(base: string, stem: string): URL {
  const ext = base.endsWith(".js") ? ".js" : ".ts";
  return new URL(`${stem}${ext}`, base);
}
