/**
 * Trust layer benchmark: package digest throughput and signature verification rate, each against
 * a raw `node:crypto` baseline measured in the same run. Prints one line per measurement and the
 * ratios (targets: digest >= 0.9x, verify >= 0.8x of raw).
 *
 * Run: `node bench/trust.bench.ts`, `bun bench/trust.bench.ts`, `deno run -A bench/trust.bench.ts`
 *
 * @module
 */

import { createHash, createPublicKey, randomBytes, verify as nativeVerify } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createSignature,
  createTrustStore,
  createVerifier,
  digestFiles,
  evaluateTrust,
  generateKeyPair,
  readPackage,
  resolvePolicy,
  statementMessage,
  verifyStatement,
} from "../lib/trust/mod.ts";

const runtime = process.versions.bun !== undefined
  ? `bun ${process.versions.bun}`
  : process.versions.deno !== undefined
  ? `deno ${process.versions.deno}`
  : `node ${process.versions.node}`;

/** Best-of-rounds seconds per call of fn. */
function time(fn: () => void, iterations: number, rounds = 5): number {
  fn(); // warm-up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    best = Math.min(best, (performance.now() - t0) / 1000 / iterations);
  }
  return best;
}

function line(label: string, value: string): void {
  console.log(`${runtime.padEnd(12)} ${label.padEnd(44)} ${value}`);
}

const MiB = 1024 * 1024;
const dir = await mkdtemp(join(tmpdir(), "bulkhead-bench-"));
try {
  // A 16 MiB package: 64 files of 256 KiB in 4 directories, plus a manifest.
  for (let i = 0; i < 64; i++) {
    const sub = join(dir, `d${i % 4}`);
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${i}.bin`), randomBytes(256 * 1024));
  }
  await writeFile(join(dir, "plugin.json"), JSON.stringify({ name: "bench", version: "1.0.0" }));
  const snapshot = await readPackage(dir);
  const mb = snapshot.totalBytes / MiB;
  const files = [...snapshot.files.values()];

  const raw = time(() => {
    const h = createHash("sha3-512");
    for (const f of files) h.update(f);
    h.digest();
  }, 3);
  const ours = time(() => digestFiles(snapshot.files), 3);
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) await readPackage(dir);
  const withIo = (performance.now() - t0) / 1000 / 3;
  line("raw createHash sha3-512 (16 MiB)", `${(mb / raw).toFixed(1)} MB/s`);
  line("digestFiles (16 MiB package, in memory)", `${(mb / ours).toFixed(1)} MB/s`);
  line("readPackage (16 MiB, read + digest)", `${(mb / withIo).toFixed(1)} MB/s`);
  line("ratio digest / raw (target >= 0.9)", `${(raw / ours).toFixed(2)}x`);
  line("ratio readPackage / raw (info)", `${(raw / withIo).toFixed(2)}x`);

  // Signature verification.
  const key = generateKeyPair();
  const expected = { name: "bench", version: "1.0.0", digest: snapshot.digest };
  const sig = createSignature(expected, key.secretKey);
  const msg = statementMessage(sig.statement);
  const sigBytes = Buffer.from(sig.signature, "base64");
  const keyObject = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(key.publicKey).toString("base64url") },
    format: "jwk",
  });
  const verifier = createVerifier(key.publicKey);
  const store = createTrustStore({ pinnedKeys: [key.publicKey] });
  const policy = resolvePolicy("standard");
  const sigText = JSON.stringify(sig);
  const n = 2000;
  const rawVerify = time(() => {
    if (!nativeVerify(null, msg, keyObject, sigBytes)) throw new Error("raw verify failed");
  }, n);
  const ourVerify = time(() => verifyStatement(sig, expected, verifier), n);
  const decide = time(() => {
    const d = evaluateTrust({ ...expected, signature: sigText }, store, policy);
    if (!d.trusted) throw new Error(d.reason);
  }, n);
  line("raw crypto.verify Ed25519", `${(1 / rawVerify).toFixed(0)} ops/s`);
  line("verifyStatement", `${(1 / ourVerify).toFixed(0)} ops/s`);
  line("evaluateTrust (parse plugin.sig + verify)", `${(1 / decide).toFixed(0)} ops/s`);
  line("ratio verifyStatement / raw (target >= 0.8)", `${(rawVerify / ourVerify).toFixed(2)}x`);
  line("ratio evaluateTrust / raw (info)", `${(rawVerify / decide).toFixed(2)}x`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
