/**
 * The `bulkhead trust add|list|remove|revoke` subcommands of `lib/cli.ts`, and where every command
 * finds the trust list and its key. Not part of the trust API: `mod.ts` does not export it.
 *
 * @example
 * ```ts
 * import { trustCommand } from "./cli_trust.ts";
 * const code = await trustCommand(ctx, ["revoke", "--key", keyId, "--reason", "leaked"]);
 * ```
 * @module
 */

import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { PluginError } from "../errors.ts";
import { fromBase64 } from "./_encoding.ts";
import {
  type CliContext,
  manifestFromSnapshot,
  type OptionSpec,
  parseCommand,
  UsageError,
} from "./cli_common.ts";
import { readListKeyFile, readPublicKey } from "./key_files.ts";
import { createVerifier, keyIdOf, parsePublicKey } from "./keys.ts";
import { readPackage } from "./package_snapshot.ts";
import { parseSignatureFile, verifyStatement } from "./signature.ts";
import {
  addTrustedKey,
  addTrustEntry,
  emptyTrustList,
  removeTrustedKey,
  removeTrustEntry,
  revokeDigest,
  revokeKey,
  type TrustList,
} from "./trust_list.ts";
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
): Promise<TrustSecret> {
  const keyFile = (values["list-key-file"] as string | undefined) ?? env.BULKHEAD_TRUST_KEY_FILE;
  if (keyFile) return { key: await readListKeyFile(keyFile) };
  const passphrase = env.BULKHEAD_TRUST_PASSPHRASE;
  if (passphrase) return { passphrase };
  throw new PluginError("ERR_TRUST_LIST", "Cannot open trust list: no passphrase or key file", {
    hint: "Set BULKHEAD_TRUST_PASSPHRASE, or pass --list-key-file / set BULKHEAD_TRUST_KEY_FILE",
  });
}

/**
 * Opens the CLI's trust list: `--list`, else `$BULKHEAD_TRUST_LIST`, else
 * `$XDG_CONFIG_HOME/bulkhead/trust-list.bin`, with the key from the environment or a key file.
 *
 * @param values parsed {@link LIST_OPTIONS}
 * @param options `create` a missing list that never existed; the environment
 * @returns the open list, or undefined when `create` is false, `--list` is not given and the
 *   default list was never created
 * @throws {PluginError} ERR_TRUST_LIST when the list cannot be opened, including a default list
 *   that existed and is gone (reading it as "none" would decide without its revocations)
 */
export async function openCliList(
  values: Record<string, unknown>,
  options: { create: boolean; env: Record<string, string | undefined> },
): Promise<TrustListFile | undefined> {
  const { create, env } = options;
  const explicit = typeof values.list === "string";
  const path = resolve(explicit ? values.list as string : defaultListPath(env));
  if (!create && !explicit && !(await exists(path)) && !(await hasTrustListMarker(path))) {
    return undefined;
  }
  const log2 = values["scrypt-log2n"];
  const open = log2 === undefined ? { create } : { create, scryptLog2N: Number(log2) };
  return openTrustList(path, await listSecret(values, env), open);
}

const HELP = `Usage:
  bulkhead trust add <dir> [--note <text>]          approve this exact signed package
  bulkhead trust add --key <public key|file> [--note <text>]   trust a signing key
  bulkhead trust list
  bulkhead trust remove <name>[@<version>] | --key <key id>
  bulkhead trust revoke <key id|digest> | --key <key id|public key> | --digest <hex>
                        [--reason <text>]
Options: --list <file>, --list-key-file <file>, --scrypt-log2n <n> (new list), --json, --help
The passphrase comes from $BULKHEAD_TRUST_PASSPHRASE (or use a key file); never from argv.
`;

async function mustOpen(ctx: CliContext, values: Record<string, unknown>, create: boolean) {
  const file = await ctx.openList(values, create);
  if (file === undefined) {
    throw new PluginError("ERR_TRUST_LIST", "Cannot open trust list: it does not exist", {
      hint: "Create it with `bulkhead trust add`, or pass --list <file>",
    });
  }
  return file;
}

async function add(ctx: CliContext, values: Record<string, unknown>, positionals: string[]) {
  const note = values.note as string | undefined;
  const opts = note === undefined ? {} : { note };
  if (typeof values.key === "string") {
    if (positionals.length > 0) throw new UsageError("pass either <dir> or --key, not both");
    const key = await readPublicKey(values.key);
    const keyId = keyIdOf(parsePublicKey(key));
    const file = await mustOpen(ctx, values, true);
    const list = await file.update((current) => addTrustedKey(current, key, opts));
    const rec = list.keys.find((k) => k.keyId === keyId)!;
    ctx.print({ added: "key", ...rec }, `Trusted key ${rec.keyId}`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("expected <dir> or --key <public key>");
  const dir = positionals[0]!;
  const snapshot = await readPackage(dir);
  const manifest = manifestFromSnapshot(snapshot);
  if (snapshot.signature === undefined) {
    throw new PluginError(
      "ERR_UNTRUSTED",
      `Cannot trust "${manifest.name}": it has no plugin.sig`,
      {
        hint: "Sign it first with `bulkhead sign`",
      },
    );
  }
  const sig = parseSignatureFile(snapshot.signature);
  const expected = { name: manifest.name, version: manifest.version, digest: snapshot.digest };
  verifyStatement(sig, expected, createVerifier(parsePublicKey(fromBase64(sig.publicKey)!)));
  const file = await mustOpen(ctx, values, true);
  await file.update((current) => addTrustEntry(current, sig, opts));
  ctx.print(
    { added: "entry", ...expected, keyId: sig.statement.keyId },
    `Trusted ${expected.name}@${expected.version} (${
      snapshot.digest.slice(0, 16)
    }…) signed by ${sig.statement.keyId}`,
  );
  return 0;
}

function describeList(list: TrustList): string {
  const lines: string[] = [];
  lines.push(`Trusted keys (${list.keys.length})`);
  for (const k of list.keys) {
    lines.push(`  ${k.keyId}  ${k.publicKey}${k.note ? `  ${k.note}` : ""}`);
  }
  lines.push(`Trusted packages (${list.entries.length})`);
  for (const e of list.entries) {
    lines.push(
      `  ${e.name}@${e.version}  ${e.digest.slice(0, 16)}…  key ${e.keyId}${
        e.note ? `  ${e.note}` : ""
      }`,
    );
  }
  lines.push(`Revoked keys (${list.revokedKeys.length})`);
  for (const k of list.revokedKeys) lines.push(`  ${k.keyId}${k.reason ? `  ${k.reason}` : ""}`);
  lines.push(`Revoked digests (${list.revokedDigests.length})`);
  for (const d of list.revokedDigests) {
    lines.push(`  ${d.digest}${d.reason ? `  ${d.reason}` : ""}`);
  }
  const versions = Object.entries(list.highestVersions);
  lines.push(`Highest versions (${versions.length})`);
  for (const [n, v] of versions) lines.push(`  ${n}  ${v}`);
  return lines.join("\n");
}

const DIGEST_RE = /^[0-9a-fA-F]{128}$/;

/** `revoke --key <k>`, `revoke --digest <d>`, or `revoke <k|d>` (a 128-hex value is a digest). */
function revokeTarget(
  values: Record<string, unknown>,
  positionals: string[],
): { kind: "key" | "digest"; value: string } {
  const given = [
    ...(typeof values.key === "string" ? [{ kind: "key" as const, value: values.key }] : []),
    ...(typeof values.digest === "string"
      ? [{ kind: "digest" as const, value: values.digest }]
      : []),
    ...positionals.map((value) => ({
      kind: DIGEST_RE.test(value) ? "digest" as const : "key" as const,
      value,
    })),
  ];
  if (given.length !== 1) {
    throw new UsageError("pass exactly one of <key id|digest>, --key or --digest");
  }
  return given[0]!;
}

/**
 * Runs `bulkhead trust <subcommand>`.
 *
 * @param ctx CLI context
 * @param args arguments after `trust`
 * @returns exit code
 * @throws {UsageError} on a malformed command line
 * @throws {PluginError} when the list cannot be opened or an input is invalid
 */
export async function trustCommand(ctx: CliContext, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || rest.includes("--help")) {
    ctx.io.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const options: OptionSpec = {
    ...LIST_OPTIONS,
    key: { type: "string" },
    digest: { type: "string" },
    note: { type: "string" },
    reason: { type: "string" },
  };
  const { values, positionals } = parseCommand(rest, options);
  switch (sub) {
    case "add":
      return await add(ctx, values, positionals);
    case "list": {
      const file = await ctx.openList(values, false);
      const list = file?.list;
      if (list === undefined) {
        ctx.print({ exists: false }, "No trust list yet (create one with `bulkhead trust add`)");
        return 0;
      }
      ctx.print({ path: file!.path, ...list }, describeList(list));
      return 0;
    }
    case "remove": {
      const file = await mustOpen(ctx, values, false);
      let remove: (list: TrustList) => { list: TrustList; removed: number };
      if (typeof values.key === "string") {
        const keyId = values.key;
        remove = (list) => removeTrustedKey(list, keyId);
      } else {
        if (positionals.length !== 1) throw new UsageError("expected <name>[@<version>] or --key");
        const spec = positionals[0]!;
        const at = spec.lastIndexOf("@");
        remove = at > 0
          ? (list) => removeTrustEntry(list, spec.slice(0, at), spec.slice(at + 1))
          : (list) => removeTrustEntry(list, spec);
      }
      // The removal applies to the list as it is under the lock, not to the copy read at open.
      let removed = 0;
      await file.update((current) => {
        const result = remove(current);
        removed = result.removed;
        if (removed === 0) {
          throw new PluginError("ERR_TRUST_LIST", "Cannot remove: nothing matched", {
            hint: "Run `bulkhead trust list` to see what is there",
          });
        }
        return result.list;
      });
      ctx.print({ removed }, `Removed ${removed}`);
      return 0;
    }
    case "revoke": {
      const reason = values.reason as string | undefined;
      const opts = reason === undefined ? {} : { reason };
      const target = revokeTarget(values, positionals);
      let edit: (list: TrustList) => TrustList;
      let what: string;
      try {
        // Validate before taking the lock: a malformed key or digest is a usage error.
        if (target.kind === "key") {
          what = revokeKey(emptyTrustList(), target.value, opts).revokedKeys[0]!.keyId;
          edit = (list) => revokeKey(list, target.value, opts);
        } else {
          what = target.value.toLowerCase();
          revokeDigest(emptyTrustList(), target.value, opts);
          edit = (list) => revokeDigest(list, target.value, opts);
        }
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const file = await mustOpen(ctx, values, true);
      await file.update(edit);
      ctx.print(
        { revoked: target.kind, id: what },
        `Revoked ${target.kind} ${what}`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown trust subcommand "${sub}"`);
  }
}
