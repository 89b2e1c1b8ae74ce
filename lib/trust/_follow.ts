/**
 * Private to `lib/trust`: followers, the link from a list handed out by an open trust list file
 * (`TrustListFile.list`) back to that file, so that a store built from the list can follow the
 * file without its caller passing the file along.
 *
 * @example
 * ```ts
 * import { followerOf, setFollower } from "./_follow.ts";
 * setFollower(list, () => reReadIfChanged());
 * const current = followerOf(list)?.() ?? list;
 * ```
 * @module
 */

import type { TrustList } from "./trust_list.ts";

/** Lists handed out by an open file. Weak, so a list no longer referenced keeps no file alive. */
const FOLLOW = new WeakMap<TrustList, () => TrustList>();

/**
 * Links `list` to a function that re-reads its file when it changed and returns the current list.
 *
 * @param list a list handed out by an open file
 * @param follow synchronous (trust decisions are); throws ERR_TRUST_LIST when the file became
 *   unreadable or was lost
 */
export function setFollower(list: TrustList, follow: () => TrustList): void {
  FOLLOW.set(list, follow);
}

/**
 * For a list obtained from `TrustListFile.list`: a function that re-reads the file when it changed
 * and returns the current list.
 *
 * @param list a list
 * @returns the follower, or undefined for a list that did not come from an open file
 * @example
 * ```ts
 * const current = followerOf(file.list)?.() ?? file.list;
 * ```
 */
export function followerOf(list: TrustList): (() => TrustList) | undefined {
  return FOLLOW.get(list);
}
