/**
 * The `strict` policy end to end: write a release key with the library API, sign a plugin with
 * it, load the plugin under `policy: "strict"` (a signature from a trusted key, and every
 * restriction enforced: on Linux that selects the sandboxed process tier), call it, print
 * `info.enforcement`, close.
 *
 * Run: `node examples/strict_signed.ts`, `bun examples/strict_signed.ts`, or
 * `deno run -A --unstable-worker-options --no-prompt examples/strict_signed.ts`.
 * @module
 */

import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PluginError, PluginHost } from "../mod.ts";
import {
  createSignature,
  encodeSignatureFile,
  formatPublicKey,
  readPackage,
  readPublicKey,
  readSecretKeyFile,
  writeKeyFiles,
} from "../lib/trust/mod.ts";

const work = mkdtempSync(join(tmpdir(), "bulkhead-strict-"));
// The plugin runs as a fresh unprivileged uid: its directory must be readable by others.
chmodSync(work, 0o755);
const plugins = join(work, "plugins");
const dir = join(plugins, "textstats");
cpSync(fileURLToPath(new URL("./plugins/textstats", import.meta.url)), dir, { recursive: true });

try {
  // 1. A release key, as `bulkhead keygen` writes it: the secret file is mode 0600.
  mkdirSync(join(work, "keys"), { mode: 0o700 });
  const keys = await writeKeyFiles(join(work, "keys", "release.key"));
  console.log(`key ${keys.keyId} written to ${keys.secretPath} (public: ${keys.publicPath})`);

  // 2. Sign the package: the statement binds name, version and the digest of every file.
  const snapshot = await readPackage(dir);
  const { secretKey } = await readSecretKeyFile(keys.secretPath);
  const statement = { name: "textstats", version: "1.0.0", digest: snapshot.digest };
  writeFileSync(
    join(dir, "plugin.sig"),
    encodeSignatureFile(createSignature(statement, secretKey)),
  );
  secretKey.fill(0);
  console.log(`signed textstats 1.0.0 (${snapshot.digest.slice(0, 24)}...)`);

  // 3. Load it under strict, trusting only the public key file.
  const host = new PluginHost({
    pluginDirs: [plugins],
    policy: "strict",
    trust: { pinnedKeys: [formatPublicKey(await readPublicKey(keys.publicPath))] },
  });
  try {
    await host.discover();
    const stats = await host.load("textstats").catch((error: PluginError) => {
      // Off Linux (no process-tier sandbox) strict refuses rather than run the plugin unconfined.
      const hint = error.hint === undefined ? "" : ` (${error.hint})`;
      console.log(`strict refused textstats: ${error.code}: ${error.message}${hint}`);
      process.exitCode = 1;
    });
    if (stats !== undefined) {
      const text = "a signed plugin\nin a sandbox of its own";
      console.log(`textstats.count(...)  -> ${JSON.stringify(await stats.call("count", text))}`);
      console.log(`textstats.peek(...)   -> ${await stats.call("peek", "/etc/hostname")}`);
      const { enforcement, trust } = stats.info;
      console.log(
        `trust: ${trust?.state}, tier: ${enforcement?.tier}, runtime: ${enforcement?.runtime}`,
      );
      console.log("info.enforcement (* = enforced by the kernel or the host):");
      const { runtime: _r, tier: _t, ...areas } = enforcement ?? {};
      for (const [area, entry] of Object.entries(areas)) {
        const note = entry.note === undefined ? "" : `  ${entry.note}`;
        console.log(`  ${area.padEnd(11)} ${entry.mechanism}${entry.enforced ? "*" : " "}${note}`);
      }
    }
  } finally {
    await host.close();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
