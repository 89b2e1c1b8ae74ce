// Every example runs as documented, under the runtime running the tests.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runtime } from "../_helpers.ts";
import { runExample } from "./_run_example.ts";

describe("examples", () => {
  it("demo.ts signs, loads, denies the escaper, refuses the tampered copy and prints the table", () => {
    const { status, out } = runExample("examples/demo.ts");
    assert.equal(status, 0, out);
    assert.match(out, /weather\.forecast\('Oslo'\) -> \{"city":"Oslo"/);
    assert.match(out, /tampered copy of weather: refused with ERR_SIGNATURE_INVALID/);
    assert.match(out, /ctx\.get\(database\)\s+denied \(ERR_PERMISSION_DENIED\)/);
    assert.match(out, new RegExp(`Runtime: ${runtime}\\.`));
    // Auto isolation: Node's worker tier enforces these manifests; Bun's and Deno's do not, so
    // on Linux their plugins run in the process tier.
    const tier = runtime === "node" || process.platform !== "linux" ? "worker" : "process";
    for (const name of ["weather", "catalog", "escaper"]) {
      assert.match(out, new RegExp(`^${name}\\s+\\S+\\s+active\\s+${tier}\\s+trusted`, "m"));
    }
    if (process.platform === "linux") {
      assert.match(out, /^wordcount\s+\S+\s+active\s+native\s+trusted\s+landlock\*/m);
      assert.match(out, /wordcount\.peek\(\)\s+-> denied/);
      assert.match(out, /wordcount metrics\s+-> rss \d/);
    }
    if (runtime !== "bun" || process.platform === "linux") assert.doesNotMatch(out, /ESCAPED/);
  });

  it("quick_start.ts runs", () => {
    const { status, out } = runExample("examples/quick_start.ts");
    assert.equal(status, 0, out);
    assert.match(out, /Hello, Ada/);
  });
});
