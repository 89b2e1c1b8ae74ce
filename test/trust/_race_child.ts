/**
 * Child process for test/trust/trust_races.test.ts: one writer of a shared trust list.
 *
 * Usage:
 *   _race_child.ts saves <list> <hex raw key> <tag> <count> <stale|fresh>
 *     prints "ready", waits for a line on stdin, then saves <count> distinct updates (a revoked
 *     digest, a highest version or a trusted key, in turn), each derived from the list as read at
 *     open ("stale", like a long-running host) or from `file.list` ("fresh"); prints "done".
 *   _race_child.ts loop <list> <hex raw key>
 *     rewrites a large list forever, printing "wrote <n>" after each save, until killed.
 *   _race_child.ts exit
 *     exits at once (its pid is then a dead lock holder).
 *   _race_child.ts wait
 *     prints "ready" and exits after a line on stdin (a live pid).
 *
 * @module
 */

import { createInterface } from "node:readline";
import { openTrustList } from "../../lib/trust/trust_file.ts";
import {
  addTrustedKey,
  emptyTrustList,
  recordVersion,
  revokeDigest,
  type TrustList,
} from "../../lib/trust/trust_list.ts";
import { generateKeyPair } from "../../lib/trust/keys.ts";

/** The digest a writer revokes for update `i`. */
export function raceDigest(tag: string, i: number): string {
  return Buffer.from(tag).toString("hex").padEnd(16, "0") + i.toString(16).padStart(112, "0");
}

/** The update a writer makes at step `i`: which one is shown by `i % 3`. */
export function raceUpdate(list: TrustList, tag: string, i: number): TrustList {
  if (i % 3 === 0) return revokeDigest(list, raceDigest(tag, i), { reason: `${tag} ${i}` });
  if (i % 3 === 1) return recordVersion(list, `${tag}-${i}`, `1.0.${i}`);
  return addTrustedKey(list, generateKeyPair().publicKey, { note: `${tag} ${i}` });
}

async function waitForLine(): Promise<void> {
  process.stdout.write("ready\n");
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((ok) => lines.once("line", () => ok()));
  lines.close();
}

async function saves(args: string[]): Promise<void> {
  const [path, keyHex, tag, count, mode] = args;
  const file = await openTrustList(path!, { key: new Uint8Array(Buffer.from(keyHex!, "hex")) });
  const stale = file.list;
  await waitForLine();
  for (let i = 0; i < Number(count); i++) {
    await file.save(raceUpdate(mode === "stale" ? stale : file.list, tag!, i));
  }
  process.stdout.write("done\n");
}

async function loop(args: string[]): Promise<void> {
  const [path, keyHex] = args;
  const file = await openTrustList(path!, { key: new Uint8Array(Buffer.from(keyHex!, "hex")) });
  const base = emptyTrustList();
  for (let i = 0; i < 20_000; i++) {
    base.revokedDigests.push({
      digest: raceDigest("loop", i),
      revokedAt: new Date(0).toISOString(),
    });
  }
  for (let n = 1;; n++) {
    await file.save({ ...base, highestVersions: { loop: `${n}.0.0` } });
    process.stdout.write(`wrote ${n}\n`);
  }
}

if (import.meta.main ?? process.argv[1]?.endsWith("_race_child.ts")) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === "saves") await saves(rest);
  else if (mode === "loop") await loop(rest);
  else if (mode === "exit") process.exitCode = 0; // a pid that is dead once this returns
  else if (mode === "wait") await waitForLine(); // a live pid that holds no lock itself
  else throw new TypeError(`unknown mode "${mode}"`);
}
