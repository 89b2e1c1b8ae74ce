/**
 * Derives grant sets from a plugin's declared requirements, starting from nothing.
 *
 * Pure policy: no runtime APIs, no I/O. The inputs are absolute, already-validated paths; the
 * outputs are what each runtime needs to enforce them: Deno worker permissions, Node 26 worker
 * `execArgv` flags, and the network allow-list the host-side fetch broker checks.
 *
 * @example
 * ```ts
 * import { deriveGrants } from "./grants.ts";
 * const g = deriveGrants({
 *   pluginDir: "/srv/plugins/resizer",
 *   network: ["api.example.com"],
 *   filesystem: { read: ["/srv/plugins/resizer/data"], write: [] },
 *   env: ["API_KEY"],
 * });
 * g.deno.net; // ["api.example.com"]
 * ```
 * @module
 */

import { type HostPattern, parseHostPattern } from "./host_pattern.ts";

/** What a plugin declared, with every path absolute. */
export interface PermissionRequirements {
  /** Absolute path of the plugin's package directory (always readable: its code lives there). */
  pluginDir: string;
  /** `"none"`, `"full"`, or a list of host patterns. */
  network: "none" | "full" | readonly string[];
  /** Absolute paths the plugin may read and write. */
  filesystem: { read: readonly string[]; write: readonly string[] };
  /** Environment variable names the plugin may read. */
  env: readonly string[];
}

/** Options for {@link deriveGrants}. */
export interface DeriveOptions {
  /**
   * Absolute paths of the framework's own worker code that the plugin's thread must be able to
   * read to start (read-only, public code). Never plugin-controlled.
   */
  frameworkRead?: readonly string[];
}

/** Deno `Worker` `deno.permissions`: every key explicit, nothing inherited. */
export interface DenoPermissions {
  /** Readable paths: the plugin directory, framework code and declared reads. */
  read: string[] | false;
  /** Writable paths, or `false` when none are declared. */
  write: string[] | false;
  /** Host patterns for a list grant, `true` for full network, `false` for none. */
  net: string[] | boolean;
  /** Readable environment variable names, or `false` when none are declared. */
  env: string[] | false;
  /** Subprocesses: always denied. */
  run: false;
  /** Foreign function interface: always denied. */
  ffi: false;
  /** System information APIs (`Deno.hostname`, `Deno.osRelease`, ...): always denied. */
  sys: false;
  /** Dynamic imports from remote hosts: always denied. */
  import: false;
}

/** How network access is granted. */
export interface NetworkGrant {
  /** `none`: no network; `full`: any host; `list`: only the patterns, through the fetch broker. */
  mode: "none" | "full" | "list";
  /** Parsed patterns when `mode` is `list`. */
  patterns: HostPattern[];
}

/** Everything the host needs to start a plugin with its declared permissions and no more. */
export interface Grants {
  /** Permissions for the Deno worker that holds the plugin. */
  deno: DenoPermissions;
  /** `execArgv` for a Node 26 `worker_threads` worker. */
  nodeExecArgv: string[];
  /** Paths the plugin may read (plugin dir, framework code, declared reads). */
  read: string[];
  /** Paths the plugin may write. */
  write: string[];
  /** Environment variable names passed to the plugin. */
  env: string[];
  /** Network grant for the broker and for runtimes with host lists. */
  network: NetworkGrant;
}

function unique(list: readonly string[]): string[] {
  return [...new Set(list)];
}

/**
 * Derives the grant sets for a plugin.
 *
 * Never emits `--allow-worker`, `--allow-addons`, `--allow-child-process` or `--allow-wasi` for
 * Node (a worker holding `--allow-worker` can start a child worker with more permissions), and
 * never grants Deno `run`, `ffi`, `sys` or `import`.
 *
 * @param req the plugin's requirements (absolute paths)
 * @param options framework paths the plugin's thread needs to start
 * @returns the grants
 * @throws {TypeError} when a path is not absolute or a host pattern is malformed (the manifest
 * parser reports these with field paths first)
 * @example
 * ```ts
 * deriveGrants({ pluginDir: "/p", network: "none", filesystem: { read: [], write: [] }, env: [] })
 *   .nodeExecArgv; // ["--permission", "--allow-fs-read=/p"]
 * ```
 */
export function deriveGrants(req: PermissionRequirements, options: DeriveOptions = {}): Grants {
  const all = [req.pluginDir, ...req.filesystem.read, ...req.filesystem.write];
  for (const path of [...all, ...(options.frameworkRead ?? [])]) {
    if (!path.startsWith("/") && !/^[A-Za-z]:[\\/]/.test(path)) {
      throw new TypeError(`Cannot derive grants: path "${path}" is not absolute`);
    }
  }
  const read = unique([req.pluginDir, ...(options.frameworkRead ?? []), ...req.filesystem.read]);
  const write = unique([...req.filesystem.write]);
  const env = unique([...req.env]);
  let network: NetworkGrant;
  if (req.network === "none") network = { mode: "none", patterns: [] };
  else if (req.network === "full") network = { mode: "full", patterns: [] };
  else network = { mode: "list", patterns: req.network.map((p) => parseHostPattern(p)) };

  const deno: DenoPermissions = {
    read,
    write: write.length > 0 ? write : false,
    net: network.mode === "full"
      ? true
      : network.mode === "list"
      ? network.patterns.map((p) => p.source)
      : false,
    env: env.length > 0 ? env : false,
    run: false,
    ffi: false,
    sys: false,
    import: false,
  };
  const nodeExecArgv = ["--permission"];
  for (const p of read) nodeExecArgv.push(`--allow-fs-read=${p}`);
  for (const p of write) nodeExecArgv.push(`--allow-fs-write=${p}`);
  if (network.mode === "full") nodeExecArgv.push("--allow-net");
  return { deno, nodeExecArgv, read, write, env, network };
}
