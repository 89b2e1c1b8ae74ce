/**
 * Finding the real plugin pid behind the launcher chain (setpriv and prlimit exec in place;
 * `unshare --fork` and the init shell each fork once), and a cheap CPU-time read. Resource
 * samples come from the one procfs sampler, `lib/proc_sample.ts`.
 *
 * @example
 * ```ts
 * import { cpuTimeMs } from "./procfs.ts";
 * cpuTimeMs(process.pid);
 * ```
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";

/**
 * CPU time (user + system) of a process in ms, or null when it is gone. Cheaper than a full sample.
 *
 * @param pid process id
 * @returns CPU ms or null
 * @example
 * ```ts
 * cpuTimeMs(process.pid) !== null; // true on Linux
 * ```
 */
export function cpuTimeMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * Finds the descendant of `pid` whose innermost namespace pid (`NSpid:` last field) is `nsPid`.
 * Walks `/proc/<pid>/task/<tid>/children` breadth first, at most `maxDepth` levels down.
 *
 * @param pid launcher pid (the spawned process)
 * @param nsPid the pid the child reported from inside its namespace
 * @param maxDepth levels to search
 * @returns the host pid of the plugin process, or null when not found
 * @example
 * ```ts
 * findDescendant(launcherPid, 2); // the runtime under `unshare --fork` + init shell
 * ```
 */
export function findDescendant(pid: number, nsPid: number, maxDepth = 4): number | null {
  let level = [pid];
  for (let depth = 0; depth <= maxDepth && level.length > 0; depth++) {
    const next: number[] = [];
    for (const p of level) {
      if (innermostNsPid(p) === nsPid && (depth > 0 || p === nsPid)) return p;
      next.push(...childrenOf(p));
    }
    level = next;
  }
  return null;
}

/**
 * Direct children of a process (all its threads' `children` files).
 *
 * @param pid process id
 * @returns child pids; empty when the process is gone
 * @example
 * ```ts
 * childrenOf(process.pid); // [] without children
 * ```
 */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text !== "") { for (const c of text.split(" ")) out.push(Number(c)); }
    }
  } catch {
    // the process exited while we looked
  }
  return out;
}

function innermostNsPid(pid: number): number | null {
  try {
    const line = /^NSpid:\s+(.+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    const parts = line?.[1]?.trim().split(/\s+/) ?? [];
    const last = parts[parts.length - 1];
    return last === undefined ? null : Number(last);
  } catch {
    return null;
  }
}
