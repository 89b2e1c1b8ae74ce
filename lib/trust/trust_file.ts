/**
 * The trust list encrypted at rest, shared safely by every process that uses it. The format and
 * its crypto are in `_trust_codec.ts`; this module reads, writes and follows the file.
 *
 * Every write is a locked read-merge-write: take `<list>.lock` (`_lock.ts`), re-read the file,
 * merge (`trust_merge.ts`: revocations and highest versions only grow, additions are added,
 * removals are explicit edits through {@link TrustListFile.update}), write a temp file in the same
 * directory (mode 0600), fsync, rename it over the list, fsync the directory, release
 * (`_atomic_write.ts`). A crash at any point leaves the old or the new list; a temp file left by a
 * killed writer is removed by the next open or write.
 *
 * The nonce is fresh for every write, so it is also the file's write id: checking whether another
 * process changed the list reads 56 bytes and decrypts only when the id moved. That is how a store
 * built from {@link TrustListFile.list} sees a revocation before its next decision (`_follow.ts`).
 *
 * First use and loss are told apart by a marker, `<list>.created`, written after the first write
 * (and added to older lists when they are opened; `_list_disk.ts`). A missing list with a marker
 * was lost or deleted: opening it, even with `create`, fails with `ERR_TRUST_LIST` instead of
 * starting empty, which would silently drop its revocations and downgrade protection.
 *
 * @example
 * ```ts
 * import { openTrustList } from "./trust_file.ts";
 * import { addTrustedKey, removeTrustedKey } from "./trust_list.ts";
 * const file = await openTrustList("trust.bin", { passphrase: "correct horse" }, { create: true });
 * await file.save(addTrustedKey(file.list, publicKey));
 * await file.update((list) => removeTrustedKey(list, oldKeyId).list);
 * ```
 * @module
 */

import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { cleanStaleTemps, removeStaleTemps, writeFileAtomic } from "./_atomic_write.ts";
import { setFollower } from "./_follow.ts";
import { acquireLock } from "./_lock.ts";
import {
  ensureMarker,
  hasMarker,
  hasMarkerSync,
  lostError,
  readChanged,
  readChangedSync,
} from "./_list_disk.ts";
import {
  deriveKey,
  deriveKeySync,
  type KdfParams,
  listError,
  newParams,
  openSealedTrustList,
  parseHeader,
  sameParams,
  sealTrustList,
  type TrustFileOptions,
  type TrustSecret,
  writeIdOf,
} from "./_trust_codec.ts";
import {
  emptyTrustList,
  type TrustedKeyRecord,
  type TrustEntry,
  type TrustList,
  validateTrustList,
} from "./trust_list.ts";
import { mergeTrustLists } from "./trust_merge.ts";

export { writeFileAtomic } from "./_atomic_write.ts";
export {
  decryptTrustList,
  encryptTrustList,
  type TrustFileOptions,
  type TrustSecret,
} from "./_trust_codec.ts";

/** Options for {@link openTrustList}. */
export interface OpenTrustListOptions extends TrustFileOptions {
  /**
   * Start from an empty list when the file does not exist yet (default false: ERR_TRUST_LIST).
   * Never applies to a list that existed (its `<list>.created` marker is there).
   */
  create?: boolean;
  /** How long a write waits for another writer's lock, ms (default 15 000). */
  lockTimeoutMs?: number;
}

/** An open trust list: its contents and ways to change it with the same key. */
export interface TrustListFile {
  /** Absolute path of the file. */
  readonly path: string;
  /** The list as last read, refreshed or written. */
  readonly list: TrustList;
  /** Whether the file existed when opened. */
  readonly existed: boolean;
  /**
   * Merges `list` into the list on disk under the lock and writes the result (fresh nonce).
   * Keys and entries that `list` adds or changes relative to what this handle has read are
   * written; revocations are united and highest versions raised. Nothing is removed, so saving a
   * stale copy never undoes another process's revocation or removal: use {@link update} to remove.
   *
   * @param list a list derived from {@link list}
   * @throws {PluginError} ERR_TRUST_LIST when `list` is invalid, the file is unreadable or lost,
   *   or another writer holds the lock too long
   */
  save(list: TrustList): Promise<void>;
  /**
   * Runs `edit` on the current list under the lock and writes its result: the way to remove keys
   * and entries. Revocations and highest versions still only grow. Nothing is written when the
   * edit changes nothing; when it throws, the error propagates and nothing is written. `edit` must
   * not write the same list itself (it would wait for its own lock).
   *
   * @param edit pure function from the current list to the new one
   * @returns the list as written
   * @throws {PluginError} ERR_TRUST_LIST as for {@link save}
   */
  update(edit: (current: TrustList) => TrustList): Promise<TrustList>;
  /**
   * Re-reads the list when another process changed it (a 56-byte read when it did not).
   *
   * @returns true when {@link list} changed
   * @throws {PluginError} ERR_TRUST_LIST when the file became unreadable or was lost
   */
  refresh(): Promise<boolean>;
}

/**
 * Whether a trust list was ever written at `path` (its `<path>.created` marker exists), so that a
 * caller which treats a missing list as "none yet" can tell first use from loss: when this is
 * true, open the list (and let a missing one fail with ERR_TRUST_LIST) instead of skipping it.
 *
 * @param path list file
 * @returns true when the list existed
 * @example
 * ```ts
 * if (existsSync(path) || await hasTrustListMarker(path)) file = await openTrustList(path, secret);
 * ```
 */
export function hasTrustListMarker(path: string): Promise<boolean> {
  return hasMarker(resolve(path));
}

function fingerprint(record: TrustedKeyRecord | TrustEntry): string {
  return JSON.stringify(record);
}

interface HandleInit {
  path: string;
  secret: TrustSecret;
  params: KdfParams;
  key: Uint8Array;
  list: TrustList;
  nonce: Uint8Array | undefined;
  lockTimeoutMs: number | undefined;
}

class OpenList implements TrustListFile {
  readonly path: string;
  readonly existed: boolean;
  #secret: TrustSecret;
  #params: KdfParams;
  #key: Uint8Array;
  #lockTimeoutMs: number | undefined;
  #list: TrustList = emptyTrustList();
  /** Write id of the version {@link #list} came from; undefined while the file never existed. */
  #nonce: Uint8Array | undefined;
  /** Every key and entry this handle has read or written: what a caller's copy can hold without
   * having added it. */
  #seen = new Set<string>();

  constructor(init: HandleInit) {
    this.path = init.path;
    this.existed = init.nonce !== undefined;
    this.#secret = init.secret;
    this.#params = init.params;
    this.#key = init.key;
    this.#lockTimeoutMs = init.lockTimeoutMs;
    this.#adopt(init.list, init.nonce);
  }

  get list(): TrustList {
    return this.#list;
  }

  async save(list: TrustList): Promise<void> {
    const ours = validateTrustList(structuredClone(list));
    const isNew = (r: TrustedKeyRecord | TrustEntry) => !this.#seen.has(fingerprint(r));
    const added = new Set([...ours.keys, ...ours.entries].filter(isNew).map(fingerprint));
    await this.#write((current) =>
      mergeTrustLists(current, ours, { isNew: (r) => added.has(fingerprint(r)) })
    );
  }

  update(edit: (current: TrustList) => TrustList): Promise<TrustList> {
    return this.#write((current) => {
      const edited = validateTrustList(structuredClone(edit(structuredClone(current))));
      const next = mergeTrustLists(edited, current, { isNew: () => false });
      return JSON.stringify(next) === JSON.stringify(current) ? current : next;
    });
  }

  async refresh(): Promise<boolean> {
    const before = this.#list;
    const read = await readChanged(this.path, this.#nonce);
    if (read.kind === "missing") this.#onMissing(await hasMarker(this.path));
    else if (read.kind === "data") {
      const { params } = parseHeader(read.data);
      const same = sameParams(params, this.#params);
      this.#accept(read.data, same ? this.#key : await deriveKey(this.#secret, params));
    }
    return this.#list !== before;
  }

  #refreshSync(): TrustList {
    const read = readChangedSync(this.path, this.#nonce);
    if (read.kind === "missing") this.#onMissing(hasMarkerSync(this.path));
    else if (read.kind === "data") {
      const { params } = parseHeader(read.data);
      const same = sameParams(params, this.#params);
      this.#accept(read.data, same ? this.#key : deriveKeySync(this.#secret, params));
    }
    return this.#list;
  }

  #onMissing(marked: boolean): void {
    if (this.#nonce !== undefined || marked) throw lostError(this.path);
    // First use: nothing was ever written, the list stays empty.
  }

  #accept(data: Uint8Array, key: Uint8Array): void {
    const { params, nonce } = parseHeader(data);
    const list = openSealedTrustList(data, key, nonce);
    this.#params = params;
    this.#key = key;
    this.#adopt(list, nonce);
  }

  #adopt(list: TrustList, nonce: Uint8Array | undefined): void {
    for (const r of [...list.keys, ...list.entries]) this.#seen.add(fingerprint(r));
    this.#list = list;
    this.#nonce = nonce;
    setFollower(list, () => this.#refreshSync());
  }

  async #write(merge: (current: TrustList) => TrustList): Promise<TrustList> {
    if (this.#nonce === undefined) {
      // First use: the list's directory (e.g. ~/.config/bulkhead) may not exist yet.
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    }
    const timeout = this.#lockTimeoutMs;
    const lock = await acquireLock(this.path, timeout === undefined ? {} : { timeoutMs: timeout });
    try {
      await removeStaleTemps(this.path, lock.mtimeMs);
      await this.refresh();
      const current = this.#list;
      const next = merge(current);
      if (next === current && this.#nonce !== undefined) return current;
      const data = sealTrustList(this.#key, this.#params, next);
      await writeFileAtomic(this.path, data);
      await ensureMarker(this.path, false);
      this.#adopt(next, writeIdOf(data));
      return next;
    } finally {
      await lock.release();
    }
  }
}

/**
 * Opens an encrypted trust list. The derived key is kept in the returned object so that saving and
 * refreshing do not run scrypt again (each write still uses a fresh nonce). Temp files left by a
 * killed writer are removed first.
 *
 * @param path list file
 * @param secret passphrase or raw 32-byte key
 * @param options `create` to start from an empty list when the file does not exist yet; scrypt
 *   cost for a new file; lock wait
 * @returns the open list
 * @throws {PluginError} ERR_TRUST_LIST when the file is missing (without `create`, or at all once
 *   it has existed), unreadable, the key is wrong, or the content is corrupted or foreign
 * @example
 * ```ts
 * const file = await openTrustList(path, { passphrase: process.env.BULKHEAD_TRUST_PASSPHRASE! });
 * ```
 */
export async function openTrustList(
  path: string,
  secret: TrustSecret,
  options: OpenTrustListOptions = {},
): Promise<TrustListFile> {
  const abs = resolve(path);
  await cleanStaleTemps(abs);
  const read = await readChanged(abs, undefined);
  const lockTimeoutMs = options.lockTimeoutMs;
  if (read.kind !== "data") {
    if (await hasMarker(abs)) throw lostError(abs);
    if (options.create !== true) throw listError(`"${abs}" cannot be read (ENOENT)`);
    const params = newParams(secret, options);
    const key = await deriveKey(secret, params);
    const list = emptyTrustList();
    return new OpenList({ path: abs, secret, params, key, list, nonce: undefined, lockTimeoutMs });
  }
  const { params, nonce } = parseHeader(read.data);
  const key = await deriveKey(secret, params);
  const list = openSealedTrustList(read.data, key, nonce);
  await ensureMarker(abs, true);
  return new OpenList({ path: abs, secret, params, key, list, nonce, lockTimeoutMs });
}
