/**
 * What a plugin learns from `node:os` about the machine: the same harmless answers on every
 * runtime and tier, instead of the host's values (Bun, the process tier), a refusal (Node's worker
 * lockdown) or `NotCapable` (Deno, which never grants `sys`). Packages call these at import time
 * (worker-pool sizes, config paths, temp files), so a refusal breaks them for no protection.
 *
 * | Call                     | Answer                                                             |
 * | ------------------------ | ------------------------------------------------------------------ |
 * | `hostname()`             | `"localhost"`                                                      |
 * | `homedir()`              | `"/nonexistent"` (the home of system users without one: lookups of |
 * |                          | `~/.config/...` find nothing, writes there fail)                   |
 * | `userInfo()`             | `{ uid: -1, gid: -1, username: "nobody", homedir: "/nonexistent",  |
 * |                          | shell: null }`                                                     |
 * | `cpus()`                 | one CPU, `{ model: "unknown", speed: 0, times: all 0 }`            |
 * | `availableParallelism()` | `1`: a plugin is one thread and may not start workers              |
 * | `tmpdir()`               | `"/tmp"`; writing there still needs a filesystem grant             |
 *
 * `platform()`, `arch()`, `type()`, `machine()`, `endianness()` and `EOL` keep their real values
 * (they describe the runtime build, not the host). The rest of the system information
 * (`release`, `version`, `uptime`, `loadavg`, `totalmem`, `freemem`, `networkInterfaces`,
 * `getPriority`, `setPriority`) stays refused in the worker tier.
 *
 * Guest code: used by the worker lockdown (`lib/runtime/_lockdown.ts`) and the process-tier
 * child (`process_child.ts`). Touches no runtime global.
 * @module
 */

/** The home directory plugins see. */
export const PLUGIN_HOME = "/nonexistent";

type Fn = (...args: unknown[]) => unknown;

function cpu() {
  return { model: "unknown", speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
}

/**
 * @returns `node:os` function name -> its replacement (fresh functions on every call)
 * @example
 * ```ts
 * osAnswers().hostname?.(); // "localhost"
 * ```
 */
export function osAnswers(): Record<string, Fn> {
  return {
    availableParallelism: () => 1,
    cpus: () => [cpu()],
    homedir: () => PLUGIN_HOME,
    hostname: () => "localhost",
    tmpdir: () => "/tmp",
    userInfo: () => ({ uid: -1, gid: -1, username: "nobody", homedir: PLUGIN_HOME, shell: null }),
  };
}

/**
 * Replaces the `node:os` functions of {@link osAnswers} with `define` (the lockdown pins them),
 * then refreshes Node's named ESM exports. Deno's named exports of `node:os` are separate
 * bindings that no property change reaches: there `import { hostname } from "node:os"` still
 * gets the runtime's function (and `NotCapable` in the worker tier); the default export,
 * `require("node:os")` and `process.getBuiltinModule("node:os")` get the answers.
 *
 * @param builtin returns a built-in module (`process.getBuiltinModule`, captured)
 * @param define replaces one property
 * @example
 * ```ts
 * answerOs((id) => process.getBuiltinModule(id), (t, k, v) => Object.defineProperty(t, k, { value: v }));
 * ```
 */
export function answerOs(
  builtin: (id: string) => Record<PropertyKey, unknown>,
  define: (target: object, key: string, value: Fn) => void,
): void {
  const os = builtin("node:os");
  const answers = osAnswers();
  for (const key of Object.keys(answers)) define(os, key, answers[key] as Fn);
  const sync = builtin("node:module").syncBuiltinESMExports;
  if (typeof sync === "function") sync();
}
