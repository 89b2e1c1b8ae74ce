/**
 * Best-effort guard preloaded into Bun plugin workers. It is NOT a security boundary: Bun has no
 * permission system, `Bun.fetch` is non-configurable and reaches any host and any `file://` URL,
 * and `node:fs` cannot be intercepted. It only stops accidents that would hurt the host process
 * (`process.abort()` in a Bun worker kills the host, `process.kill(process.pid)` too) and plain
 * `fetch`/`Bun.spawn` use. `lib/runtime/AUDIT.md` lists what stays reachable.
 * @module
 */

import { answerOs } from "../guest/platform_answers.ts";

const denied = (what: string) => () => {
  throw Object.assign(new Error(`Cannot ${what}: not permitted for plugins`), {
    name: "PluginError",
    code: "ERR_PERMISSION_DENIED",
  });
};

function stub(target: object, key: string, value: unknown): void {
  try {
    Object.defineProperty(target, key, { value, writable: false, configurable: false });
  } catch {
    // Non-configurable in this Bun version: the enforcement report already says "not enforced".
  }
}

const proc = (globalThis as unknown as { process: Record<string, unknown> }).process;
// The same harmless node:os answers as every other tier (host name, home, users, CPUs).
const getBuiltin = proc.getBuiltinModule as (id: string) => Record<PropertyKey, unknown>;
if (typeof getBuiltin === "function") answerOs((id) => getBuiltin.call(proc, id), stub);
stub(proc, "abort", denied("abort the process"));
stub(proc, "exit", denied("exit the process"));
stub(proc, "reallyExit", denied("exit the process"));
stub(proc, "kill", denied("signal a process"));
stub(proc, "_kill", denied("signal a process"));
stub(proc, "_debugProcess", denied("signal a process"));
// A nested worker starts without this guard (preload is not inherited).
stub(globalThis, "Worker", denied("start a worker"));
const bun = (globalThis as unknown as { Bun: Record<string, unknown> }).Bun;
stub(bun, "spawn", denied("spawn a process"));
stub(bun, "spawnSync", denied("spawn a process"));
const net = (proc.env as Record<string, string | undefined>).BULKHEAD_GUARD_NET;
delete (proc.env as Record<string, string | undefined>).BULKHEAD_GUARD_NET;
if (net !== "full") stub(globalThis, "fetch", denied("fetch directly; use ctx.fetch"));
