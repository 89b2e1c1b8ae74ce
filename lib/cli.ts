#!/usr/bin/env node
/**
 * The `bulkhead` command line: keys, signatures, digests, the trust list and package inspection.
 *
 * ```text
 * bulkhead keygen --out <file> [--force]
 * bulkhead sign <dir> --key <secret-key-file> [--expires <ISO date|<n>d|never>]
 * bulkhead verify <dir> [--policy <preset>] [--pin <key>]... [--allow-downgrade]
 * bulkhead hash <dir|file>
 * bulkhead trust add <dir> | --key <public key|file> [--note <text>]
 * bulkhead trust list
 * bulkhead trust remove <name>[@<version>] | --key <key id>
 * bulkhead trust revoke --key <key id|public key> | --digest <hex> [--reason <text>]
 * bulkhead inspect <dir> [--pin <key>]...
 * ```
 *
 * Every command takes `--json` (machine-readable output) and `--help`. Exit codes: 0 success,
 * 1 failure (refused, invalid, error), 2 usage error.
 *
 * The trust list file is `--list <file>`, else `$BULKHEAD_TRUST_LIST`, else
 * `$XDG_CONFIG_HOME/bulkhead/trust-list.bin` (`~/.config/...`). Its key comes from
 * `$BULKHEAD_TRUST_PASSPHRASE` (scrypt), or from a raw 32-byte key file named by `--list-key-file`
 * or `$BULKHEAD_TRUST_KEY_FILE`; never from the command line. `--scrypt-log2n <n>` sets the cost of a
 * new list (default 17).
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["hash", "./plugins/resizer", "--json"]);
 * ```
 * @module
 */

import { realpathSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PluginError } from "./errors.ts";
import type { Manifest } from "./manifest.ts";
import { deriveGrants } from "../permissions/grants.ts";
import {
  createSignature,
  createTrustStore,
  digestFile,
  encodeSignatureFile,
  evaluateTrust,
  parseSignatureFile,
  readPackage,
  resolvePolicy,
  TRUST_PRESETS,
  type TrustList,
  type TrustPresetName,
} from "./trust/mod.ts";
import { readPublicKey, readSecretKeyFile, writeKeyFiles } from "./trust/key_files.ts";
import {
  type CliContext,
  manifestFromSnapshot,
  parseCommand,
  requireOne,
  UsageError,
} from "./trust/cli_common.ts";
import { LIST_OPTIONS, openCliList, trustCommand } from "./trust/cli_trust.ts";

/** Where the CLI writes and which environment it reads. */
export interface CliIo {
  /** Normal output. */
  stdout: { write(text: string): unknown };
  /** Errors and warnings. */
  stderr: { write(text: string): unknown };
  /** Environment (default `process.env`). */
  env?: Record<string, string | undefined>;
}

const USAGE = `Usage: bulkhead <command> [options]

Commands:
  keygen    generate an Ed25519 signing key (secret file mode 0600 + .pub)
  sign      sign a plugin package (writes plugin.sig)
  verify    check a package against the trust list, pinned keys and a policy
  hash      print the digest of a package directory or a single file
  trust     add | list | remove | revoke entries of the encrypted trust list
  inspect   show a package's manifest fields, digest and signature state

Options for every command: --json, --help
Trust list: --list <file> | $BULKHEAD_TRUST_LIST; key: $BULKHEAD_TRUST_PASSPHRASE or
  --list-key-file <file> | $BULKHEAD_TRUST_KEY_FILE (never on the command line)
`;

const HELP: Record<string, string> = {
  keygen: "Usage: bulkhead keygen --out <file> [--force] [--json]\n" +
    "Writes the secret key to <file> (mode 0600) and the public key to <file>.pub.\n",
  sign: "Usage: bulkhead sign <dir> --key <secret-key-file> [--expires <ISO date|<n>d|never>]\n" +
    "Signs name, version (from plugin.json) and digest; writes <dir>/plugin.sig. Default expiry 365d.\n",
  verify: "Usage: bulkhead verify <dir> [--policy development|standard|strict] [--pin <key>]...\n" +
    "                       [--allow-downgrade] [--list <file>] [--list-key-file <file>] [--json]\n" +
    "Exit 0 when the policy allows the package, 1 otherwise.\n",
  hash: "Usage: bulkhead hash <dir|file> [--json]\n" +
    "Package digest of a directory (SHA3-512 over the file listing) or SHA3-512 of a file.\n",
  inspect: "Usage: bulkhead inspect <dir> [--pin <key>]... [--list <file>] [--json]\n",
};

function makeContext(io: CliIo, json: boolean): CliContext {
  const env = io.env ?? process.env;
  return {
    io,
    env,
    json,
    print(value, human) {
      io.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`);
    },
    openList: (values, create) => openCliList(values, { create, env }),
  };
}

function parseExpiry(text: string | undefined, now: Date): Date | null {
  if (text === undefined) return new Date(now.getTime() + 365 * 86_400_000);
  if (text === "never") return null;
  const days = /^(\d+)d$/.exec(text);
  if (days) return new Date(now.getTime() + Number(days[1]) * 86_400_000);
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--expires "${text}" is not a date`);
  return date;
}

async function keygen(ctx: CliContext, args: string[]): Promise<number> {
  const { values } = parseCommand(args, { out: { type: "string" }, force: { type: "boolean" } });
  if (typeof values.out !== "string") throw new UsageError("--out <file> is required");
  const keys = await writeKeyFiles(values.out, { force: values.force === true });
  const pub = Buffer.from(keys.publicKey).toString("hex");
  ctx.print(
    {
      keyId: keys.keyId,
      publicKey: pub,
      secretKeyFile: keys.secretPath,
      publicKeyFile: keys.publicPath,
    },
    `Key ${keys.keyId}\n  public key  ${pub}\n  secret key  ${keys.secretPath} (mode 0600)\n` +
      `  public file ${keys.publicPath}`,
  );
  return 0;
}

async function sign(ctx: CliContext, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    key: { type: "string" },
    expires: { type: "string" },
  });
  const dir = requireOne(positionals, "package directory");
  if (typeof values.key !== "string") throw new UsageError("--key <secret-key-file> is required");
  const { secretKey } = await readSecretKeyFile(values.key);
  const snapshot = await readPackage(dir);
  const { name, version } = manifestFromSnapshot(snapshot);
  const created = new Date();
  const expires = parseExpiry(values.expires as string | undefined, created);
  const sig = createSignature(
    { name, version, digest: snapshot.digest, created, expires },
    secretKey,
  );
  secretKey.fill(0);
  const path = join(snapshot.dir, "plugin.sig");
  await writeFile(path, encodeSignatureFile(sig));
  ctx.print(
    { ...sig.statement, signatureFile: path },
    `Signed ${name}@${version} with key ${sig.statement.keyId}\n  digest  ${snapshot.digest}\n` +
      `  expires ${sig.statement.expires ?? "never"}\n  wrote   ${path}`,
  );
  return 0;
}

async function judge(ctx: CliContext, values: Record<string, unknown>, dir: string) {
  const snapshot = await readPackage(dir);
  const manifest = manifestFromSnapshot(snapshot);
  const { name, version } = manifest;
  const file = await ctx.openList(values, false);
  const pins = await Promise.all(((values.pin as string[] | undefined) ?? []).map(readPublicKey));
  const list: TrustList | undefined = file?.list;
  const store = createTrustStore(
    list === undefined ? { pinnedKeys: pins } : { list, pinnedKeys: pins },
  );
  const preset = (values.policy as string | undefined) ?? "standard";
  if (!(TRUST_PRESETS as readonly string[]).includes(preset)) {
    throw new UsageError(`--policy must be one of ${TRUST_PRESETS.join(", ")}`);
  }
  const policy = values["allow-downgrade"] === true
    ? resolvePolicy({ extends: preset as TrustPresetName, allowDowngrade: true })
    : resolvePolicy(preset as TrustPresetName);
  const decision = evaluateTrust(
    { name, version, digest: snapshot.digest, signature: snapshot.signature },
    store,
    policy,
  );
  return { name, version, manifest, snapshot, decision, policy };
}

const JUDGE_OPTIONS = {
  ...LIST_OPTIONS,
  pin: { type: "string", multiple: true },
  policy: { type: "string" },
  "allow-downgrade": { type: "boolean" },
} as const;

async function verify(ctx: CliContext, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, JUDGE_OPTIONS);
  const { name, version, snapshot, decision, policy } = await judge(
    ctx,
    values,
    requireOne(positionals, "package directory"),
  );
  for (const w of decision.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
  ctx.print(
    { name, version, digest: snapshot.digest, policy: policy.name, ...decision },
    `${
      decision.allowed ? "OK" : "REFUSED"
    } ${name}@${version}: ${decision.state}, ${decision.reason}` +
      (decision.code ? ` (${decision.code})` : ""),
  );
  return decision.allowed ? 0 : 1;
}

async function hash(ctx: CliContext, args: string[]): Promise<number> {
  const { positionals } = parseCommand(args, {});
  const target = requireOne(positionals, "path");
  const isDir = await stat(target).then((s) => s.isDirectory(), () => false);
  if (isDir) {
    const s = await readPackage(target);
    ctx.print(
      {
        kind: "package",
        path: s.dir,
        digest: s.digest,
        files: s.files.size,
        totalBytes: s.totalBytes,
      },
      `${s.digest}  ${s.dir}/ (${s.files.size} files, ${s.totalBytes} bytes)`,
    );
  } else {
    const f = await digestFile(target);
    ctx.print(
      { kind: "file", path: f.path, digest: f.digest, totalBytes: f.bytes.length },
      `${f.digest}  ${f.path}`,
    );
  }
  return 0;
}

async function inspect(ctx: CliContext, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, JUDGE_OPTIONS);
  const dir = requireOne(positionals, "package directory");
  const { manifest, snapshot, decision } = await judge(ctx, values, dir);
  let statement = null;
  if (snapshot.signature !== undefined) {
    try {
      statement = parseSignatureFile(snapshot.signature).statement;
    } catch {
      statement = null; // the decision already says the signature is malformed
    }
  }
  const info = {
    name: manifest.name,
    version: manifest.version,
    description: manifest.description ?? null,
    isolation: manifest.isolation ?? null,
    entry: manifest.entry ?? null,
    native: manifest.native ?? null,
    dir: snapshot.dir,
    digest: snapshot.digest,
    files: [...snapshot.files.keys()].sort(),
    totalBytes: snapshot.totalBytes,
    signature: { present: snapshot.signature !== undefined, statement, ...decision },
    permissions: manifest.permissions,
    limits: manifest.limits,
    grants: inspectGrants(manifest),
  };
  ctx.print(
    info,
    `${info.name}@${info.version}${info.description ? ` - ${info.description}` : ""}\n` +
      `  dir        ${info.dir}\n  digest     ${info.digest}\n` +
      `  files      ${info.files.length} (${info.totalBytes} bytes)\n` +
      `  signature  ${decision.state}: ${decision.reason}` +
      (statement
        ? `\n  signed by  ${statement.keyId}, expires ${statement.expires ?? "never"}`
        : "") +
      `\n  network    ${JSON.stringify(manifest.permissions.network)}` +
      `\n  fs read    ${manifest.permissions.filesystem.read.join(", ") || "(none)"}` +
      `\n  fs write   ${manifest.permissions.filesystem.write.join(", ") || "(none)"}` +
      `\n  env        ${manifest.permissions.env.join(", ") || "(none)"}` +
      `\n  context    read ${manifest.permissions.context.read.join(", ") || "(none)"}; write ${
        manifest.permissions.context.write.join(", ") || "(none)"
      }` +
      `\n  limits     ${JSON.stringify(manifest.limits)}` +
      `\n  deno       ${JSON.stringify(info.grants.deno)}` +
      `\n  node       ${info.grants.nodeExecArgv.join(" ")}`,
  );
  return 0;
}

/** The grants a worker plugin would get (without the framework's own read paths). */
function inspectGrants(manifest: Manifest): { deno: unknown; nodeExecArgv: string[] } {
  const g = deriveGrants({
    pluginDir: manifest.dir,
    network: manifest.permissions.network,
    filesystem: manifest.permissions.filesystem,
    env: manifest.permissions.env,
  });
  return { deno: g.deno, nodeExecArgv: g.nodeExecArgv };
}

/**
 * Runs the CLI.
 *
 * @param argv arguments after the program name
 * @param io output streams and environment (default: the process's)
 * @returns the exit code: 0 success, 1 failure, 2 usage error
 * @example
 * ```ts
 * process.exitCode = await main(["verify", "./plugins/resizer", "--json"]);
 * ```
 */
export async function main(argv: string[], io: CliIo = process): Promise<number> {
  const [command, ...rest] = argv;
  const json = rest.includes("--json");
  const ctx = makeContext(io, json);
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    io.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const commands: Record<string, (ctx: CliContext, args: string[]) => Promise<number>> = {
    keygen,
    sign,
    verify,
    hash,
    inspect,
    trust: trustCommand,
  };
  const run = commands[command];
  if (run === undefined) {
    io.stderr.write(`error: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (command !== "trust" && (rest.includes("--help") || rest.includes("-h"))) {
    io.stdout.write(HELP[command] ?? USAGE);
    return 0;
  }
  try {
    return await run(ctx, rest);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`error: ${error.message}\n${HELP[command] ?? ""}`);
      return 2;
    }
    const e = error as { code?: string; message?: string; hint?: string };
    if (json) {
      io.stdout.write(
        `${JSON.stringify({ error: { code: e.code, message: e.message } }, null, 2)}\n`,
      );
    }
    io.stderr.write(`error: ${e.message ?? String(error)}${e.code ? ` (${e.code})` : ""}\n`);
    if (error instanceof PluginError) io.stderr.write(`hint: ${error.hint}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// Entry guard: runs only when this file is the program (node/bun/deno run lib/cli.ts), never on import.
if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
