// The folders are the architecture: guest code is reached only as an entry URL, `_` means private
// to its folder, the policy and sandbox layers never reach up into the host or the tiers, each
// shared concept has one definition, every PluginError message says what could not be done, and
// no source file outgrows one concept.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { LIBRARY, type Source, target, where } from "./_sources.ts";

/** Code that runs inside a plugin's isolate or child: started by URL, never imported by the host. */
const isGuest = (p: string) =>
  p.startsWith("lib/guest/") ||
  /^lib\/runtime\/_(node_worker|deno_worker|deno_loader|web_worker|bun_guard|lockdown|serve_locked)\.ts$/
    .test(
      p,
    );

/** Host code that permissions/ and sandbox/ must never import. */
const isHostOrTier = (p: string) =>
  p === "mod.ts" || p.startsWith("lib/tiers/") || p.startsWith("lib/broker/") ||
  p.startsWith("lib/guest/") ||
  p.startsWith("lib/host/") ||
  ["lib/plugin.ts", "lib/hooks.ts"].includes(p) ||
  /^lib\/_[^/]+\.ts$/.test(p);

function imports(s: Source): { to: string; line: number }[] {
  const out: { to: string; line: number }[] = [];
  for (const i of s.imports) {
    const to = target(s.path, i.specifier);
    if (to !== undefined) out.push({ to, line: i.line });
  }
  return out;
}

describe("architecture", () => {
  it("host code never imports guest code", () => {
    const bad: string[] = [];
    for (const s of LIBRARY.filter((x) => !isGuest(x.path))) {
      for (const i of imports(s)) {
        if (isGuest(i.to)) bad.push(`${where(s, i.line)} imports ${i.to}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it("a _file is imported only from its own folder", () => {
    const bad: string[] = [];
    for (const s of LIBRARY) {
      for (const i of imports(s)) {
        const base = i.to.split("/").pop() as string;
        if (base.startsWith("_") && dirname(i.to) !== dirname(s.path)) {
          bad.push(`${where(s, i.line)} imports ${i.to}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it("permissions/ and sandbox/ never import the host or tier layers", () => {
    const bad: string[] = [];
    for (const s of LIBRARY.filter((x) => /^(permissions|sandbox)\//.test(x.path))) {
      for (const i of imports(s)) {
        if (isHostOrTier(i.to)) bad.push(`${where(s, i.line)} imports ${i.to}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  const definitions: [string, RegExp][] = [
    ["detectRuntime", /\bexport\s+function\s+detectRuntime\b/],
    ["RuntimeName", /\bexport\s+type\s+RuntimeName\s*=/],
    ["Limits", /\bexport\s+(interface|type)\s+Limits\b/],
    ["Enforcement", /\bexport\s+(interface|type)\s+Enforcement\b/],
    ["the procfs sampler", /\bexport\s+function\s+sampleProcess\b/],
    ["the call engine", /\bclass\s+\w+\s+implements\s+PluginInstance\b/],
  ];
  for (const [name, re] of definitions) {
    it(`has exactly one definition of ${name}`, () => {
      const found = LIBRARY.filter((s) => re.test(s.code)).map((s) => s.path);
      assert.equal(found.length, 1, `${name}: ${found.join(", ") || "none"}`);
    });
  }

  it('every PluginError message with a literal text starts with "Cannot "', () => {
    const bad: string[] = [];
    let checked = 0;
    const re = /new\s+PluginError\s*\(\s*(?:"[^"\n]*"|[\w.#]+)\s*,\s*/g;
    for (const s of LIBRARY) {
      // The code has string contents blanked; the literal is read from `text` at the same offset.
      const text = s.text;
      for (const m of s.code.matchAll(re)) {
        const at = (m.index ?? 0) + m[0].length;
        const quote = s.code[at];
        if (quote !== '"' && quote !== "`" && quote !== "'") continue; // built elsewhere
        const literal = text.slice(at + 1, at + 8);
        checked++;
        if (literal !== "Cannot ") {
          bad.push(`${where(s, s.code.slice(0, at).split("\n").length)}: ${literal}`);
        }
      }
    }
    assert.deepEqual(bad, []);
    assert.ok(checked > 50, `only ${checked} messages found: the scan is broken`);
  });

  it("no source file is over 400 lines", () => {
    const long = LIBRARY.map((s) => [s.path, s.code.split("\n").length] as const)
      .filter(([, n]) => n > 400).map(([p, n]) => `${p}: ${n}`);
    assert.deepEqual(long, []);
  });
});

describe("README error table", () => {
  it("lists exactly ERROR_CODES with their meanings", async () => {
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { root } = await import("./_sources.ts");
    const { ERROR_CODES } = await import("../../lib/errors.ts");
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const rows = [...readme.matchAll(/^\|\s*`(ERR_[A-Z_]+)`\s*\|\s*(.+?)\s*\|$/gm)].map((
      m,
    ) => [m[1], m[2]]);
    assert.deepEqual(rows, Object.entries(ERROR_CODES));
  });
});
