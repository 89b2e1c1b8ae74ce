// The README's CLI walkthrough runs as written: every line of the block, in order, in a fresh
// temporary directory, under the runtime running this test; each must exit 0.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { removeDir, runtime, tempDir } from "../_helpers.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = join(root, "lib", "cli.ts");
const SECRETS: Record<string, string> = {
  BULKHEAD_PASSPHRASE: "correct horse battery staple",
  BULKHEAD_TRUST_PASSPHRASE: "list passphrase for the walkthrough",
};

/** The shell block that follows "The `bulkhead` CLI" in the README. */
function walkthrough(): string[] {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const at = readme.indexOf("The `bulkhead` CLI");
  const start = readme.indexOf("```sh\n", at) + 6;
  const end = readme.indexOf("```", start);
  return readme.slice(start, end).split("\n").filter((l) => l.trim() !== "");
}

describe("README CLI walkthrough", () => {
  let dir: string;
  before(() => {
    dir = tempDir();
    chmodSync(dir, 0o755); // a plugin here may run in a sandboxed child with its own uid
  });
  after(() => removeDir(dir));

  it("every line exits 0", () => {
    const lines = walkthrough();
    assert.ok(lines.length >= 10, "the walkthrough was found");
    const run = runtime === "deno"
      ? `"${process.execPath}" run -A --unstable-worker-options --no-prompt "${cli}"`
      : `"${process.execPath}" "${cli}"`;
    const script = [`bulkhead() { ${run} "$@"; }`];
    lines.forEach((line, i) => {
      const value = /^export (\w+)=\.\.\./.exec(line)?.[1];
      const command = value !== undefined
        ? `export ${value}=${JSON.stringify(SECRETS[value] ?? "x")}`
        : line;
      script.push(`${command}`, `echo "__rc ${i} $?" >&3`);
    });
    writeFileSync(join(dir, "walkthrough.sh"), script.join("\n") + "\n");
    const r = spawnSync("bash", ["-c", "bash walkthrough.sh 3>rc.txt"], {
      cwd: dir,
      encoding: "utf8",
      env: {
        ...process.env,
        HOME: dir,
        BULKHEAD_TRUST_LIST: join(dir, "trust-list.bin"),
      },
      timeout: 300_000,
    });
    const rcs = readFileSync(join(dir, "rc.txt"), "utf8").trim().split("\n")
      .map((l) => l.split(" ").map(Number).slice(1) as [number, number]);
    assert.equal(rcs.length, lines.length, `${r.stdout}\n${r.stderr}`);
    for (const [i, rc] of rcs) {
      assert.equal(rc, 0, `line ${i + 1} "${lines[i]}" exited ${rc}:\n${r.stderr.slice(-2000)}`);
    }
    assert.match(r.stdout, /"Hello, Ada/i);
  });
});
