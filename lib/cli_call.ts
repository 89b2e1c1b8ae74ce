/**
 * The `bulkhead call <dir> <method> [json-arg]...` command of `lib/cli.ts`: loads one plugin the
 * way a host would (trust policy, isolation tier, permissions from its manifest), calls one
 * method, and prints the result as JSON on stdout with the enforcement report and the refused
 * permissions on stderr (all in one object with `--json`). Exit code 1 when the load or the call
 * fails.
 *
 * @example
 * ```ts
 * import { callCommand } from "./cli_call.ts";
 * const code = await callCommand(ctx, ["./plugins/greeter", "greet", '"Ada"']);
 * ```
 * @module
 */

import { ENFORCEMENT_AREAS } from "../permissions/enforcement.ts";
import { resolve } from "node:path";
import type { HostOptions } from "./host/options.ts";
import type { Denial } from "./broker/context.ts";
import type { Logger } from "./logger.ts";
import type { Enforcement, EnforcementEntry } from "../permissions/enforcement.ts";
import { TRUST_PRESETS, type TrustPresetName } from "./trust/policy.ts";
import { formatPublicKey } from "./trust/keys.ts";
import { readPublicKey } from "./trust/key_files.ts";
import { cliListTrust, LIST_OPTIONS } from "./trust/cli_list.ts";
import {
  checkPackageDir,
  type CliContext,
  parseCommand,
  reportError,
  UsageError,
} from "./trust/cli_common.ts";

/** Help of `bulkhead call`. */
export const CALL_HELP =
  "Usage: bulkhead call <dir> <method> [json-arg]... [--policy development|standard|strict]\n" +
  "                     [--isolation worker|process] [--pin <key>]... [--list <file>]\n" +
  "                     [--context <json object>] [--json]\n" +
  "Loads the plugin in <dir> under the policy (default development: unsigned plugins load with\n" +
  "a warning) and calls <method> with the JSON arguments (a string needs quotes: '\"Ada\"'; put\n" +
  "-- before arguments that start with -). Prints the result as JSON, then the enforcement\n" +
  "report and the denied permissions. Exit 1 when the load or the call fails.\n";

/** JSON of any result: bigints as strings, `undefined` as null. */
function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value ?? null,
    (_key, v) => (typeof v === "bigint" ? v.toString() : v),
    indent,
  ) ?? "null";
}

function parseArgsJson(texts: string[]): unknown[] {
  return texts.map((text, i) => {
    try {
      return JSON.parse(text);
    } catch {
      throw new UsageError(
        `argument ${i + 1} (${
          JSON.stringify(text)
        }) is not JSON; a string needs quotes: '"${text}"'`,
      );
    }
  });
}

function parseContext(text: unknown): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text as string);
  } catch {
    throw new UsageError('--context must be a JSON object, e.g. \'{"config":{"units":"metric"}}\'');
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError("--context must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function cliLogger(ctx: CliContext): Logger {
  const line = (level: string) => (message: string) =>
    ctx.io.stderr.write(`log [${level}] ${message}\n`);
  return { debug() {}, info: line("info"), warn: line("warn"), error: line("error") };
}

function describeEnforcement(e: Enforcement | undefined): string {
  if (e === undefined) return "Enforcement: (no report)";
  const rows = ENFORCEMENT_AREAS.map((area) => {
    const entry = e[area] as EnforcementEntry;
    const verdict = entry.enforced ? "enforced" : "NOT enforced";
    // A note matters most where the guarantee is missing; --json carries every note.
    return `  ${area.padEnd(11)} ${verdict.padEnd(13)} ${entry.mechanism}` +
      (entry.note && !entry.enforced ? `\n${" ".repeat(14)}${entry.note}` : "");
  });
  return [`Enforcement (${e.runtime}, ${e.tier} tier):`, ...rows].join("\n");
}

function describeDenials(denials: Denial[]): string {
  if (denials.length === 0) return "Denied: nothing";
  return [`Denied (${denials.length}):`, ...denials.map((d) => `  ${d.what} ${d.target}`)].join(
    "\n",
  );
}

/** The host options for the command line: policy, tier, trust, context, logging. */
async function hostOptions(
  ctx: CliContext,
  values: Record<string, unknown>,
  denials: Denial[],
): Promise<HostOptions> {
  const preset = (values.policy as string | undefined) ?? "development";
  if (!(TRUST_PRESETS as readonly string[]).includes(preset)) {
    throw new UsageError(`--policy must be one of ${TRUST_PRESETS.join(", ")}`);
  }
  const isolation = values.isolation as string | undefined;
  if (isolation !== undefined && isolation !== "worker" && isolation !== "process") {
    throw new UsageError('--isolation must be "worker" or "process"');
  }
  const pins = (values.pin as string[] | undefined) ?? [];
  const pinnedKeys = (await Promise.all(pins.map(readPublicKey))).map(formatPublicKey);
  const list = await cliListTrust(values, { env: ctx.env, note: ctx.note });
  const context = parseContext(values.context);
  return {
    policy: isolation === undefined
      ? preset as TrustPresetName
      : { extends: preset as TrustPresetName, isolation },
    trust: { ...list, pinnedKeys },
    logger: cliLogger(ctx),
    onDenied: (d) => denials.push(d),
    ...(context === undefined ? {} : { context }),
  };
}

/**
 * Runs `bulkhead call`.
 *
 * @param ctx CLI context
 * @param args arguments after `call`
 * @returns 0 when the method returned, 1 when the load or the call failed
 * @throws {UsageError} on a malformed command line or a non-JSON argument
 * @throws {PluginError} when the plugin cannot be loaded (the codes of `PluginHost.load`)
 */
export async function callCommand(ctx: CliContext, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    ...LIST_OPTIONS,
    pin: { type: "string", multiple: true },
    policy: { type: "string" },
    isolation: { type: "string" },
    context: { type: "string" },
  });
  const [dirArg, method, ...rest] = positionals;
  if (dirArg === undefined || method === undefined) {
    throw new UsageError("expected <dir> <method> [json-arg]...");
  }
  const callArgs = parseArgsJson(rest);
  const dir = resolve(dirArg);
  await checkPackageDir(dir);
  const denials: Denial[] = [];
  // Loaded on use: the other commands never evaluate the host and its tiers.
  const { PluginHost } = await import("./host/host.ts");
  const host = new PluginHost(await hostOptions(ctx, values, denials));
  try {
    const plugin = await host.load(dir);
    let result: unknown;
    let failure: unknown;
    try {
      result = await plugin.call(method, ...callArgs);
    } catch (error) {
      failure = error;
    }
    const info = plugin.info;
    const requested = values.isolation as string | undefined;
    if (requested !== undefined && info.enforcement && info.enforcement.tier !== requested) {
      ctx.io.stderr.write(
        `warning: the plugin ran in the ${info.enforcement.tier} tier, not ${requested} ` +
          '(plugin.json "isolation" wins; the process tier needs Linux)\n',
      );
    }
    const violations = plugin.violations().map((v) => ({ ...v }));
    const report = {
      plugin: info.name,
      version: info.version,
      method,
      trust: info.trust ?? null,
      enforcement: info.enforcement ?? null,
      denials,
      violations,
    };
    if (failure !== undefined) {
      if (ctx.json) {
        // One JSON document on stdout: the error (as every command prints it) and the report.
        const errorOut: string[] = [];
        reportError(
          { stdout: { write: (t) => errorOut.push(t) }, stderr: ctx.io.stderr },
          failure,
          {
            command: "call",
            json: true,
          },
        );
        const { error } = JSON.parse(errorOut.join("")) as { error: unknown };
        ctx.io.stdout.write(`${toJson({ ...report, error }, 2)}\n`);
      } else {
        ctx.io.stderr.write(
          `${describeEnforcement(info.enforcement)}\n${describeDenials(denials)}\n`,
        );
        reportError(ctx.io, failure, { command: "call", json: false });
      }
      return 1;
    }
    if (ctx.json) {
      ctx.io.stdout.write(`${toJson({ ...report, result }, 2)}\n`);
    } else {
      ctx.io.stdout.write(`${toJson(result, 2)}\n`);
      ctx.io.stderr.write(
        `Called ${info.name}@${info.version} ${method}: ${
          info.trust?.state ?? "no trust decision"
        }` +
          `\n${describeEnforcement(info.enforcement)}\n${describeDenials(denials)}\n`,
      );
    }
    return 0;
  } finally {
    await host.close();
  }
}
