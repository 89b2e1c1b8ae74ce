/**
 * The `bulkhead keygen` and `bulkhead sign` commands of `lib/cli.ts`: making a signing key and
 * signing a package with it. The passphrase of the secret key comes from `$BULKHEAD_PASSPHRASE`
 * or from `--passphrase-file <file>`, never from the command line.
 *
 * @example
 * ```ts
 * import { keygenCommand } from "./cli_keys.ts";
 * const code = await keygenCommand(ctx, ["--out", "release.key"]);
 * ```
 * @module
 */

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PluginError } from "./errors.ts";
import { createSignature, encodeSignatureFile, readPackage } from "./trust/mod.ts";
import { readSecretKeyFile, writeKeyFiles } from "./trust/key_files.ts";
import {
  checkPackageDir,
  type CliContext,
  fsState,
  manifestFromSnapshot,
  parseCommand,
  requireOne,
  UsageError,
} from "./trust/cli_common.ts";

/** Help of the two commands. */
export const KEY_HELP: Record<string, string> = {
  keygen: "Usage: bulkhead keygen --out <file> [--force] [--unencrypted]\n" +
    "                       [--passphrase-file <file>] [--scrypt-log2n <n>] [--json]\n" +
    "Writes the public key to <file>.pub (one line: bulkhead-ed25519:<key id>:<base64>) and\n" +
    "the secret key to <file> (mode 0600), encrypted with the passphrase from\n" +
    "$BULKHEAD_PASSPHRASE or --passphrase-file (scrypt + XChaCha20-Poly1305); --unencrypted\n" +
    "writes it in the clear. An existing file is kept unless --force.\n",
  sign: "Usage: bulkhead sign <dir> --key <secret-key-file> [--expires <ISO date|<n>d|never>]\n" +
    "                     [--passphrase-file <file>] [--json]\n" +
    "Signs name, version (from plugin.json) and digest; writes <dir>/plugin.sig. Default expiry\n" +
    "365d. An encrypted key takes its passphrase from $BULKHEAD_PASSPHRASE or --passphrase-file.\n",
};

const DAY_MS = 86_400_000;

/**
 * The passphrase: `--passphrase-file` (its first line), else `$BULKHEAD_PASSPHRASE`.
 *
 * @returns the passphrase, or undefined when neither is given
 */
async function readPassphrase(
  ctx: CliContext,
  values: Record<string, unknown>,
): Promise<string | undefined> {
  const file = values["passphrase-file"];
  if (typeof file === "string") {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (cause) {
      throw new UsageError(`--passphrase-file "${file}": ${fsState(cause)}`);
    }
    const line = text.replace(/\r?\n[\s\S]*$/, "");
    if (line === "") throw new UsageError(`--passphrase-file "${file}" holds an empty passphrase`);
    return line;
  }
  const env = ctx.env.BULKHEAD_PASSPHRASE;
  return env === undefined || env === "" ? undefined : env;
}

function parseLog2N(text: unknown): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 10 || n > 20) {
    throw new UsageError("--scrypt-log2n must be an integer in 10..20");
  }
  return n;
}

/**
 * Runs `bulkhead keygen`.
 *
 * @param ctx CLI context
 * @param args arguments after `keygen`
 * @returns exit code
 * @throws {UsageError} without --out, or without a passphrase and --unencrypted
 * @throws {PluginError} ERR_IO when a file exists (without --force) or cannot be written
 */
export async function keygenCommand(ctx: CliContext, args: string[]): Promise<number> {
  const { values } = parseCommand(args, {
    out: { type: "string" },
    force: { type: "boolean" },
    unencrypted: { type: "boolean" },
    "passphrase-file": { type: "string" },
    "scrypt-log2n": { type: "string" },
  });
  if (typeof values.out !== "string") throw new UsageError("--out <file> is required");
  const plain = values.unencrypted === true;
  if (plain && values["passphrase-file"] !== undefined) {
    throw new UsageError("pass either --unencrypted or --passphrase-file, not both");
  }
  const passphrase = plain ? undefined : await readPassphrase(ctx, values);
  if (!plain && passphrase === undefined) {
    throw new UsageError(
      "the secret key is encrypted: set $BULKHEAD_PASSPHRASE or pass --passphrase-file <file> " +
        "(or --unencrypted to write it in the clear)",
    );
  }
  const log2 = parseLog2N(values["scrypt-log2n"]);
  const keys = await writeKeyFiles(values.out, {
    force: values.force === true,
    ...(passphrase === undefined ? {} : { passphrase }),
    ...(log2 === undefined ? {} : { scryptLog2N: log2 }),
    onDerive: () => ctx.note("deriving the secret key file's key from the passphrase (scrypt)…"),
  });
  ctx.print(
    {
      keyId: keys.keyId,
      publicKey: keys.publicKeyLine,
      secretKeyFile: keys.secretPath,
      publicKeyFile: keys.publicPath,
      encrypted: keys.encrypted,
    },
    `Key ${keys.keyId}\n  public key  ${keys.publicKeyLine}\n  public file ${keys.publicPath}\n` +
      `  secret key  ${keys.secretPath} (mode 0600, ${
        keys.encrypted ? "encrypted with the passphrase" : "NOT encrypted"
      })`,
  );
  return 0;
}

function parseExpiry(text: string | undefined, now: Date): Date | null {
  if (text === undefined) return new Date(now.getTime() + 365 * DAY_MS);
  if (text === "never") return null;
  const days = /^(\d+)d$/.exec(text);
  if (days) {
    if (Number(days[1]) === 0) throw new UsageError("--expires 0d is already expired");
    return new Date(now.getTime() + Number(days[1]) * DAY_MS);
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(`--expires "${text}" is not a date, <n>d or never`);
  }
  if (date.getTime() <= now.getTime()) {
    throw new UsageError(
      `--expires "${text}" is in the past (${date.toISOString()}); ` +
        "give a later date, a number of days such as 365d, or never",
    );
  }
  return date;
}

/**
 * Runs `bulkhead sign`.
 *
 * @param ctx CLI context
 * @param args arguments after `sign`
 * @returns exit code
 * @throws {UsageError} on a malformed command line or an expiry in the past
 * @throws {PluginError} ERR_MANIFEST_INVALID, ERR_SIGNATURE_INVALID (key file), ERR_IO
 */
export async function signCommand(ctx: CliContext, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    key: { type: "string" },
    expires: { type: "string" },
    "passphrase-file": { type: "string" },
  });
  const dir = requireOne(positionals, "package directory");
  if (typeof values.key !== "string") throw new UsageError("--key <secret-key-file> is required");
  const created = new Date();
  const expires = parseExpiry(values.expires as string | undefined, created);
  await checkPackageDir(dir);
  const snapshot = await readPackage(dir);
  const { name, version } = manifestFromSnapshot(snapshot);
  const passphrase = await readPassphrase(ctx, values);
  const { secretKey } = await readSecretKeyFile(values.key, {
    ...(passphrase === undefined ? {} : { passphrase }),
    onDerive: () => ctx.note("deriving the secret key file's key from the passphrase (scrypt)…"),
  });
  let sig;
  try {
    sig = createSignature({ name, version, digest: snapshot.digest, created, expires }, secretKey);
  } finally {
    secretKey.fill(0);
  }
  const path = join(snapshot.dir, "plugin.sig");
  try {
    await writeFile(path, encodeSignatureFile(sig));
  } catch (cause) {
    throw new PluginError("ERR_IO", `Cannot write "${path}": ${fsState(cause)}`, {
      hint: "Check that the package directory is writable and the disk has space",
      cause,
    });
  }
  ctx.print(
    { ...sig.statement, signatureFile: path },
    `Signed ${name}@${version} with key ${sig.statement.keyId}\n  digest  ${snapshot.digest}\n` +
      `  expires ${sig.statement.expires ?? "never"}\n  wrote   ${path}`,
  );
  return 0;
}
