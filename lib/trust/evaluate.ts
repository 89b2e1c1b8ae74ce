/**
 * The trust decision for one plugin package: combine its signature, the trust store and the
 * policy into a verdict the host can show next to the plugin, whether or not it loads it.
 *
 * Checks, in order: revoked digest; missing signature; malformed signature; revoked key; trusted
 * key (pinned, listed, or a list entry approving this exact name, version and digest); signature,
 * digest, name, version, creation time and expiry; downgrade below the highest version seen.
 *
 * @example
 * ```ts
 * import { evaluateTrust } from "./evaluate.ts";
 * const snapshot = await readPackage(dir);
 * const decision = evaluateTrust(
 *   { name: manifest.name, version: manifest.version, digest: snapshot.digest, signature: snapshot.signature },
 *   createTrustStore({ list }),
 *   resolvePolicy("standard"),
 * );
 * if (!decision.allowed) markUntrusted(decision.reason);
 * ```
 * @module
 */

import semver from "semver";
import { PluginError } from "../errors.ts";
import { fromBase64 } from "./_encoding.ts";
import { createVerifier, keyIdOf, type Verifier } from "./keys.ts";
import type { TrustPolicy } from "./policy.ts";
import { parseSignatureFile, type SignatureFile, verifyStatement } from "./signature.ts";
import type { TrustSource, TrustStore } from "./trust_store.ts";

/** What was decided about a package. */
export type TrustState =
  | "trusted"
  | "unsigned"
  | "untrusted"
  | "invalid"
  | "revoked"
  | "downgrade";

/** Error codes a decision can carry. */
export type TrustErrorCode = "ERR_UNTRUSTED" | "ERR_SIGNATURE_INVALID" | "ERR_DOWNGRADE";

/** The verdict for one package. */
export interface TrustDecision {
  /** The host may load the plugin under this policy. */
  allowed: boolean;
  /** A trusted key vouches for exactly these bytes (state `"trusted"`). */
  trusted: boolean;
  /** Why, as a state. */
  state: TrustState;
  /** Set when the plugin must not load. */
  code?: TrustErrorCode;
  /** Human-readable explanation. */
  reason: string;
  /** Signing key id, when the package is signed. */
  keyId?: string;
  /** Where trust in the key came from, when trusted. */
  source?: TrustSource;
  /** Things the user should know even though the plugin loads (development policy). */
  warnings: string[];
}

/** The package to judge. */
export interface TrustSubject {
  /** Plugin name from the manifest. */
  name: string;
  /** Plugin version from the manifest. */
  version: string;
  /** Digest computed from the package bytes ({@link PackageSnapshot.digest}). */
  digest: string;
  /** `plugin.sig` bytes, text or parsed file; undefined when unsigned. */
  signature?: Uint8Array | string | SignatureFile | undefined;
}

/** Options for {@link evaluateTrust}. */
export interface EvaluateOptions {
  /** Current time (default now). */
  now?: Date;
}

function deny(state: TrustState, code: TrustErrorCode, reason: string, keyId?: string) {
  const d: TrustDecision = { allowed: false, trusted: false, state, code, reason, warnings: [] };
  if (keyId !== undefined) d.keyId = keyId;
  return d;
}

function downgradeCheck(
  subject: TrustSubject,
  store: TrustStore,
  policy: TrustPolicy,
): TrustDecision | undefined {
  const highest = store.highestVersion(subject.name);
  if (highest === undefined || policy.allowDowngrade) return undefined;
  const v = semver.valid(subject.version);
  if (v === null || semver.valid(highest) === null) return undefined;
  if (!semver.lt(v, highest)) return undefined;
  return deny(
    "downgrade",
    "ERR_DOWNGRADE",
    `version "${subject.version}" is lower than "${highest}", already trusted`,
  );
}

/**
 * Decides whether a package may load and why. Never throws for a bad package: every refusal is a
 * decision with a `code`, so the host can list the plugin as untrusted with the reason.
 *
 * @param subject name and version from the manifest, digest and signature from the snapshot
 * @param store trusted keys, entries and revocations
 * @param policy resolved policy
 * @param options current time
 * @returns the decision
 * @throws {PluginError} ERR_TRUST_LIST when the store follows a trust list file that became
 *   unreadable or was lost since it was opened: no decision can be made without it
 * @example
 * ```ts
 * const d = evaluateTrust({ name, version, digest, signature }, store, resolvePolicy("strict"));
 * d.state; // "trusted" | "unsigned" | "untrusted" | "invalid" | "revoked" | "downgrade"
 * ```
 */
export function evaluateTrust(
  subject: TrustSubject,
  store: TrustStore,
  policy: TrustPolicy,
  options: EvaluateOptions = {},
): TrustDecision {
  if (store.isDigestRevoked(subject.digest)) {
    return deny("revoked", "ERR_UNTRUSTED", `digest "${short(subject.digest)}" is revoked`);
  }
  if (subject.signature === undefined) {
    if (policy.requireSignature) {
      return deny("unsigned", "ERR_UNTRUSTED", "the package has no plugin.sig");
    }
    return downgradeCheck(subject, store, policy) ?? {
      allowed: true,
      trusted: false,
      state: "unsigned",
      reason: "the package has no plugin.sig",
      warnings: [`plugin "${subject.name}" is unsigned; loading it because the policy allows it`],
    };
  }
  let sig: SignatureFile;
  try {
    sig = typeof subject.signature === "object" && !(subject.signature instanceof Uint8Array)
      ? subject.signature
      : parseSignatureFile(subject.signature);
  } catch (error) {
    return deny("invalid", "ERR_SIGNATURE_INVALID", (error as Error).message);
  }
  const keyId = sig.statement.keyId;
  const embedded = fromBase64(sig.publicKey);
  const embeddedId = embedded?.length === 32 ? keyIdOf(embedded) : undefined;
  if (store.isKeyRevoked(keyId) || (embeddedId !== undefined && store.isKeyRevoked(embeddedId))) {
    return deny("revoked", "ERR_UNTRUSTED", `key "${keyId}" is revoked`, keyId);
  }
  let verifier: Verifier | undefined;
  let source: TrustSource | undefined;
  const key = store.trustedKey(keyId);
  if (key !== undefined) {
    verifier = key.verifier;
    source = key.source;
  } else {
    const entry = store.entryFor(subject.name, subject.version, subject.digest);
    if (
      entry !== undefined && entry.entry.keyId === keyId && entry.entry.signature === sig.signature
    ) {
      verifier = entry.verifier;
      source = "entry";
    }
  }
  const warnings: string[] = [];
  if (verifier === undefined) {
    if (policy.requireSignature || embedded?.length !== 32) {
      return deny("untrusted", "ERR_UNTRUSTED", `key "${keyId}" is not trusted`, keyId);
    }
    // Development: still check the signature with the embedded key, so tampering is caught.
    verifier = createVerifier(embedded);
    warnings.push(`plugin "${subject.name}" is signed by untrusted key "${keyId}"`);
  }
  try {
    verifyStatement(sig, subject, verifier, options);
  } catch (error) {
    const code = error instanceof PluginError ? error.code : "";
    if (code !== "ERR_SIGNATURE_INVALID") throw error;
    return deny("invalid", "ERR_SIGNATURE_INVALID", (error as Error).message, keyId);
  }
  const downgrade = downgradeCheck(subject, store, policy);
  if (downgrade !== undefined) return { ...downgrade, keyId };
  if (source === undefined) {
    return {
      allowed: true,
      trusted: false,
      state: "untrusted",
      reason: `key "${keyId}" is not trusted`,
      keyId,
      warnings,
    };
  }
  return {
    allowed: true,
    trusted: true,
    state: "trusted",
    reason: `signed by ${source} key "${keyId}"`,
    keyId,
    source,
    warnings,
  };
}

function short(digest: string): string {
  return `${digest.slice(0, 16)}…`;
}

/**
 * Throws the decision's error when the plugin must not load.
 *
 * @param decision result of {@link evaluateTrust}
 * @param plugin plugin name for the error
 * @returns nothing when allowed
 * @throws {PluginError} ERR_UNTRUSTED, ERR_SIGNATURE_INVALID or ERR_DOWNGRADE when refused
 * @example
 * ```ts
 * assertAllowed(evaluateTrust(subject, store, policy), subject.name);
 * ```
 */
export function assertAllowed(decision: TrustDecision, plugin: string): void {
  if (decision.allowed) return;
  throw new PluginError(
    decision.code ?? "ERR_UNTRUSTED",
    `Cannot load plugin "${plugin}": ${decision.reason}`,
    {
      plugin,
      hint: decision.code === "ERR_DOWNGRADE"
        ? "Install the newer version, or allow downgrades in the policy"
        : "Sign the plugin with a trusted key (`bulkhead sign`) or add the key with `bulkhead trust add --key`",
    },
  );
}
