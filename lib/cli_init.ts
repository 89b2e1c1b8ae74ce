/**
 * The `bulkhead init <dir>` command of `lib/cli.ts`: a plugin skeleton that loads as it is.
 *
 * It writes three files: `plugin.json` (with `$schema` pointing at this installation's
 * `lib/plugin.schema.json`, so editors complete and check it), a typed entry `mod.ts`, and a
 * `mod.test.ts` that runs under `node --test`, `deno test` and `bun test`. The entry imports the
 * plugin types with `import type`: erased before the plugin runs, so the plugin resolves nothing
 * at run time and reads nothing outside its own directory (a value import of `@bulkhead/core`
 * would have to be resolvable inside the plugin's sandbox).
 *
 * @example
 * ```ts
 * import { initCommand } from "./cli_init.ts";
 * const code = await initCommand(ctx, ["./plugins/greeter"]);
 * ```
 * @module
 */

import { lstat, mkdir, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { PluginError } from "./errors.ts";
import { findUp } from "./find_up.ts";
import { HOST_API_VERSION } from "./host/options.ts";
import {
  type CliContext,
  fsState,
  parseCommand,
  requireOne,
  UsageError,
} from "./trust/cli_common.ts";

/** Help of `bulkhead init`. */
export const INIT_HELP = "Usage: bulkhead init <dir> [--name <name>] [--force] [--json]\n" +
  "Creates a plugin skeleton in <dir>: plugin.json, a typed mod.ts and mod.test.ts. The name\n" +
  "defaults to the directory's name. Existing files are kept unless --force.\n" +
  "Then: bulkhead call <dir> greet '\"Ada\"'\n";

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** The `$schema` value: this installation's schema, relative to the plugin directory. */
function schemaRef(dir: string): string {
  const fallback = "https://json-schema.org/draft/2020-12/schema";
  if (!import.meta.url.startsWith("file:")) {
    return new URL("./plugin.schema.json", import.meta.url).href;
  }
  // lib/ in a checkout or on JSR, dist/lib/ in the npm package (which ships lib/plugin.schema.json).
  const schema = findUp(dirname(fileURLToPath(import.meta.url)), join("lib", "plugin.schema.json"));
  if (schema === undefined) return fallback;
  const rel = relative(dir, schema).split(sep).join("/");
  return rel.startsWith(".") ? rel : `./${rel}`;
}

function manifestText(name: string, dir: string): string {
  const major = HOST_API_VERSION.split(".")[0];
  const manifest = {
    $schema: schemaRef(dir),
    name,
    version: "0.1.0",
    description: `The ${name} plugin`,
    engine: `^${major}.0.0`,
    entry: "./mod.ts",
    permissions: { network: "none", filesystem: "none", env: [], context: { read: [], write: [] } },
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

function entryText(name: string): string {
  return `/**
 * The ${name} plugin. The host runs this module in its own worker (or sandboxed process) with
 * only what plugin.json grants, and calls \`methods\` by name:
 * \`bulkhead call . greet '"Ada"'\`.
 *
 * @module
 */

// Types only: erased before the plugin runs, so nothing is resolved at run time and the plugin
// reads nothing outside its directory. For the editor and tsc: \`npm install -D @bulkhead/core\`
// (Deno: map "@bulkhead/core/" in deno.json "imports").
import type { PluginContext, PluginDefinition } from "@bulkhead/core/plugin";

let ctx: PluginContext | undefined;

const plugin = {
  init(context: PluginContext): void {
    ctx = context;
  },
  methods: {
    /** Greets someone. */
    greet(name: string): string {
      return \`Hello, \${name}!\`;
    },
    /** Adds two numbers. */
    add(a: number, b: number): number {
      return a + b;
    },
    /** The name and version the host gave this plugin (undefined before init). */
    whoami(): { name: string; version: string } | undefined {
      return ctx === undefined ? undefined : { ...ctx.plugin };
    },
  },
} satisfies PluginDefinition;

export default plugin;
`;
}

function testText(name: string): string {
  return `// The ${name} plugin's methods, without a host: node --test, deno test or bun test.
// \`bulkhead call . greet '"Ada"'\` runs them in the sandbox the host gives the plugin.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import plugin from "./mod.ts";

describe("${name} plugin", () => {
  it("greets by name", () => {
    assert.equal(plugin.methods.greet("Ada"), "Hello, Ada!");
  });

  it("adds two numbers", () => {
    assert.equal(plugin.methods.add(2, 3), 5);
  });
});
`;
}

/**
 * Runs `bulkhead init`.
 *
 * @param ctx CLI context
 * @param args arguments after `init`
 * @returns exit code
 * @throws {UsageError} on a malformed command line or a name that is not a plugin name
 * @throws {PluginError} ERR_IO when a file exists (without --force) or cannot be written
 */
export async function initCommand(ctx: CliContext, args: string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    name: { type: "string" },
    force: { type: "boolean" },
  });
  const dir = resolve(requireOne(positionals, "plugin directory"));
  const name = typeof values.name === "string"
    ? values.name
    : basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+/, "");
  if (!NAME.test(name)) {
    throw new UsageError(
      `"${name}" is not a plugin name (lowercase letters, digits, '.', '_' or '-', at most 64, ` +
        "starting with a letter or digit): pass --name <name>",
    );
  }
  const files: [string, string][] = [
    ["plugin.json", manifestText(name, dir)],
    ["mod.ts", entryText(name)],
    ["mod.test.ts", testText(name)],
  ];
  const fail = (path: string, state: string, hint: string, cause?: unknown) =>
    new PluginError("ERR_IO", `Cannot create plugin skeleton "${path}": ${state}`, {
      hint,
      cause,
    });
  if (values.force !== true) {
    for (const [file] of files) {
      const path = join(dir, file);
      if (await lstat(path).then(() => true, () => false)) {
        throw fail(
          path,
          "it already exists",
          "Choose a new directory, or pass --force to overwrite",
        );
      }
    }
  }
  let current = dir;
  try {
    await mkdir(dir, { recursive: true });
    for (const [file, text] of files) {
      current = join(dir, file);
      await writeFile(current, text, { mode: 0o644 });
    }
  } catch (cause) {
    throw fail(current, fsState(cause), "Choose a directory you can write to", cause);
  }
  ctx.print(
    { name, dir, files: files.map(([f]) => join(dir, f)) },
    `Created plugin "${name}" in ${dir}\n` + files.map(([f]) => `  ${f}\n`).join("") +
      `Next:\n  bulkhead call ${relativeOrAbsolute(dir)} greet '"Ada"'\n` +
      `  node --test ${relativeOrAbsolute(join(dir, "mod.test.ts"))}`,
  );
  return 0;
}

function relativeOrAbsolute(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === "" ? "." : rel.startsWith("..") ? path : rel;
}
