// The README's guarantee table is derived from `info.enforcement`: the rows must equal what the
// describers report, so the two cannot drift.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { guaranteeRows } from "./_guarantees.ts";

describe("README guarantee table", () => {
  it("equals the enforcement reports of every runtime and tier", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const start = readme.indexOf("<!-- derived-guarantees:start -->");
    const end = readme.indexOf("<!-- derived-guarantees:end -->");
    assert.ok(start > 0 && end > start, "the README has the derived table markers");
    const rows = readme.slice(start, end).split("\n").filter((l) => /^\|\s*[a-z]+\s*\|/.test(l))
      .filter((l) => !/^\|\s*area\s*\|/.test(l))
      .map((l) => l.split("|").map((c) => c.trim()).filter((c) => c !== "").join(" | "));
    const expected = guaranteeRows().map((l) =>
      l.split("|").map((c) => c.trim()).filter((c) => c !== "").join(" | ")
    );
    assert.deepEqual(rows, expected);
  });
});
