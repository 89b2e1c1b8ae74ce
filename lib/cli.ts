#!/usr/bin/env node
/**
 * The `bulkhead` command line: plugin skeletons and trial calls, keys, signatures, digests, the
 * trust list and package inspection.
 *
 * ```text
 * bulkhead init <dir> [--name <name>] [--force]
 * bulkhead call <dir> <method> [json-arg]... [--policy <preset>] [--isolation worker|process]
 * bulkhead keygen --out <file> [--force] [--unencrypted] [--passphrase-file <file>]
 * bulkhead sign <dir> --key <secret-key-file> [--expires <ISO date|<n>d|never>]
 * bulkhead verify <dir> [--policy <preset>] [--pin <key>]... [--allow-downgrade]
 * bulkhead hash <dir|file>
 * bulkhead trust add <dir> | --key <public key|file> [--note <text>]
 * bulkhead trust list
 * bulkhead trust remove <name>[@<version>] | --key <key id>
 * bulkhead trust revoke <key id|public key|digest> | --key <…> | --digest <hex> [--reason <text>]
 * bulkhead inspect <dir> [--pin <key>]...
 * bulkhead --version
 * ```
 *
 * Every command takes `--json` (machine-readable output, errors too: `{ "error": { code,
 * message, hint, issues } }`) and `--help`. Exit codes: 0 success, 1 failure (refused, invalid,
 * error), 2 usage error.
 *
 * A public key has one text form, the line of the `.pub` file `keygen` writes:
 * `bulkhead-ed25519:<key id>:<base64>`. `--pin`, `trust add --key` and `trust revoke` take that
 * line, the bare key as 64 hex characters, or the path of a `.pub` file. The secret key file is
 * encrypted with the passphrase from `$BULKHEAD_PASSPHRASE` or `--passphrase-file` (scrypt +
 * XChaCha20-Poly1305) unless `keygen --unencrypted`.
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

import { readFileSync, realpathSync } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { findUp } from "./find_up.ts";
import type { Manifest } from "./manifest.ts";
import { deriveGrants } from "../permissions/grants.ts";
import {
  createTrustStore,
  digestFile,
  evaluateTrust,
  parseSignatureFile,
  readPackage,
  resolvePolicy,
  TRUST_PRESETS,
  type TrustList,
  type TrustPresetName,
} from "./trust/mod.ts";
import { readPublicKey } from "./trust/key_files.ts";
import {
  checkPackageDir,
  type CliContext,
  fsState,
  manifestFromSnapshot,
  parseCommand,
  reportError,
  requireOne,
  UsageError,
} from "./trust/cli_common.ts";
import { LIST_OPTIONS, openCliList } from "./trust/cli_list.ts";
import { trustCommand } from "./trust/cli_trust.ts";
import { KEY_HELP, keygenCommand, signCommand } from "./cli_keys.ts";
import { INIT_HELP, initCommand } from "./cli_init.ts";
import { CALL_HELP, callCommand } from "./cli_call.ts";

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
  init      create a plugin skeleton (plugin.json, a typed mod.ts, a test)
  call      load a plugin under a policy and call one method; prints result and enforcement
  keygen    generate an Ed25519 signing key (.pub + secret file, encrypted by default)
  sign      sign a plugin package (writes plugin.sig)
  verify    check a package against the trust list, pinned keys and a policy
  hash      print the digest of a package directory or a single file
  trust     add | list | remove | revoke entries of the encrypted trust list
  inspect   show a package's manifest fields, digest and signature state

Options for every command: --json, --help. \`bulkhead --version\` prints the version.
Public keys: the .pub line bulkhead-ed25519:<key id>:<base64>, 64 hex characters, or a .pub path.
Trust list: --list <file> | $BULKHEAD_TRUST_LIST; key: $BULKHEAD_TRUST_PASSPHRASE or
  --list-key-file <file> | $BULKHEAD_TRUST_KEY_FILE (never on the command line)
`;

const HELP: Record<string, string> = {
  ...KEY_HELP,
  init: INIT_HELP,
  call: CALL_HELP,
  verify: "Usage: bulkhead verify <dir> [--policy development|standard|strict] [--pin <key>]...\n" +
    "                       [--allow-downgrade] [--list <file>] [--list-key-file <file>] [--json]\n" +
    "--pin takes a .pub file or its line (bulkhead-ed25519:<key id>:<base64>). Exit 0 when the\n" +
    "policy allows the package, 1 otherwise.\n",
  hash: "Usage: bulkhead hash <dir|file> [--json]\n" +
    "Package digest of a directory (SHA3-512 over the file listing) or SHA3-512 of a file.\n",
  inspect: "Usage: bulkhead inspect <dir> [--pin <key>]... [--list <file>] [--json]\n",
};

/**
 * The version of this package, from its package.json.
 *
 * @returns e.g. "0.1.0", or "unknown" when no package.json of this package is found
 */
function cliVersion(): string {
  if (!import.meta.url.startsWith("file:")) return "unknown";
  const here = dirname(fileURLToPath(import.meta.url));
  // package.json for npm and a checkout; deno.json (same version, checked by the meta tests) for JSR.
  for (const name of ["package.json", "deno.json"]) {
    const path = findUp(here, name);
    if (path === undefined) continue;
    try {
      const pkg = JSON.parse(readFileSync(path, "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "@bulkhead/core" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // unreadable or not JSON: try the next kind of file
    }
  }
  return "unknown";
}

function makeContext(io: CliIo, json: boolean): CliContext {
  const env = io.env ?? process.env;
  const note = (text: string) => io.stderr.write(`note: ${text}\n`);
  return {
    io,
    env,
    json,
    print(value, human) {
      io.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`);
    },
    note,
    openList: (values, create) => openCliList(values, { create, env, note }),
  };
}

async function judge(ctx: CliContext, values: Record<string, unknown>, dir: string) {
  await checkPackageDir(dir);
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
  const isDir = await stat(target).then(
    (s) => s.isDirectory(),
    (error) => Promise.reject(new UsageError(`"${target}": ${fsState(error)}`)),
  );
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
  // Options end at "--" (after it come arguments such as `call`'s JSON values, "-1" included).
  const end = rest.indexOf("--");
  const options = end < 0 ? rest : rest.slice(0, end);
  const json = options.includes("--json");
  const ctx = makeContext(io, json);
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    io.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-V" || command === "version") {
    const version = cliVersion();
    io.stdout.write(json ? `${JSON.stringify({ version })}\n` : `bulkhead ${version}\n`);
    return 0;
  }
  const commands: Record<string, (ctx: CliContext, args: string[]) => Promise<number>> = {
    init: initCommand,
    call: callCommand,
    keygen: keygenCommand,
    sign: signCommand,
    verify,
    hash,
    inspect,
    trust: trustCommand,
  };
  const run = Object.hasOwn(commands, command) ? commands[command] : undefined;
  if (run === undefined) {
    io.stderr.write(`error: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (command !== "trust" && (options.includes("--help") || options.includes("-h"))) {
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
    reportError(io, error, { command, json });
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
