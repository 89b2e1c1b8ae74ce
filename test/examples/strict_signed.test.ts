// examples/strict_signed.ts runs as documented under the runtime running the tests: it writes a
// key, signs a plugin, loads it under the strict policy (the process tier on Linux), calls it,
// prints info.enforcement and removes its temp dir.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { runtime } from "../_helpers.ts";
import { runExample } from "./_run_example.ts";

describe("examples/strict_signed.ts", () => {
  it("signs with a fresh key file, loads under strict, calls and prints the enforcement", () => {
    const { status, out } = runExample("examples/strict_signed.ts");
    const key = /^key ([0-9a-f]{16}) written to (\S+)\/keys\/release\.key \(public: \S+\.pub\)$/m
      .exec(out);
    assert.ok(key, out);
    assert.match(out, /^signed textstats 1\.0\.0 \([0-9a-f]{24}\.\.\.\)$/m);
    assert.equal(existsSync(key[2] as string), false, "the temp dir is removed");
    if (process.platform !== "linux") {
      assert.equal(status, 1, out);
      assert.match(out, /^strict refused textstats: ERR_[A-Z_]+: Cannot /m);
      return;
    }
    assert.equal(status, 0, out);
    assert.match(out, /^textstats\.count\(\.\.\.\)\s+-> \{"words":9,"lines":2,"chars":39\}$/m);
    assert.match(out, /^textstats\.peek\(\.\.\.\)\s+-> denied \(EACCES\)$/m);
    assert.match(out, new RegExp(`^trust: trusted, tier: process, runtime: ${runtime}$`, "m"));
    const areas = [...out.matchAll(/^ {2}(\w+)\s+(\S+?)(\*?)(?: {2}.*)?$/gm)];
    const table: Record<string, string> = Object.fromEntries(
      areas.map((m) => [m[1] as string, `${m[2]}${m[3]}`]),
    );
    assert.deepEqual(Object.keys(table).sort(), [
      "cpu",
      "env",
      "ffi",
      "filesystem",
      "memory",
      "network",
      "process",
      "signals",
      "subprocess",
    ]);
    assert.equal(table.filesystem, "landlock*");
    assert.equal(table.network, "netns*");
    assert.equal(table.subprocess, "seccomp*");
    for (const [area, cell] of Object.entries(table)) {
      assert.ok(cell.endsWith("*"), `${area} is enforced under strict: ${cell}`);
    }
    assert.doesNotMatch(out, /this is a bug/);
  });
});
