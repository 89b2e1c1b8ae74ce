/**
 * Private to `lib/trust`: an exclusive lock file that serialises the read-merge-write of one file
 * across processes and runtimes, with no native code. The lock for `<file>` is `<file>.lock`,
 * created with `O_CREAT | O_EXCL` (flag `wx`) and holding `{ pid, host, token, createdAt }`.
 *
 * A lock is stale when its holder is a dead process on this host (or an earlier process that had
 * this process's pid), or when nobody has touched it for `staleMs` (a holder refreshes its mtime while it holds it, so a long write is not taken for a
 * dead one, and a lock left by another host or a reused pid still expires). A waiter breaks a
 * stale lock only while holding `<file>.lock.break` (also `wx`) and only when the lock is still
 * the one it judged stale (same inode and content), so two waiters never both remove a lock and
 * never remove a fresh one. Waiting is bounded: exponential backoff with jitter up to `timeoutMs`.
 *
 * @example
 * ```ts
 * const lock = await acquireLock("/etc/bulkhead/trust-list.bin");
 * try {
 *   // read, merge, write
 * } finally {
 *   await lock.release();
 * }
 * ```
 * @module
 */

import { randomBytes } from "node:crypto";
import { open, stat, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { clearInterval, setInterval } from "node:timers";
import { PluginError } from "../errors.ts";
import { toHex } from "./_encoding.ts";

/** Options for {@link acquireLock}. */
export interface LockOptions {
  /** How long to wait for a live holder, ms (default 15 000; 0 tries once). */
  timeoutMs?: number;
  /** Age after which an untouched lock is stale whoever holds it, ms (default 10 000). */
  staleMs?: number;
}

/** A held lock. */
export interface FileLock {
  /** Path of the lock file. */
  readonly path: string;
  /** The lock file's mtime when it was created: files older than this predate the lock. */
  readonly mtimeMs: number;
  /** Removes the lock file if it is still ours. */
  release(): Promise<void>;
}

interface Holder {
  pid?: number;
  host?: string;
  token?: string;
  createdAt?: string;
}

interface Seen {
  raw: string;
  holder: Holder;
  ino: number;
  mtimeMs: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_STALE_MS = 10_000;
const MAX_DELAY_MS = 100;

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (codeOf(error) !== "ENOENT") throw error;
  }
}

async function readLock(path: string): Promise<Seen | undefined> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return undefined;
    throw error;
  }
  try {
    const s = await handle.stat();
    const raw = new TextDecoder().decode(await handle.readFile());
    let holder: Holder = {};
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (typeof parsed === "object" && parsed !== null) holder = parsed as Holder;
    } catch {
      // Empty or partial: the holder is between creating and filling the file (or died there);
      // only the age rule can declare it stale.
    }
    return { raw, holder, ino: s.ino, mtimeMs: s.mtimeMs };
  } finally {
    await handle.close();
  }
}

/** Tokens of the locks this process holds now: a lock with our pid and another token was left by
 * an earlier process that had the same pid (common in containers). */
const HELD = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return codeOf(error) !== "ESRCH";
  }
}

function isStale(seen: Seen, staleMs: number): boolean {
  const { pid, host, token } = seen.holder;
  if (host === hostname() && Number.isSafeInteger(pid) && (pid as number) > 0) {
    if (pid === process.pid) {
      if (typeof token === "string" && !HELD.has(token)) return true;
    } else if (!isAlive(pid as number)) return true;
  }
  return Date.now() - seen.mtimeMs > staleMs;
}

async function breakLock(path: string, seen: Seen, staleMs: number): Promise<void> {
  const breaker = `${path}.break`;
  let handle;
  try {
    handle = await open(breaker, "wx", 0o600);
  } catch (error) {
    if (codeOf(error) !== "EEXIST") throw error;
    // Another waiter is breaking the lock. A breaker is held for a few milliseconds; one left by
    // a process that died right then is removed once it is older than the stale age.
    const s = await stat(breaker).catch((e) =>
      codeOf(e) === "ENOENT" ? undefined : Promise.reject(e)
    );
    if (s !== undefined && Date.now() - s.mtimeMs > staleMs) await unlinkIfPresent(breaker);
    return;
  }
  try {
    await handle.close();
    const now = await readLock(path);
    if (now !== undefined && now.ino === seen.ino && now.raw === seen.raw) {
      await unlinkIfPresent(path);
    }
  } finally {
    await unlinkIfPresent(breaker);
  }
}

async function tryCreate(path: string, staleMs: number): Promise<FileLock | Seen | undefined> {
  const token = toHex(randomBytes(12));
  let handle;
  try {
    handle = await open(path, "wx", 0o600);
  } catch (error) {
    if (codeOf(error) !== "EEXIST") throw error;
    const seen = await readLock(path);
    if (seen !== undefined && isStale(seen, staleMs)) await breakLock(path, seen, staleMs);
    return seen;
  }
  let mtimeMs: number;
  HELD.add(token);
  try {
    const holder: Holder = {
      pid: process.pid,
      host: hostname(),
      token,
      createdAt: new Date().toISOString(),
    };
    await handle.writeFile(JSON.stringify(holder));
    mtimeMs = (await handle.stat()).mtimeMs;
  } catch (error) {
    HELD.delete(token);
    await handle.close();
    await unlinkIfPresent(path);
    throw error;
  }
  await handle.close();
  // Keep the lock fresh while it is held. A failed touch is not reported: its only effect is that
  // a waiter may judge the lock stale after `staleMs`, which is the recovery path anyway.
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => undefined);
  }, Math.max(50, Math.floor(staleMs / 3)));
  heartbeat.unref();
  return {
    path,
    mtimeMs,
    async release() {
      clearInterval(heartbeat);
      try {
        const now = await readLock(path);
        // Not ours any more only when we held it past `staleMs` and a waiter broke it.
        if (now?.holder.token === token) await unlinkIfPresent(path);
      } finally {
        HELD.delete(token);
      }
    },
  };
}

function busyError(target: string, path: string, seen: Seen | undefined): PluginError {
  const h = seen?.holder ?? {};
  const who = h.pid === undefined ? "another writer" : `pid ${h.pid} on "${h.host ?? "?"}"`;
  return new PluginError(
    "ERR_TRUST_LIST",
    `Cannot lock "${target}": "${path}" is held by ${who} since ${h.createdAt ?? "unknown"}`,
    {
      hint: "Another bulkhead process is writing the trust list; retry, or delete the lock file " +
        "if no such process is running",
    },
  );
}

function isLock(value: FileLock | Seen | undefined): value is FileLock {
  return value !== undefined && "release" in value;
}

/**
 * Takes the lock if it is free or stale, without waiting.
 *
 * @param target the file the lock protects
 * @param options stale age
 * @returns the held lock, or undefined when a live holder has it
 * @example
 * ```ts
 * const lock = await tryAcquireLock(path);
 * if (lock !== undefined) await lock.release();
 * ```
 */
export async function tryAcquireLock(
  target: string,
  options: LockOptions = {},
): Promise<FileLock | undefined> {
  const path = `${target}.lock`;
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  // A second attempt right away: the first may have just broken a stale lock.
  for (let i = 0; i < 2; i++) {
    const result = await tryCreate(path, staleMs);
    if (isLock(result)) return result;
  }
  return undefined;
}

/**
 * Takes the exclusive lock of `target`, waiting (bounded) for a live holder and breaking a stale
 * one.
 *
 * @param target the file the lock protects; the lock is `<target>.lock`
 * @param options wait and stale ages
 * @returns the held lock; call `release()` in `finally`
 * @throws {PluginError} ERR_TRUST_LIST when a live holder keeps it past `timeoutMs`
 * @example
 * ```ts
 * const lock = await acquireLock(path, { timeoutMs: 1000 });
 * ```
 */
export async function acquireLock(target: string, options: LockOptions = {}): Promise<FileLock> {
  const path = `${target}.lock`;
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  let delay = 2;
  for (;;) {
    const result = await tryCreate(path, staleMs);
    if (isLock(result)) return result;
    if (Date.now() >= deadline) throw busyError(target, path, result);
    await new Promise((ok) => setTimeout(ok, delay + Math.random() * delay));
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}
