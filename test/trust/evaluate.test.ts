import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  addTrustedKey,
  addTrustEntry,
  assertAllowed,
  createSignature,
  createTrustStore,
  createVerifier,
  emptyTrustList,
  encodeSignatureFile,
  evaluateTrust,
  generateKeyPair,
  type KeyPair,
  parseSignatureFile,
  readPackage,
  recordVersion,
  resolvePolicy,
  revokeDigest,
  revokeKey,
  type SignatureFile,
  statementMessage,
  type TrustDecision,
  type TrustList,
  verifyStatement,
} from "../../lib/trust/mod.ts";
import { PluginError } from "../../lib/errors.ts";
import { makePackage, removeDir } from "../fixtures/trust/make_package.ts";

const cleanup: string[] = [];
after(async () => {
  for (const dir of cleanup) await removeDir(dir);
});

const NAME = "resizer";
const VERSION = "1.2.0";
const standard = resolvePolicy("standard");

/** A signed package on disk plus the key that signed it. */
async function signedPackage(
  key: KeyPair,
  opts: { expires?: Date | null; created?: Date; name?: string; version?: string } = {},
): Promise<string> {
  const dir = await makePackage();
  cleanup.push(dir);
  const snap = await readPackage(dir);
  const sig = createSignature({
    name: opts.name ?? NAME,
    version: opts.version ?? VERSION,
    digest: snap.digest,
    ...(opts.expires !== undefined ? { expires: opts.expires } : {}),
    ...(opts.created !== undefined ? { created: opts.created } : {}),
  }, key.secretKey);
  await writeFile(join(dir, "plugin.sig"), encodeSignatureFile(sig));
  return dir;
}

async function judge(
  dir: string,
  list: TrustList,
  opts: { name?: string; version?: string; pinned?: Uint8Array[]; policy?: typeof standard } = {},
): Promise<TrustDecision> {
  const snap = await readPackage(dir);
  const store = createTrustStore({ list, pinnedKeys: opts.pinned ?? [] });
  return evaluateTrust(
    {
      name: opts.name ?? NAME,
      version: opts.version ?? VERSION,
      digest: snap.digest,
      signature: snap.signature,
    },
    store,
    opts.policy ?? standard,
  );
}

function refused(d: TrustDecision, code: string, state: string): void {
  assert.equal(d.allowed, false, d.reason);
  assert.equal(d.trusted, false);
  assert.equal(d.code, code, d.reason);
  assert.equal(d.state, state, d.reason);
}

describe("evaluateTrust()", () => {
  const key = generateKeyPair();
  const trusted = addTrustedKey(emptyTrustList(), key.publicKey);

  it("trusts a package signed by a listed key", async () => {
    const d = await judge(await signedPackage(key), trusted);
    assert.equal(d.allowed, true);
    assert.equal(d.trusted, true);
    assert.equal(d.state, "trusted");
    assert.equal(d.source, "list");
    assert.equal(d.keyId, key.keyId);
  });

  it("trusts a package signed by a pinned key", async () => {
    const d = await judge(await signedPackage(key), emptyTrustList(), { pinned: [key.publicKey] });
    assert.equal(d.state, "trusted");
    assert.equal(d.source, "pinned");
  });

  it("trusts a package approved by a list entry, and only that exact package", async () => {
    const other = generateKeyPair();
    const dir = await signedPackage(other);
    const sig = parseSignatureFile((await readPackage(dir)).signature!);
    const list = addTrustEntry(emptyTrustList(), sig);
    const d = await judge(dir, list);
    assert.equal(d.state, "trusted");
    assert.equal(d.source, "entry");
    // Same key, same name, another version: the entry does not cover it.
    const d2 = await judge(await signedPackage(other, { version: "1.3.0" }), list, {
      version: "1.3.0",
    });
    refused(d2, "ERR_UNTRUSTED", "untrusted");
  });

  it("refuses a tampered file", async () => {
    const dir = await signedPackage(key);
    await writeFile(join(dir, "index.js"), "globalThis.evil = 1;\n");
    refused(await judge(dir, trusted), "ERR_SIGNATURE_INVALID", "invalid");
  });

  it("refuses an added file", async () => {
    const dir = await signedPackage(key);
    await writeFile(join(dir, "lib/extra.js"), "");
    refused(await judge(dir, trusted), "ERR_SIGNATURE_INVALID", "invalid");
  });

  it("refuses a renamed file", async () => {
    const dir = await signedPackage(key);
    await rename(join(dir, "lib/util.js"), join(dir, "lib/utils.js"));
    refused(await judge(dir, trusted), "ERR_SIGNATURE_INVALID", "invalid");
  });

  it("refuses a package signed by a key that is not trusted", async () => {
    const dir = await signedPackage(generateKeyPair());
    refused(await judge(dir, trusted), "ERR_UNTRUSTED", "untrusted");
  });

  it("refuses a signature made by another key under the trusted key's id", async () => {
    const dir = await signedPackage(key);
    const snap = await readPackage(dir);
    const forged = parseSignatureFile(snap.signature!);
    const attacker = generateKeyPair();
    const sig = createSignature(
      { name: NAME, version: VERSION, digest: snap.digest },
      attacker.secretKey,
    );
    const mixed: SignatureFile = { ...sig, statement: { ...sig.statement, keyId: key.keyId } };
    const d1 = evaluateTrust(
      { name: NAME, version: VERSION, digest: snap.digest, signature: mixed },
      createTrustStore({ list: trusted }),
      standard,
    );
    refused(d1, "ERR_SIGNATURE_INVALID", "invalid");
    // Embedded key swapped to the trusted one, signature still the attacker's.
    const swapped: SignatureFile = { ...mixed, publicKey: forged.publicKey };
    const d2 = evaluateTrust(
      { name: NAME, version: VERSION, digest: snap.digest, signature: swapped },
      createTrustStore({ list: trusted }),
      standard,
    );
    refused(d2, "ERR_SIGNATURE_INVALID", "invalid");
  });

  it("refuses a revoked key, even when pinned", async () => {
    const dir = await signedPackage(key);
    const list = revokeKey(trusted, key.keyId, { reason: "leaked" });
    refused(await judge(dir, list), "ERR_UNTRUSTED", "revoked");
    refused(await judge(dir, list, { pinned: [key.publicKey] }), "ERR_UNTRUSTED", "revoked");
    const byKey = revokeKey(trusted, Buffer.from(key.publicKey).toString("hex"));
    refused(await judge(dir, byKey), "ERR_UNTRUSTED", "revoked");
  });

  it("refuses a revoked digest, even under the development policy", async () => {
    const dir = await signedPackage(key);
    const list = revokeDigest(trusted, (await readPackage(dir)).digest);
    refused(await judge(dir, list), "ERR_UNTRUSTED", "revoked");
    const dev = resolvePolicy("development");
    refused(await judge(dir, list, { policy: dev }), "ERR_UNTRUSTED", "revoked");
  });

  it("refuses an expired statement", async () => {
    const created = new Date(Date.now() - 10 * 86_400_000);
    const dir = await signedPackage(key, { created, expires: new Date(Date.now() - 86_400_000) });
    refused(await judge(dir, trusted), "ERR_SIGNATURE_INVALID", "invalid");
  });

  it("accepts a statement that never expires", async () => {
    const d = await judge(await signedPackage(key, { expires: null }), trusted);
    assert.equal(d.state, "trusted");
  });

  it("refuses a statement created in the future", async () => {
    const dir = await signedPackage(key, { created: new Date(Date.now() + 3_600_000) });
    refused(await judge(dir, trusted), "ERR_SIGNATURE_INVALID", "invalid");
  });

  it("refuses a name mismatch", async () => {
    const dir = await signedPackage(key);
    refused(await judge(dir, trusted, { name: "other" }), "ERR_SIGNATURE_INVALID", "invalid");
  });

  it("refuses a version mismatch", async () => {
    const dir = await signedPackage(key);
    refused(await judge(dir, trusted, { version: "1.2.1" }), "ERR_SIGNATURE_INVALID", "invalid");
  });

  it("refuses a downgrade unless the policy allows it", async () => {
    const list = recordVersion(trusted, NAME, "2.0.0");
    const dir = await signedPackage(key);
    refused(await judge(dir, list), "ERR_DOWNGRADE", "downgrade");
    refused(
      await judge(dir, list, { policy: resolvePolicy("strict") }),
      "ERR_DOWNGRADE",
      "downgrade",
    );
    const lenient = resolvePolicy({ allowDowngrade: true });
    assert.equal((await judge(dir, list, { policy: lenient })).state, "trusted");
    // Same or higher version is fine.
    assert.equal((await judge(dir, recordVersion(trusted, NAME, VERSION))).state, "trusted");
  });

  it("refuses an unsigned package under standard and strict", async () => {
    const dir = await makePackage();
    cleanup.push(dir);
    refused(await judge(dir, trusted), "ERR_UNTRUSTED", "unsigned");
    refused(
      await judge(dir, trusted, { policy: resolvePolicy("strict") }),
      "ERR_UNTRUSTED",
      "unsigned",
    );
  });

  it("allows unsigned and unknown-key packages with a warning under development", async () => {
    const dev = resolvePolicy("development");
    const dir = await makePackage();
    cleanup.push(dir);
    const d = await judge(dir, emptyTrustList(), { policy: dev });
    assert.equal(d.allowed, true);
    assert.equal(d.trusted, false);
    assert.equal(d.state, "unsigned");
    assert.equal(d.warnings.length, 1);
    const signed = await signedPackage(generateKeyPair());
    const d2 = await judge(signed, emptyTrustList(), { policy: dev });
    assert.equal(d2.allowed, true);
    assert.equal(d2.state, "untrusted");
    // A broken signature is refused even in development.
    await writeFile(join(signed, "index.js"), "changed");
    refused(
      await judge(signed, emptyTrustList(), { policy: dev }),
      "ERR_SIGNATURE_INVALID",
      "invalid",
    );
  });

  it("refuses a malformed plugin.sig", async () => {
    const dir = await signedPackage(key);
    await writeFile(join(dir, "plugin.sig"), "{not json");
    refused(await judge(dir, trusted), "ERR_SIGNATURE_INVALID", "invalid");
    await writeFile(join(dir, "plugin.sig"), JSON.stringify({ format: "other" }));
    refused(await judge(dir, trusted), "ERR_SIGNATURE_INVALID", "invalid");
  });
});

describe("assertAllowed()", () => {
  it("throws a PluginError with the decision's code", () => {
    const d: TrustDecision = {
      allowed: false,
      trusted: false,
      state: "downgrade",
      code: "ERR_DOWNGRADE",
      reason: "x",
      warnings: [],
    };
    assert.throws(
      () => assertAllowed(d, "p"),
      (e: unknown) => e instanceof PluginError && e.code === "ERR_DOWNGRADE" && e.plugin === "p",
    );
    assert.doesNotThrow(() => assertAllowed({ ...d, allowed: true }, "p"));
  });
});

describe("statementMessage() and verifyStatement()", () => {
  it("signs the domain-separated canonical statement, not raw bytes", () => {
    const key = generateKeyPair();
    const digest = "ab".repeat(64);
    const sig = createSignature({ name: "x", version: "1.0.0", digest }, key.secretKey);
    const text = new TextDecoder().decode(statementMessage(sig.statement));
    assert.ok(text.startsWith('bulkhead-signature-v1\n{"created":'));
    const s = verifyStatement(
      sig,
      { name: "x", version: "1.0.0", digest },
      createVerifier(key.publicKey),
    );
    assert.equal(s.keyId, key.keyId);
    assert.throws(
      () =>
        verifyStatement(
          sig,
          { name: "x", version: "1.0.0", digest },
          createVerifier(generateKeyPair().publicKey),
        ),
      (e: unknown) => e instanceof PluginError && e.code === "ERR_SIGNATURE_INVALID",
    );
  });
});
