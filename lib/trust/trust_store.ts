/**
 * A read-only, verification-ready view of everything that is trusted: the trust list plus pinned
 * keys. Verifiers (native key objects) are built once per list version and reused, so checking
 * many plugins stays close to the raw verifier's speed.
 *
 * A store built from the list of an open file (`file.list` of `openTrustList`) follows that file:
 * every lookup first checks the file's write id (a 56-byte read) and, when another process wrote
 * the list, rebuilds from the new version. So a running host honours a revocation made by
 * `bulkhead trust revoke` at its next trust decision, without being restarted. The check is
 * synchronous because trust decisions are.
 *
 * @example
 * ```ts
 * import { createTrustStore } from "./trust_store.ts";
 * const store = createTrustStore({ list: file.list, pinnedKeys: [releaseKeyHex] });
 * store.isDigestRevoked(snapshot.digest);
 * ```
 * @module
 */

import { fromBase64 } from "./_encoding.ts";
import { createVerifier, parsePublicKey, type Verifier } from "./keys.ts";
import { followerOf } from "./_follow.ts";
import { emptyTrustList, type TrustEntry, type TrustList } from "./trust_list.ts";

/** Where trust in a key comes from. */
export type TrustSource = "pinned" | "list" | "entry";

/** Input to {@link createTrustStore}. */
export interface TrustStoreInput {
  /** The decrypted trust list (default: empty). */
  list?: TrustList;
  /** Extra trusted public keys (hex, base64 or 32 bytes), validated strictly. */
  pinnedKeys?: readonly (string | Uint8Array)[];
}

/** Lookups the trust evaluation needs. */
export interface TrustStore {
  /** The list the store was built from (its current version when it follows a file). */
  readonly list: TrustList;
  /** A verifier for a trusted (pinned or listed) key id, with its source. */
  trustedKey(keyId: string): { verifier: Verifier; source: "pinned" | "list" } | undefined;
  /** The entry approving exactly this package, with a verifier for its key. */
  entryFor(
    name: string,
    version: string,
    digest: string,
  ): { entry: TrustEntry; verifier: Verifier } | undefined;
  /** True when the key id is revoked. */
  isKeyRevoked(keyId: string): boolean;
  /** True when the digest is revoked. */
  isDigestRevoked(digest: string): boolean;
  /** Highest version accepted so far for a plugin. */
  highestVersion(name: string): string | undefined;
}

/**
 * Builds a trust store. Pinned keys are validated (small-order and non-canonical keys refused).
 * Keys stored in the list were validated when added; entries and list keys that fail to decode
 * are skipped, which can only make less trusted.
 *
 * @param input list and pinned keys
 * @returns the store
 * @throws {PluginError} ERR_SIGNATURE_INVALID when a pinned key is malformed, small-order or
 *   non-canonical
 * @throws {PluginError} ERR_TRUST_LIST from a lookup, when the followed file became unreadable or
 *   was lost (the decision cannot be made)
 * @example
 * ```ts
 * const store = createTrustStore({ pinnedKeys: ["3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"] });
 * ```
 */
export function createTrustStore(input: TrustStoreInput = {}): TrustStore {
  const pinned = new Map<string, Verifier>();
  for (const key of input.pinnedKeys ?? []) {
    const verifier = createVerifier(parsePublicKey(key));
    pinned.set(verifier.keyId, verifier);
  }
  const first = input.list ?? emptyTrustList();
  const follow = followerOf(first);
  let view = indexList(first, pinned);
  const current = (): ListIndex => {
    if (follow === undefined) return view;
    const list = follow();
    if (list !== view.list) view = indexList(list, pinned);
    return view;
  };
  return {
    get list() {
      return current().list;
    },
    trustedKey: (keyId) => current().keys.get(keyId),
    entryFor: (name, version, digest) => current().entries.get(entryKey(name, version, digest)),
    isKeyRevoked: (keyId) => current().revokedKeys.has(keyId),
    isDigestRevoked: (digest) => current().revokedDigests.has(digest),
    highestVersion: (name) => {
      const { list } = current();
      return Object.hasOwn(list.highestVersions, name) ? list.highestVersions[name] : undefined;
    },
  };
}

interface ListIndex {
  list: TrustList;
  keys: Map<string, { verifier: Verifier; source: "pinned" | "list" }>;
  entries: Map<string, { entry: TrustEntry; verifier: Verifier }>;
  revokedKeys: Set<string>;
  revokedDigests: Set<string>;
}

function indexList(list: TrustList, pinned: ReadonlyMap<string, Verifier>): ListIndex {
  const keys = new Map<string, { verifier: Verifier; source: "pinned" | "list" }>();
  for (const record of list.keys) {
    const verifier = verifierOf(record.publicKey);
    if (verifier !== undefined && verifier.keyId === record.keyId) {
      keys.set(verifier.keyId, { verifier, source: "list" });
    }
  }
  for (const [keyId, verifier] of pinned) keys.set(keyId, { verifier, source: "pinned" });
  const entries = new Map<string, { entry: TrustEntry; verifier: Verifier }>();
  for (const entry of list.entries) {
    const verifier = verifierOf(entry.publicKey);
    if (verifier !== undefined && verifier.keyId === entry.keyId) {
      entries.set(entryKey(entry.name, entry.version, entry.digest), { entry, verifier });
    }
  }
  return {
    list,
    keys,
    entries,
    revokedKeys: new Set(list.revokedKeys.map((k) => k.keyId)),
    revokedDigests: new Set(list.revokedDigests.map((d) => d.digest)),
  };
}

function entryKey(name: string, version: string, digest: string): string {
  return JSON.stringify([name, version, digest]);
}

function verifierOf(base64: string): Verifier | undefined {
  const bytes = fromBase64(base64);
  if (bytes?.length !== 32) return undefined;
  try {
    return createVerifier(parsePublicKey(bytes));
  } catch {
    return undefined; // an undecodable stored key trusts nothing
  }
}
