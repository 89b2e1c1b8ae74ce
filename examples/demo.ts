/**
 * The bulkhead demo: signs the example plugins with a fresh key, stores the key in an encrypted
 * trust list, loads the plugins under the `standard` policy, calls them, shows a hostile plugin
 * being denied and a tampered copy being refused, and prints what each runtime enforced.
 *
 * Run: `npm run demo` (Node 26), `bun examples/demo.ts`, or
 * `deno run -A --unstable-worker-options --no-prompt examples/demo.ts`.
 * @module
 */

import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PluginError, PluginHost } from "../mod.ts";
import {
  addTrustedKey,
  createSignature,
  encodeSignatureFile,
  generateKeyPair,
  openTrustList,
  readPackage,
} from "../lib/trust/mod.ts";

const runtime = process.versions.deno ? "deno" : process.versions.bun ? "bun" : "node";
const examples = fileURLToPath(new URL("./plugins", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "bulkhead-demo-"));
const plugins = join(work, "plugins");
cpSync(examples, plugins, { recursive: true });

// A local "forecast API" the weather plugin may reach (127.0.0.1 is in its allow-list).
const server = createServer((req, res) => {
  const city = new URL(req.url ?? "/", "http://x").searchParams.get("city");
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ city, tomorrow: "sunny", highC: 21 }));
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
const port = (server.address() as { port: number }).port;

async function sign(dir: string, secretKey: Uint8Array): Promise<void> {
  const snap = await readPackage(dir);
  const manifest = JSON.parse(new TextDecoder().decode(snap.files.get("plugin.json"))) as {
    name: string;
    version: string;
  };
  const sig = createSignature({ ...manifest, digest: snap.digest }, secretKey);
  writeFileSync(join(dir, "plugin.sig"), encodeSignatureFile(sig));
}

// A native plugin, built from C with the system compiler (Linux: it runs in a sandboxed child).
let native = false;
if (process.platform === "linux") {
  const dir = join(plugins, "wordcount");
  mkdirSync(dir);
  const root = fileURLToPath(new URL("..", import.meta.url));
  try {
    execFileSync("cc", [
      "-shared",
      "-fPIC",
      "-O2",
      "-I",
      join(root, "ffi"),
      "-o",
      join(dir, "libwordcount.so"),
      join(root, "examples/native/wordcount.c"),
    ]);
    const manifest = {
      name: "wordcount",
      version: "1.0.0",
      native: { [`${process.platform}-${process.arch}`]: "./libwordcount.so" },
      limits: { heapMb: 64 },
    };
    writeFileSync(join(dir, "plugin.json"), JSON.stringify(manifest));
    native = true;
  } catch (e) {
    console.log(`(no C compiler: skipping the native plugin: ${(e as Error).message})`);
    rmSync(dir, { recursive: true, force: true });
  }
}

const key = generateKeyPair();
const signed = ["weather", "catalog", "escaper", ...(native ? ["wordcount"] : [])];
for (const name of signed) await sign(join(plugins, name), key.secretKey);
const listPath = join(work, "trust-list.bin");
const secret = { passphrase: "demo passphrase (use a real secret)" };
// scrypt cost 2^15 keeps the demo quick; the default is 2^17.
const list = await openTrustList(listPath, secret, { create: true, scryptLog2N: 15 });
await list.save(addTrustedKey(list.list, key.publicKey, { note: "demo key" }));
console.log(
  `Signed ${signed.length} plugins with key ${key.keyId}; trust list encrypted at ${listPath}\n`,
);

const auditLines: string[] = [];
const host = new PluginHost({
  pluginDirs: [plugins],
  policy: "standard",
  trust: { listPath, secret },
  context: {
    config: { forecastUrl: `http://127.0.0.1:${port}/forecast` },
    database: { dsn: "postgres://secret@db/prod" },
  },
  audit: (line) => auditLines.push(line),
});

try {
  await host.discover();
  const weather = await host.load("weather");
  const catalog = await host.load("catalog");
  const escaper = await host.load("escaper");

  console.log(
    "weather.forecast('Oslo') ->",
    JSON.stringify(await weather.call("forecast", "Oslo")),
  );
  console.log("catalog.find('bk-1')     ->", JSON.stringify(await catalog.call("find", "bk-1")));
  console.log("catalog.vandalize()      ->", await catalog.call("vandalize"));
  const hooked = await host.hooks.run("on_request", { path: "/checkout" });
  console.log("hooks.run(on_request)    ->", JSON.stringify(hooked.value));
  if (native) {
    const wc = await host.load("wordcount");
    console.log(
      "wordcount.count(...)     ->",
      JSON.stringify(await wc.call("count", "a native plugin in a sandbox")),
    );
    console.log(
      "wordcount.peek()         ->",
      await wc.call("peek"),
      "(fopen of /etc/hostname in C)",
    );
    const monitor = host.startMonitor({ intervalMs: 60_000 });
    await monitor.sample();
    monitor.stop();
    const m = wc.metrics();
    console.log(
      `wordcount metrics        -> rss ${
        ((m.heapBytes ?? 0) / 1048576).toFixed(1)
      } MiB, ${m.threadCount} threads, ${m.fdCount} fds, cpu ${m.cpuTimeMs} ms, tier ${wc.info.enforcement?.tier}`,
    );
  }
  console.log("\nescaper.escape():");
  for (
    const [what, outcome] of Object.entries(await escaper.call("escape") as Record<string, string>)
  ) {
    console.log(`  ${what.padEnd(24)} ${outcome}`);
  }

  // A tampered copy: one byte changed after signing. A second host with the same trust list.
  const tampered = join(work, "tampered", "weather");
  cpSync(join(plugins, "weather"), tampered, { recursive: true });
  writeFileSync(
    join(tampered, "mod.ts"),
    "export default { methods: { forecast: () => 'pwned' } };",
  );
  const second = new PluginHost({ policy: "standard", trust: { listPath, secret } });
  try {
    await second.load(tampered);
    console.log("\ntampered copy: LOADED (this is a bug)");
  } catch (e) {
    console.log(`\ntampered copy of weather: refused with ${(e as PluginError).code}`);
  } finally {
    await second.close();
  }

  console.log(
    `\nRuntime: ${runtime}. Enforcement per plugin (* = enforced by the runtime or host):`,
  );
  const rows = host.list().map((i) => {
    const e = i.enforcement;
    const cell = (k: "filesystem" | "network" | "env" | "memory" | "cpu") =>
      e === undefined ? "-" : `${e[k].mechanism}${e[k].enforced ? "*" : ""}`;
    const m = host.get(i.name)?.metrics();
    return [
      i.name,
      i.version,
      i.status,
      e?.tier ?? "-",
      i.trust?.state ?? "-",
      cell("filesystem"),
      cell("network"),
      cell("env"),
      cell("memory"),
      cell("cpu"),
      String(m?.calls ?? 0),
      m?.p50Ms == null ? "-" : m.p50Ms.toFixed(2),
      String(m?.violationCount ?? 0),
    ];
  });
  const header = [
    "plugin",
    "version",
    "status",
    "tier",
    "trust",
    "filesystem",
    "network",
    "env",
    "memory",
    "cpu",
    "calls",
    "p50 ms",
    "violations",
  ];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) => r.map((v, c) => v.padEnd(widths[c] ?? 0)).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
  console.log(
    `\n${auditLines.length} audit events written; e.g. ${
      auditLines.find((l) => l.includes('"permission_denied"')) ?? auditLines[0]
    }`,
  );
} finally {
  await host.close();
  server.close();
  rmSync(work, { recursive: true, force: true });
}
