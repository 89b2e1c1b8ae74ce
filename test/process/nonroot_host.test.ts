// The process tier on a host that is not root (issue 13): the same kernel enforcement, without
// the fresh sandbox uid a root host can allocate. Runs the host as uid 65534 through setpriv.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

const here = dirname(fileURLToPath(import.meta.url));
const NOBODY = 65534;

function why(): string | false {
  if (process.platform !== "linux") return "Linux only";
  if (process.getuid?.() !== 0) return "the test switches to another uid, which needs root";
  if (!existsSync("/usr/bin/setpriv")) return "setpriv (util-linux) is not installed";
  const probe = spawnSync("/usr/bin/setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "--",
    "unshare",
    "-Urn",
    "true",
  ]);
  return probe.status === 0 ? false : "unprivileged user namespaces are not available here";
}

describe("process tier on a non-root host", { skip: why() }, () => {
  let root: string;
  before(() => {
    root = tempDir();
    chmodSync(root, 0o777);
    writePlugin(root, "plain", { entry: "./mod.js", isolation: "process" }, {
      "mod.js": `import { writeFileSync } from "node:fs";
export default { methods: {
  ping: () => "pong",
  escape: () => { try { writeFileSync(${
        JSON.stringify(join(root, "escaped.txt"))
      }, "x"); return "wrote"; }
    catch (e) { return "denied:" + (e.code ?? e.name); } },
} };`,
    });
    chmodSync(join(root, "plain"), 0o755);
    mkdirSync(join(root, "home"), { mode: 0o777 });
  });
  after(() => removeDir(root));

  it("loads, answers, and the kernel still refuses a write outside the grants", () => {
    const args = runtime === "deno"
      ? ["run", "-A", "--unstable-worker-options", "--no-prompt", "--no-check"]
      : [];
    const r = spawnSync("/usr/bin/setpriv", [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "--",
      process.execPath,
      ...args,
      join(here, "_nonroot_host.ts"),
      join(root, "plain"),
    ], {
      encoding: "utf8",
      cwd: root,
      timeout: 120_000,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: join(root, "home"),
        DENO_DIR: join(root, "home", "deno"),
        BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0",
      },
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr.slice(-3000)}`);
    const out = JSON.parse(r.stdout.trim().split("\n").pop() as string);
    assert.equal(out.uid, NOBODY);
    assert.equal(out.answer, "pong");
    assert.match(out.escape, /^denied:/);
    assert.equal(existsSync(join(root, "escaped.txt")), false);
    assert.equal(out.tier, "process");
    assert.equal(out.filesystem, "landlock");
    for (const area of ["filesystem", "network", "subprocess", "signals"]) {
      assert.ok(out.enforced.includes(area), `${area} enforced: ${JSON.stringify(out)}`);
    }
  });
});
