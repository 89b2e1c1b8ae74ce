// Repo invariants from STYLE.md, checked on the sources: who may import whom, where runtime globals
// live, no cycles, erasable TypeScript only. Sources are tokenized (comments and string contents
// blanked) so that JSDoc examples and messages do not count as code.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SKIP_DIRS = new Set(["node_modules", "dist", ".tmp", ".git"]);

function listTs(dir: string): string[] {
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
function tokenize(src: string): { code: string; text: string } {
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

interface ImportRef {
  specifier: string;
  /** `import type` / `export type` (erased at run time). */
  typeOnly: boolean;
  /** `import("...")` with a literal specifier. */
  dynamic: boolean;
  line: number;
}

interface Source {
  path: string;
  code: string;
  imports: ImportRef[];
}

const STATIC = /(?:^|[;}\n])\s*(import|export)\s+(type\s+)?(?:[\w$*{][^;]*?\s+from\s+)?(["'])/g;
const DYNAMIC = /\bimport\s*\(\s*(["'`])/g;

function readSource(path: string): Source {
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
  return { path, code, imports };
}

/** Repo-relative path of a relative specifier, or undefined for bare and `node:` specifiers. */
function target(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return undefined;
  return relative(root, resolve(root, dirname(from), specifier)).split("\\").join("/");
}

const packageOf = (s: string) => s.split("/").slice(0, s.startsWith("@") ? 2 : 1).join("/");
const isBuiltin = (s: string) =>
  s.startsWith("node:") || builtinModules.includes(s.split("/")[0] as string);

const ALL = listTs(".").map(readSource);
const LIBRARY = ALL.filter((s) => /^(lib|permissions|ffi)\//.test(s.path) || s.path === "mod.ts");
const byPath = new Map(ALL.map((s) => [s.path, s]));
const where = (s: Source, line: number) => `${s.path}:${line}`;

describe("source boundaries", () => {
  it("finds the library sources and their imports", () => {
    assert.ok(LIBRARY.length > 20, `only ${LIBRARY.length} library files found`);
    const mod = byPath.get("mod.ts");
    assert.ok(mod !== undefined && mod.imports.some((i) => i.specifier === "./lib/host.ts"));
    // The tokenizer must not take JSDoc examples for imports.
    const grants = byPath.get("permissions/grants.ts") as Source;
    assert.ok(!grants.imports.some((i) => i.specifier === "./grants.ts"));
  });

  it("permissions/ imports only its own files and lib/errors.ts", () => {
    const bad: string[] = [];
    for (const s of LIBRARY.filter((x) => x.path.startsWith("permissions/"))) {
      for (const i of s.imports) {
        const t = target(s.path, i.specifier);
        const ok = t !== undefined && (t.startsWith("permissions/") || t === "lib/errors.ts");
        if (!ok) bad.push(`${where(s, i.line)} imports "${i.specifier}"`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it("only lib/runtime/ touches Deno, Bun or node:worker_threads", () => {
    const bad: string[] = [];
    for (const s of LIBRARY.filter((x) => !x.path.startsWith("lib/runtime/"))) {
      for (const m of s.code.matchAll(/\b(Deno|Bun)\b/g)) {
        bad.push(`${where(s, s.code.slice(0, m.index).split("\n").length)} uses ${m[1]}`);
      }
      for (const i of s.imports) {
        if (/^(node:)?worker_threads$/.test(i.specifier) && !i.typeOnly) {
          bad.push(`${where(s, i.line)} imports ${i.specifier}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it("runtime detection by process.versions is confined to lib/runtime/ and one ffi file", () => {
    const users = LIBRARY.filter((s) => /\bprocess\s*\.\s*versions\b/.test(s.code))
      .map((s) => s.path)
      .filter((p) => !p.startsWith("lib/runtime/"));
    assert.ok(users.length <= 1 && users.every((p) => p === "ffi/_runtime_cmd.ts"), `${users}`);
  });

  // The child entries of native plugins and of the JS process tier; nothing the host imports.
  const KOFFI_USERS = new Set(["ffi/_child.ts", "ffi/_js_child.ts", "ffi/_js_stage1.ts"]);

  it("loads koffi only inside the child processes", () => {
    const bad: string[] = [];
    for (const s of LIBRARY) {
      for (const i of s.imports) {
        if (packageOf(i.specifier) !== "koffi" || i.typeOnly) continue;
        if (!(i.dynamic && KOFFI_USERS.has(s.path))) {
          bad.push(`${where(s, i.line)} imports koffi${i.dynamic ? " dynamically" : ""}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it("keeps ffi/ and koffi out of the static import graph of every JS entry point", () => {
    const entries = ["mod.ts", "lib/define.ts", "permissions/mod.ts", "lib/trust/mod.ts"];
    for (const entry of entries) {
      const seen = new Set<string>();
      const stack = [entry];
      while (stack.length > 0) {
        const p = stack.pop() as string;
        if (seen.has(p)) continue;
        seen.add(p);
        const s = byPath.get(p);
        assert.ok(s !== undefined, `${p} (reached from ${entry}) does not exist`);
        for (const i of s.imports) {
          if (i.typeOnly || i.dynamic) continue;
          assert.notEqual(packageOf(i.specifier), "koffi", `${entry} reaches koffi via ${p}`);
          const t = target(p, i.specifier);
          if (t !== undefined) stack.push(t);
        }
      }
      const ffi = [...seen].filter((p) => p.startsWith("ffi/"));
      assert.deepEqual(ffi, [], `${entry} statically imports ffi/`);
    }
  });

  it("has no console.* in lib/, permissions/ and ffi/ except lib/cli.ts", () => {
    const bad: string[] = [];
    for (const s of LIBRARY.filter((x) => x.path !== "lib/cli.ts")) {
      for (const m of s.code.matchAll(/\bconsole\s*\./g)) {
        bad.push(where(s, s.code.slice(0, m.index).split("\n").length));
      }
    }
    assert.deepEqual(bad, []);
  });

  it("has no import cycles among lib/, permissions/, ffi/ and mod.ts", () => {
    // Static imports and re-exports, type-only included: the module graph must read as layers.
    const graph = new Map<string, string[]>();
    for (const s of LIBRARY) {
      graph.set(
        s.path,
        s.imports.filter((i) => !i.dynamic)
          .map((i) => target(s.path, i.specifier))
          .filter((t): t is string => t !== undefined),
      );
    }
    const cycles: string[] = [];
    const state = new Map<string, 1 | 2>(); // 1 on the stack, 2 done
    const path: string[] = [];
    const visit = (p: string) => {
      state.set(p, 1);
      path.push(p);
      for (const q of graph.get(p) ?? []) {
        if (state.get(q) === 1) cycles.push([...path.slice(path.indexOf(q)), q].join(" -> "));
        else if (!state.has(q)) visit(q);
      }
      path.pop();
      state.set(p, 2);
    };
    for (const p of graph.keys()) if (!state.has(p)) visit(p);
    assert.deepEqual(cycles, []);
  });

  it("every relative import names an existing .ts file", () => {
    const bad: string[] = [];
    for (const s of ALL) {
      for (const i of s.imports) {
        const t = target(s.path, i.specifier);
        if (t === undefined) continue;
        if (!t.endsWith(".ts") && !t.endsWith(".json")) {
          bad.push(`${where(s, i.line)} imports "${i.specifier}"`);
        } else if (!byPath.has(t) && !t.endsWith(".json")) {
          bad.push(`${where(s, i.line)} imports missing "${i.specifier}"`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it("every bare import of the library is a dependency in package.json", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const bad: string[] = [];
    for (const s of LIBRARY) {
      for (const i of s.imports) {
        if (target(s.path, i.specifier) !== undefined || isBuiltin(i.specifier)) continue;
        if (!Object.hasOwn(pkg.dependencies, packageOf(i.specifier))) {
          bad.push(`${where(s, i.line)} imports "${i.specifier}"`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it("uses erasable TypeScript only (no enum, namespace or parameter properties)", () => {
    const bad: string[] = [];
    const rules: [RegExp, string][] = [
      [/(?:^|[^\w$.])(?:const\s+)?enum\s+[\w$]+\s*\{/g, "enum"],
      [/(?:^|[^\w$.])(?:namespace|module)\s+[\w$.]+\s*\{/g, "namespace"],
      [
        /\bconstructor\s*\([^)]*\b(?:public|private|protected|readonly)\s+[\w$]/g,
        "parameter property",
      ],
    ];
    for (const s of ALL) {
      for (const [re, what] of rules) {
        for (const m of s.code.matchAll(re)) {
          const at = (m.index ?? 0) + m[0].length - m[0].trimStart().length;
          bad.push(`${where(s, s.code.slice(0, at).split("\n").length)}: ${what}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });
});
