/**
 * Private part of `lib/cli.ts`: the `bulkhead trust add|list|remove|revoke` subcommands and the
 * types the command implementations share.
 *
 * @module
 */

import { PluginError } from "../errors.ts";
import { type Manifest, parseManifest } from "../manifest.ts";
import { readPublicKey } from "./key_files.ts";
import { createVerifier, keyIdOf, parsePublicKey } from "./keys.ts";
import { type PackageSnapshot, readPackage } from "./package_snapshot.ts";
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
import type { TrustListFile } from "./trust_file.ts";
import { fromBase64 } from "./_encoding.ts";

/** Output streams and environment of one CLI run. */
export interface CliContext {
  /** Streams. */
  io: { stdout: { write(text: string): unknown }; stderr: { write(text: string): unknown } };
  /** Environment. */
  env: Record<string, string | undefined>;
  /** `--json` was given. */
  json: boolean;
  /** Prints a result: JSON when `--json`, else the human text. */
  print(value: unknown, human: string): void;
  /** Opens the trust list; undefined when none exists and `create` is false. */
  openList(values: Record<string, unknown>, create: boolean): Promise<TrustListFile | undefined>;
}

/** A command-line mistake: exit code 2. */
export class UsageError extends Error {
  /** @param message what is wrong with the command line */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses `plugin.json` from the snapshot's bytes (the bytes that were digested), not from disk, so
 * the name and version checked against the signature are the ones in the verified package.
 *
 * @param snapshot result of `readPackage`
 * @returns the validated manifest
 * @throws {PluginError} ERR_MANIFEST_INVALID when plugin.json is missing, not JSON or invalid
 */
export function manifestFromSnapshot(snapshot: PackageSnapshot): Manifest {
  const bytes = snapshot.files.get("plugin.json");
  if (bytes === undefined) {
    throw new PluginError(
      "ERR_MANIFEST_INVALID",
      `Cannot read manifest: "${snapshot.dir}/plugin.json" is missing`,
      {
        hint: "Create plugin.json in the plugin directory",
      },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new PluginError(
      "ERR_MANIFEST_INVALID",
      `Cannot parse manifest: "${snapshot.dir}/plugin.json" is not JSON`,
      {
        hint: "Fix the JSON syntax",
        cause,
      },
    );
  }
  return parseManifest(json, snapshot.dir);
}

type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; multiple?: boolean; short?: string }
>;

/** Helpers the trust subcommands borrow from the CLI. */
export interface TrustCommandDeps {
  /** Strict argument parser that throws {@link UsageError}. */
  parse(args: string[], options: OptionSpec): {
    values: Record<string, unknown>;
    positionals: string[];
  };
  /** The trust-list options (`--list`, `--list-key-file`, `--scrypt-log2n`). */
  listOptions: OptionSpec;
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
 * @param deps parser and shared option specs
 * @returns exit code
 * @throws {UsageError} on a malformed command line
 * @throws {PluginError} when the list cannot be opened or an input is invalid
 */
export async function trustCommand(
  ctx: CliContext,
  args: string[],
  deps: TrustCommandDeps,
): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || rest.includes("--help")) {
    ctx.io.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const options: OptionSpec = {
    ...deps.listOptions,
    key: { type: "string" },
    digest: { type: "string" },
    note: { type: "string" },
    reason: { type: "string" },
  };
  const { values, positionals } = deps.parse(rest, options);
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
