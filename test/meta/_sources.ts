// The repository's sources, tokenized (comments and string contents blanked) with their imports:
// shared by the meta tests. Private to test/meta.
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SKIP_DIRS = new Set(["node_modules", "dist", ".tmp", ".git"]);

export function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = dir === "." ? e.name : `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...listTs(rel));
    } else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
      out.push(rel);
    }
  }
  return out;
}

const REGEX_BEFORE = new Set([..."(,=:[!&|?{};+-*%<>~^"]);
const REGEX_AFTER_WORD = /(?:^|[^\w$.])(?:return|typeof|case|do|else|in|of|void|yield|await)$/;

/**
 * Splits a source into `code` (comments and the contents of strings, templates and regex literals
 * replaced by spaces; `${...}` expressions kept) and `text` (comments blanked, literals kept). Both
 * have the source's length, so offsets found in one are valid in the other.
 */
export function tokenize(src: string): { code: string; text: string } {
  const code = [...src];
  const text = [...src];
  const blank = (a: string[], from: number, to: number) => {
    for (let k = from; k < to; k++) if (a[k] !== "\n") a[k] = " ";
  };
  const braces: number[] = []; // open-brace depth at each `${` of the enclosing templates
  let depth = 0;
  let i = 0;
  const n = src.length;
  const lastSignificant = (at: number) => {
    let k = at - 1;
    while (k >= 0 && /\s/.test(code[k] as string)) k--;
    return k;
  };
  const readTemplate = (start: number) => {
    // `start` is just after a backtick or after the `}` that closes an expression
    let k = start;
    while (k < n) {
      const c = src[k];
      if (c === "\\") k += 2;
      else if (c === "`") {
        blank(code, start, k);
        return k + 1;
      } else if (c === "$" && src[k + 1] === "{") {
        blank(code, start, k);
        braces.push(depth);
        depth++;
        return k + 2;
      } else k++;
    }
    blank(code, start, n);
    return n;
  };
  while (i < n) {
    const c = src[i] as string;
    const next = src[i + 1];
    if (c === "/" && next === "/") {
      const end = src.indexOf("\n", i);
      const stop = end < 0 ? n : end;
      blank(code, i, stop);
      blank(text, i, stop);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      blank(code, i, stop);
      blank(text, i, stop);
      i = stop;
    } else if (c === '"' || c === "'") {
      let k = i + 1;
      while (k < n && src[k] !== c && src[k] !== "\n") k += src[k] === "\\" ? 2 : 1;
      blank(code, i + 1, k);
      i = k + 1;
    } else if (c === "`") {
      i = readTemplate(i + 1);
    } else if (c === "{") {
      depth++;
      i++;
    } else if (c === "}") {
      depth--;
      if (braces.length > 0 && braces[braces.length - 1] === depth) {
        braces.pop();
        i = readTemplate(i + 1);
      } else i++;
    } else if (c === "/") {
      const k = lastSignificant(i);
      const before = k < 0 ? "" : code[k] as string;
      const isRegex = k < 0 || REGEX_BEFORE.has(before) ||
        REGEX_AFTER_WORD.test(code.slice(Math.max(0, k - 10), k + 1).join(""));
      if (!isRegex) {
        i++;
        continue;
      }
      let m = i + 1;
      let inClass = false;
      while (m < n && src[m] !== "\n") {
        const d = src[m];
        if (d === "\\") m++;
        else if (d === "[") inClass = true;
        else if (d === "]") inClass = false;
        else if (d === "/" && !inClass) break;
        m++;
      }
      blank(code, i + 1, m);
      i = m + 1;
    } else i++;
  }
  return { code: code.join(""), text: text.join("") };
}

export interface ImportRef {
  specifier: string;
  /** `import type` / `export type` (erased at run time). */
  typeOnly: boolean;
  /** `import("...")` with a literal specifier. */
  dynamic: boolean;
  line: number;
}

export interface Source {
  path: string;
  code: string;
  /** The source with comments blanked and literals kept (same offsets as `code`). */
  text: string;
  imports: ImportRef[];
}

const STATIC = /(?:^|[;}\n])\s*(import|export)\s+(type\s+)?(?:[\w$*{][^;]*?\s+from\s+)?(["'])/g;
const DYNAMIC = /\bimport\s*\(\s*(["'`])/g;

export function readSource(path: string): Source {
  const src = readFileSync(join(root, path), "utf8");
  const { code, text } = tokenize(src);
  const imports: ImportRef[] = [];
  const literalAt = (quoteAt: number) => {
    const quote = text[quoteAt] as string;
    const end = text.indexOf(quote, quoteAt + 1);
    return text.slice(quoteAt + 1, end);
  };
  const lineOf = (at: number) => code.slice(0, at).split("\n").length;
  for (const m of code.matchAll(STATIC)) {
    // `export { a } from` needs the `from`; a plain `export const x = "..."` has no specifier.
    const quoteAt = (m.index ?? 0) + m[0].length - 1;
    if (m[1] === "export" && !/\sfrom\s+["']$/.test(m[0])) continue;
    imports.push({
      specifier: literalAt(quoteAt),
      typeOnly: m[2] !== undefined,
      dynamic: false,
      line: lineOf(quoteAt),
    });
  }
  for (const m of code.matchAll(DYNAMIC)) {
    const quoteAt = (m.index ?? 0) + m[0].length - 1;
    const specifier = literalAt(quoteAt);
    if (m[1] === "`" && specifier.includes("${")) continue;
    imports.push({ specifier, typeOnly: false, dynamic: true, line: lineOf(quoteAt) });
  }
  return { path, code, text, imports };
}

/** Repo-relative path of a relative specifier, or undefined for bare and `node:` specifiers. */
export function target(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return undefined;
  return relative(root, resolve(root, dirname(from), specifier)).split("\\").join("/");
}

export const packageOf = (s: string) => s.split("/").slice(0, s.startsWith("@") ? 2 : 1).join("/");
export const isBuiltin = (s: string) =>
  s.startsWith("node:") || builtinModules.includes(s.split("/")[0] as string);

export const ALL = listTs(".").map(readSource);
export const LIBRARY = ALL.filter((s) =>
  /^(lib|permissions|ffi|sandbox)\//.test(s.path) || s.path === "mod.ts"
);
export const byPath = new Map(ALL.map((s) => [s.path, s]));
export const where = (s: Source, line: number) => `${s.path}:${line}`;
