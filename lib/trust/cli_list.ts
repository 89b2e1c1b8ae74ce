/**
 * Where every `bulkhead` command finds the trust list and its key: `--list`, else
 * `$BULKHEAD_TRUST_LIST`, else `$XDG_CONFIG_HOME/bulkhead/trust-list.bin` (`~/.config/...`); the
 * key from `--list-key-file` / `$BULKHEAD_TRUST_KEY_FILE` (raw 32 bytes) or
 * `$BULKHEAD_TRUST_PASSPHRASE` (scrypt), never from the command line. Used by `lib/cli.ts`,
 * `lib/cli_call.ts` and `cli_trust.ts`; not part of the trust API (`mod.ts` does not export it).
 *
 * @example
 * ```ts
 * import { openCliList } from "./cli_list.ts";
 * const file = await openCliList({ list: "trust.bin" }, { create: false, env: process.env });
 * ```
 * @module
 */

import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { PluginError } from "../errors.ts";
import { readListKeyFile } from "./key_files.ts";
import {
  hasTrustListMarker,
  openTrustList,
  type TrustListFile,
  type TrustSecret,
} from "./trust_file.ts";

/** The trust-list options (`--list`, `--list-key-file`, `--scrypt-log2n`). */
export const LIST_OPTIONS = {
  list: { type: "string" },
  "list-key-file": { type: "string" },
  "scrypt-log2n": { type: "string" },
} as const;

/** Whether `path` exists; errors other than ENOENT count as existing, so opening reports them. */
async function exists(path: string): Promise<boolean> {
  return await stat(path).then(
    () => true,
    (e) => (e as { code?: string } | null)?.code !== "ENOENT",
  );
}

function defaultListPath(env: Record<string, string | undefined>): string {
  if (env.BULKHEAD_TRUST_LIST) return env.BULKHEAD_TRUST_LIST;
  const config = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(config, "bulkhead", "trust-list.bin");
}

async function listSecret(
  values: Record<string, unknown>,
  env: Record<string, string | undefined>,
  note: ((text: string) => void) | undefined,
): Promise<TrustSecret> {
  const keyFile = (values["list-key-file"] as string | undefined) ?? env.BULKHEAD_TRUST_KEY_FILE;
  if (keyFile) return { key: await readListKeyFile(keyFile) };
  const passphrase = env.BULKHEAD_TRUST_PASSPHRASE;
  if (passphrase) {
    note?.("deriving the trust list key from $BULKHEAD_TRUST_PASSPHRASE (scrypt)…");
    return { passphrase };
  }
  throw new PluginError("ERR_TRUST_LIST", "Cannot open trust list: no passphrase or key file", {
    hint: "Set BULKHEAD_TRUST_PASSPHRASE, or pass --list-key-file / set BULKHEAD_TRUST_KEY_FILE",
  });
}

/**
 * Where the CLI's trust list is: `--list`, else `$BULKHEAD_TRUST_LIST`, else
 * `$XDG_CONFIG_HOME/bulkhead/trust-list.bin` (`~/.config/...`).
 *
 * @param values parsed {@link LIST_OPTIONS}
 * @param env the environment
 * @returns the absolute path
 */
export function cliListPath(
  values: Record<string, unknown>,
  env: Record<string, string | undefined>,
): string {
  return resolve(typeof values.list === "string" ? values.list : defaultListPath(env));
}

/** The list's path, or undefined for a default list that was never created. */
async function locateList(
  values: Record<string, unknown>,
  env: Record<string, string | undefined>,
  create: boolean,
): Promise<string | undefined> {
  const path = cliListPath(values, env);
  if (create || (await exists(path)) || (await hasTrustListMarker(path))) return path;
  if (typeof values.list !== "string") return undefined;
  throw new PluginError("ERR_TRUST_LIST", `Cannot open trust list "${path}": it does not exist`, {
    hint: "Check --list, or create the list with `bulkhead trust add`",
  });
}

/**
 * Opens the CLI's trust list ({@link cliListPath}) with the key from the environment or a key
 * file.
 *
 * @param values parsed {@link LIST_OPTIONS}
 * @param options `create` a missing list that never existed; the environment; `note` is told
 *   before a passphrase is stretched (it takes about a second)
 * @returns the open list, or undefined when `create` is false, `--list` is not given and the
 *   default list was never created
 * @throws {PluginError} ERR_TRUST_LIST when the list cannot be opened, including a default list
 *   that existed and is gone (reading it as "none" would decide without its revocations), and a
 *   `--list` that does not exist when `create` is false
 */
export async function openCliList(
  values: Record<string, unknown>,
  options: {
    create: boolean;
    env: Record<string, string | undefined>;
    note?: (text: string) => void;
  },
): Promise<TrustListFile | undefined> {
  const { create, env } = options;
  const path = await locateList(values, env, create);
  if (path === undefined) return undefined;
  const log2 = values["scrypt-log2n"];
  const open = log2 === undefined ? { create } : { create, scryptLog2N: Number(log2) };
  return openTrustList(path, await listSecret(values, env, options.note), open);
}

/**
 * The CLI's trust list as the host's `trust` options take it, for a host the CLI starts. A
 * default list (no `--list`) is skipped, with a note, when no key for it is configured: trying a
 * plugin should not need the trust list's passphrase.
 *
 * @param values parsed {@link LIST_OPTIONS}
 * @param options the environment; `note` is told when the default list is skipped
 * @returns path and secret, or undefined when `--list` is not given and the default list was
 *   never created or has no key configured
 * @throws {PluginError} ERR_TRUST_LIST as {@link openCliList} with `create` false
 */
export async function cliListTrust(
  values: Record<string, unknown>,
  options: { env: Record<string, string | undefined>; note: (text: string) => void },
): Promise<{ listPath: string; secret: TrustSecret } | undefined> {
  const { env, note } = options;
  const path = await locateList(values, env, false);
  if (path === undefined) return undefined;
  const keyed = typeof values["list-key-file"] === "string" || !!env.BULKHEAD_TRUST_KEY_FILE ||
    !!env.BULKHEAD_TRUST_PASSPHRASE;
  if (!keyed && typeof values.list !== "string") {
    note(`not using the trust list ${path}: set $BULKHEAD_TRUST_PASSPHRASE to use it`);
    return undefined;
  }
  return { listPath: path, secret: await listSecret(values, env, note) };
}
