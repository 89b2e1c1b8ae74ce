/**
 * Combining two copies of a trust list, for writers that share one file: what one writer adds
 * survives another's write, and nothing that protects (a revocation, a highest version) is ever
 * lost by merging. `TrustListFile.save` and `update` merge under the file's lock.
 *
 * @example
 * ```ts
 * import { mergeTrustLists } from "./trust_merge.ts";
 * import { revokeKey } from "./trust_list.ts";
 * const merged = mergeTrustLists(onDisk, revokeKey(staleCopy, keyId));
 * ```
 * @module
 */

import {
  recordVersion,
  type TrustedKeyRecord,
  type TrustEntry,
  type TrustList,
} from "./trust_list.ts";

/** Options for {@link mergeTrustLists}. */
export interface MergeTrustListsOptions {
  /**
   * Which trusted keys and entries of `ours` the writer added or changed (default: all of them;
   * records already in `current` as they are count as unchanged). Others are ignored, so a stale
   * copy never brings back what another writer removed.
   */
  isNew?: (record: TrustedKeyRecord | TrustEntry) => boolean;
}

function upsert<T extends object>(
  current: T[],
  added: T[],
  id: (record: T) => string,
): T[] {
  if (added.length === 0) return current;
  const ids = new Set(added.map(id));
  return [...current.filter((r) => !ids.has(id(r))), ...added];
}

function unite<T extends object>(current: T[], ours: T[], id: (record: T) => string): T[] {
  const ids = new Set(current.map(id));
  const extra = ours.filter((r) => !ids.has(id(r)));
  return extra.length === 0 ? current : [...current, ...extra];
}

/**
 * Merges a writer's copy into the current list: revoked keys and digests are united, highest
 * versions take the semver maximum (rollback protection only rises), and the keys and entries
 * `isNew` picks are added, replacing the record with the same key id or the same name and
 * version. Nothing is ever removed: a removal is an explicit edit of the current list (see
 * `TrustListFile.update`), never the absence of a record from a stale copy.
 *
 * @param current the list as it is now (on disk)
 * @param ours the writer's copy
 * @param options which of the writer's keys and entries are its own additions
 * @returns the merged list; `current` itself when `ours` adds nothing
 * @example
 * ```ts
 * const merged = mergeTrustLists(onDisk, revokeKey(staleCopy, keyId));
 * ```
 */
export function mergeTrustLists(
  current: TrustList,
  ours: TrustList,
  options: MergeTrustListsOptions = {},
): TrustList {
  const isNew = options.isNew ?? (() => true);
  const added = <T extends TrustedKeyRecord | TrustEntry>(mine: T[], theirs: T[]) => {
    const have = new Set(theirs.map((r) => JSON.stringify(r)));
    return mine.filter((r) => isNew(r) && !have.has(JSON.stringify(r)));
  };
  const keys = upsert(current.keys, added(ours.keys, current.keys), (k) => k.keyId);
  const entries = upsert(
    current.entries,
    added(ours.entries, current.entries),
    (e) => JSON.stringify([e.name, e.version]),
  );
  const revokedKeys = unite(current.revokedKeys, ours.revokedKeys, (k) => k.keyId);
  const revokedDigests = unite(current.revokedDigests, ours.revokedDigests, (d) => d.digest);
  let raised = current;
  for (const [name, version] of Object.entries(ours.highestVersions)) {
    raised = recordVersion(raised, name, version);
  }
  const highestVersions = raised.highestVersions;
  const same = keys === current.keys && entries === current.entries &&
    revokedKeys === current.revokedKeys && revokedDigests === current.revokedDigests &&
    highestVersions === current.highestVersions;
  if (same) return current;
  return { version: 1, entries, keys, revokedKeys, revokedDigests, highestVersions };
}
