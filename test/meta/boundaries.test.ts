// Repo invariants from STYLE.md, checked on the sources: who may import whom, where runtime globals
// live, no cycles, erasable TypeScript only. Sources are tokenized (comments and string contents
// blanked) so that JSDoc examples and messages do not count as code.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ALL,
  byPath,
  isBuiltin,
  LIBRARY,
  packageOf,
  root,
  type Source,
  target,
  where,
} from "./_sources.ts";

describe("source boundaries", () => {
  it("finds the library sources and their imports", () => {
    assert.ok(LIBRARY.length > 20, `only ${LIBRARY.length} library files found`);
    const mod = byPath.get("mod.ts");
    assert.ok(mod !== undefined && mod.imports.some((i) => i.specifier === "./lib/host/host.ts"));
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
    assert.ok(users.length <= 1 && users.every((p) => p === "sandbox/runtime_cmd.ts"), `${users}`);
  });

  // The child entries of native plugins and of the JS process tier; nothing the host imports.
  const KOFFI_USERS = new Set([
    "lib/guest/native_child.ts",
    "lib/guest/process_child.ts",
    "lib/guest/process_stage1.ts",
  ]);

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
