/**
 * The `bulkhead trust add|list|remove|revoke` subcommands of `lib/cli.ts` (the list itself is
 * found by `cli_list.ts`). Not part of the trust API: `mod.ts` does not export it.
 *
 * @example
 * ```ts
 * import { trustCommand } from "./cli_trust.ts";
 * const code = await trustCommand(ctx, ["revoke", "--key", keyId, "--reason", "leaked"]);
 * ```
 * @module
 */

import { stat } from "node:fs/promises";
import { PluginError } from "../errors.ts";
import { fromBase64 } from "./_encoding.ts";
import {
  checkPackageDir,
  type CliContext,
  manifestFromSnapshot,
  type OptionSpec,
  parseCommand,
  UsageError,
} from "./cli_common.ts";
import { cliListPath, LIST_OPTIONS } from "./cli_list.ts";
import { readPublicKey } from "./key_files.ts";
import { createVerifier, formatPublicKey, keyIdOf, parsePublicKey } from "./keys.ts";
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

const HELP = `Usage:
  bulkhead trust add <dir> [--note <text>]          approve this exact signed package
  bulkhead trust add --key <public key|.pub file> [--note <text>]   trust a signing key
  bulkhead trust list
  bulkhead trust remove <name>[@<version>] | --key <key id>
  bulkhead trust revoke <key id|public key|digest> | --key <key id|public key> | --digest <hex>
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
    const keyId = keyIdOf(key);
    const file = await mustOpen(ctx, values, true);
    let already = false;
    const list = await file.update((current) => {
      already = current.keys.some((k) => k.keyId === keyId);
      // A repeated add without --note changes nothing: the original date stays.
      return already && note === undefined ? current : addTrustedKey(current, key, opts);
    });
    const rec = list.keys.find((k) => k.keyId === keyId)!;
    if (list.revokedKeys.some((k) => k.keyId === keyId)) {
      ctx.io.stderr.write(`warning: key ${keyId} is revoked in this list; revocation wins\n`);
    }
    ctx.print(
      { added: "key", alreadyTrusted: already, ...rec, line: formatPublicKey(key) },
      already
        ? `Key ${keyId} was already trusted${note === undefined ? "" : " (note updated)"}`
        : `Trusted key ${keyId}`,
    );
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("expected <dir> or --key <public key>");
  const dir = positionals[0]!;
  await checkPackageDir(dir);
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
  let already = false;
  await file.update((current) => {
    already = current.entries.some((e) =>
      e.name === expected.name && e.version === expected.version && e.digest === expected.digest
    );
    return already && note === undefined ? current : addTrustEntry(current, sig, opts);
  });
  const what = `${expected.name}@${expected.version} (${snapshot.digest.slice(0, 16)}…)`;
  ctx.print(
    { added: "entry", alreadyTrusted: already, ...expected, keyId: sig.statement.keyId },
    already
      ? `${what} was already trusted${note === undefined ? "" : " (note updated)"}`
      : `Trusted ${what} signed by ${sig.statement.keyId}`,
  );
  return 0;
}

function describeList(path: string, list: TrustList): string {
  const lines: string[] = [`Trust list ${path}`];
  lines.push(`Trusted keys (${list.keys.length})`);
  for (const k of list.keys) {
    const bytes = fromBase64(k.publicKey);
    const text = bytes?.length === 32 ? formatPublicKey(bytes) : k.publicKey;
    lines.push(`  ${text}${k.note ? `  ${k.note}` : ""}`);
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
 * The key id to revoke: a key id as given; a `.pub` file or a key line read and checked; a bare
 * hex or base64 key as given (revoking needs only its 32 bytes, not a valid key).
 */
async function revokedKeyText(value: string): Promise<string> {
  const text = value.trim();
  if (/^[0-9a-f]{16}$/.test(text)) return text;
  const isFile = await stat(value).then((s) => s.isFile(), () => false);
  if (!isFile && !text.startsWith("bulkhead-ed25519:") && !text.startsWith("{")) return text;
  try {
    return keyIdOf(await readPublicKey(value));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
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
        const path = cliListPath(values, ctx.env);
        ctx.print(
          { exists: false, path },
          `No trust list at ${path} yet (create one with \`bulkhead trust add\`, ` +
            "or name another with --list or $BULKHEAD_TRUST_LIST)",
        );
        return 0;
      }
      ctx.print({ exists: true, path: file!.path, ...list }, describeList(file!.path, list));
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
      const value = target.kind === "key" ? await revokedKeyText(target.value) : target.value;
      let edit: (list: TrustList) => TrustList;
      let what: string;
      try {
        // Validate before taking the lock: a malformed key or digest is a usage error.
        if (target.kind === "key") {
          what = revokeKey(emptyTrustList(), value, opts).revokedKeys[0]!.keyId;
          edit = (list) => revokeKey(list, value, opts);
        } else {
          what = value.toLowerCase();
          revokeDigest(emptyTrustList(), value, opts);
          edit = (list) => revokeDigest(list, value, opts);
        }
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const file = await mustOpen(ctx, values, true);
      let already = false;
      await file.update((list) => {
        already = target.kind === "key"
          ? list.revokedKeys.some((k) => k.keyId === what)
          : list.revokedDigests.some((d) => d.digest === what);
        return already && reason === undefined ? list : edit(list);
      });
      ctx.print(
        { revoked: target.kind, id: what, alreadyRevoked: already },
        already ? `${target.kind} ${what} was already revoked` : `Revoked ${target.kind} ${what}`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown trust subcommand "${sub}"`);
  }
}
