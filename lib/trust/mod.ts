/**
 * The trust layer: package digests, Ed25519 signatures over statements, an encrypted trust list,
 * policies and the trust decision.
 *
 * @example
 * ```ts
 * import { createTrustStore, evaluateTrust, readPackage, resolvePolicy, writePackageCopy } from "./mod.ts";
 * const snapshot = await readPackage("./plugins/resizer");
 * const decision = evaluateTrust(
 *   { name: "resizer", version: "1.2.0", digest: snapshot.digest, signature: snapshot.signature },
 *   createTrustStore({ pinnedKeys: [releaseKey] }),
 *   resolvePolicy("standard"),
 * );
 * if (decision.allowed) await writePackageCopy(snapshot, privateDir);
 * ```
 * @module
 */

export {
  DIGEST_FORMAT,
  digestBytes,
  digestFiles,
  type DigestOptions,
  type HashImpl,
  packageListing,
  sha3_512Bytes,
  SIGNATURE_FILE,
} from "./digest.ts";
export {
  digestFile,
  digestPackage,
  type FileSnapshot,
  type PackageSnapshot,
  readPackage,
  type ReadPackageOptions,
  writePackageCopy,
  type WritePackageCopyOptions,
} from "./package_snapshot.ts";
export {
  createVerifier,
  formatPublicKey,
  generateKeyPair,
  keyIdOf,
  type KeyPair,
  parsePublicKey,
  publicKeyFromSecret,
  signMessage,
  type Verifier,
} from "./keys.ts";
export {
  createSignature,
  encodeSignatureFile,
  type ExpectedPackage,
  parseSignatureFile,
  SIGNATURE_DOMAIN,
  SIGNATURE_FORMAT,
  type SignatureFile,
  type SignatureStatement,
  type SignInput,
  statementMessage,
  verifyStatement,
  type VerifyStatementOptions,
} from "./signature.ts";
export {
  addTrustedKey,
  addTrustEntry,
  type EditOptions,
  emptyTrustList,
  recordVersion,
  removeTrustedKey,
  removeTrustEntry,
  type RevokedDigest,
  revokeDigest,
  type RevokedKey,
  revokeKey,
  type RevokeOptions,
  type TrustedKeyRecord,
  type TrustEntry,
  type TrustList,
  validateTrustList,
} from "./trust_list.ts";
export { mergeTrustLists, type MergeTrustListsOptions } from "./trust_merge.ts";
export {
  decryptTrustList,
  encryptTrustList,
  hasTrustListMarker,
  openTrustList,
  type OpenTrustListOptions,
  type TrustFileOptions,
  type TrustListFile,
  type TrustSecret,
  writeFileAtomic,
} from "./trust_file.ts";
export {
  PUBLIC_KEY_FORMAT,
  readListKeyFile,
  readPublicKey,
  readSecretKeyFile,
  SECRET_KEY_FORMAT,
  writeKeyFiles,
  type WrittenKeys,
} from "./key_files.ts";
export {
  createTrustStore,
  type TrustSource,
  type TrustStore,
  type TrustStoreInput,
} from "./trust_store.ts";
export {
  type PackageCaps,
  resolvePolicy,
  TRUST_PRESETS,
  type TrustPolicy,
  type TrustPolicyInput,
  type TrustPresetName,
} from "./policy.ts";
export {
  assertAllowed,
  type EvaluateOptions,
  evaluateTrust,
  type TrustDecision,
  type TrustErrorCode,
  type TrustState,
  type TrustSubject,
} from "./evaluate.ts";
