/**
 * What the `bulkhead` commands share: the per-run context, the usage error (exit code 2), strict
 * argument parsing, and the manifest of a package read from its verified bytes. Used by
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
