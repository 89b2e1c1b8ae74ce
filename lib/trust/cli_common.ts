/**
 * What the `bulkhead` commands share: the per-run context, the usage error (exit code 2), strict
 * argument parsing, the manifest of a package read from its verified bytes, the check of a
 * package directory named on the command line, file-system failures in words, and how an error
 * is printed (issues as a list, the hint, `--json`). Used by
 * `lib/cli.ts` and `cli_trust.ts` (so not private to this folder, which would forbid `lib/cli.ts`
 * to import it), and not part of the trust API: `mod.ts` does not export it.
 *
 * @example
 * ```ts
 * import { parseCommand, requireOne } from "./cli_common.ts";
 * const { values, positionals } = parseCommand(args, { key: { type: "string" } });
 * const dir = requireOne(positionals, "package directory");
 * ```
 * @module
 */

import { stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { PluginError } from "../errors.ts";
import { type Manifest, parseManifest } from "../manifest.ts";
import type { PackageSnapshot } from "./package_snapshot.ts";
import type { TrustListFile } from "./trust_file.ts";

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
  /** Tells the user what is happening (`note: …` on stderr), e.g. before a slow step. */
  note(text: string): void;
  /**
   * Opens the trust list; undefined when `create` is false and the default list was never
   * created (a default list that existed and is gone fails with ERR_TRUST_LIST).
   */
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

/**
 * A file-system failure in words, for messages: never a bare errno.
 *
 * @param error what `node:fs` threw
 * @returns e.g. "it does not exist", "permission denied", "the disk is full"
 */
export function fsState(error: unknown): string {
  const code = (error as { code?: string } | null)?.code;
  const states: Record<string, string> = {
    ENOENT: "it does not exist",
    ENOTDIR: "a part of its path is not a directory",
    EISDIR: "it is a directory",
    EACCES: "permission denied",
    EPERM: "permission denied",
    EROFS: "the file system is read-only",
    ENOSPC: "the disk is full",
    EDQUOT: "the disk quota is exhausted",
    EEXIST: "it already exists",
  };
  return states[code ?? ""] ?? `it cannot be accessed (${code ?? (error as Error)?.message})`;
}

/**
 * Checks that a package directory named on the command line exists and is a directory, so the
 * user hears that rather than what reading a package says about links and special files.
 *
 * @param dir the directory
 * @returns when it is a directory
 * @throws {PluginError} ERR_MANIFEST_INVALID when it is missing, unreadable or not a directory
 */
export async function checkPackageDir(dir: string): Promise<void> {
  const hint = "Pass the plugin's directory, the one that holds plugin.json";
  let isDir: boolean;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch (cause) {
    throw new PluginError(
      "ERR_MANIFEST_INVALID",
      `Cannot read package "${dir}": ${fsState(cause)}`,
      {
        hint,
        cause,
      },
    );
  }
  if (!isDir) {
    throw new PluginError("ERR_MANIFEST_INVALID", `Cannot read package "${dir}": it is a file`, {
      hint: `${hint} (\`bulkhead hash <file>\` digests a single file)`,
    });
  }
}

/** Option definitions for {@link parseCommand}, as `node:util` `parseArgs` takes them. */
export type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; multiple?: boolean; short?: string }
>;

const COMMON = { json: { type: "boolean" }, help: { type: "boolean", short: "h" } } as const;

/**
 * Parses a command's arguments strictly; `--json` and `--help` are always allowed.
 *
 * @param args arguments after the command name
 * @param options the command's options
 * @returns option values and positionals
 * @throws {UsageError} on an unknown option or a missing value
 */
export function parseCommand(args: string[], options: OptionSpec): {
  values: Record<string, unknown>;
  positionals: string[];
} {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...COMMON, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Record<string, unknown>, positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * The single positional argument.
 *
 * @param positionals positionals from {@link parseCommand}
 * @param what what it is, for the usage error
 * @returns it
 * @throws {UsageError} when there are none or several
 */
export function requireOne(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return positionals[0]!;
}

interface ReportedError {
  code: string | undefined;
  /** The code a plugin put on an error it threw (kept apart from `code`, a host decision). */
  pluginCode?: string;
  message: string;
  hint: string | undefined;
  issues: { path: string; message: string }[];
}

/** What an error says, in the CLI's words: a system error never shows as a bare errno. */
function describeError(error: unknown, command: string): ReportedError {
  if (error instanceof PluginError) {
    const { code, message, hint, issues } = error;
    const pluginCode = (error as { pluginCode?: unknown }).pluginCode;
    return typeof pluginCode === "string"
      ? { code, pluginCode, message, hint, issues }
      : { code, message, hint, issues };
  }
  const e = error as { code?: unknown; syscall?: unknown; path?: unknown; message?: unknown };
  if (typeof e?.syscall === "string" && typeof e.code === "string") {
    const what = typeof e.path === "string" ? ` "${e.path}"` : "";
    return {
      code: "ERR_IO",
      message: `Cannot ${e.syscall}${what} for \`bulkhead ${command}\`: ${fsState(error)}`,
      hint: "Check the path, its permissions and the free disk space",
      issues: [],
    };
  }
  const message = typeof e?.message === "string" ? e.message : String(error);
  const code = typeof e?.code === "string" ? e.code : undefined;
  return { code, message, hint: undefined, issues: [] };
}

/**
 * Prints an error of a command: `error: <message> (<code>)`, each issue on its own line, then
 * `hint: …`; with `json` also `{ "error": { code, message, hint, issues } }` on stdout.
 *
 * @param io the streams
 * @param error what the command threw
 * @param options the command's name, `--json`
 */
export function reportError(
  io: CliContext["io"],
  error: unknown,
  options: { command: string; json: boolean },
): void {
  const e = describeError(error, options.command);
  if (options.json) {
    const body = {
      ...(e.code === undefined ? {} : { code: e.code }),
      ...(e.pluginCode === undefined ? {} : { pluginCode: e.pluginCode }),
      message: e.message,
      ...(e.hint === undefined ? {} : { hint: e.hint }),
      ...(e.issues.length === 0 ? {} : { issues: e.issues }),
    };
    io.stdout.write(`${JSON.stringify({ error: body }, null, 2)}\n`);
  }
  // The message joins every issue into one sentence; a person reads them better as a list, under
  // the message's "Cannot <action>" part.
  const cut = e.message.indexOf(": ");
  const n = e.issues.length;
  const headline = n === 0 || cut < 0
    ? e.message
    : `${e.message.slice(0, cut)}: ${n} problem${n === 1 ? "" : "s"}`;
  const codes = [e.code, e.pluginCode].filter((c) => c !== undefined).join(": ");
  const lines = [`error: ${headline}${codes ? ` (${codes})` : ""}`];
  for (const issue of e.issues) lines.push(`  - ${issue.path || "(whole file)"}: ${issue.message}`);
  if (e.hint !== undefined) lines.push(`hint: ${e.hint}`);
  io.stderr.write(`${lines.join("\n")}\n`);
}
