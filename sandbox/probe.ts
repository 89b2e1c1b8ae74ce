/**
 * Finds out, once per process and uid, whether this machine can run the launcher's namespaces:
 * util-linux tools present and unprivileged user namespaces allowed for the sandbox uid.
 * Costs one short child (≈ 5 ms); the result is cached.
 *
 * @example
 * ```ts
 * probeSandbox(0, 65534).namespaces; // true on a kernel with user namespaces
 * ```
 * @module
 */
import { spawnSync } from "node:child_process";
import { DROP_CAPS, dropToUid, UNSHARE } from "./launcher.ts";

/** Result of {@link probeSandbox}. */
export interface SandboxProbe {
  /** `prlimit` runs (rlimits can be applied). */
  prlimit: boolean;
  /** user, pid, mount, ipc, uts and net namespaces can be created by the sandbox uid. */
  namespaces: boolean;
  /** Why something is unavailable (stderr of the failed probe). */
  reason: string;
}

const cache = new Map<string, SandboxProbe>();

/**
 * Probes the launcher tools and namespaces.
 *
 * @param hostUid uid of the host
 * @param sandboxUid uid the child drops to when the host is root
 * @returns what works
 * @example
 * ```ts
 * if (!probeSandbox(process.getuid?.() ?? -1, 65534).namespaces) console.log("no sandbox");
 * ```
 */
export function probeSandbox(hostUid: number, sandboxUid: number): SandboxProbe {
  // One unprivileged uid answers for all of them: the kernel's rules do not depend on which.
  const key = String(hostUid);
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const prefix = hostUid === 0 ? dropToUid(sandboxUid) : [];
  const prl = run([...prefix, "prlimit", "--core=0", "--", "true"]);
  const ns = run([
    ...prefix,
    ...UNSHARE,
    "--net",
    "--",
    ...DROP_CAPS,
    "true",
  ]);
  const result: SandboxProbe = {
    prlimit: prl === "",
    namespaces: ns === "",
    reason: [prl, ns].filter((s) => s !== "").join("; "),
  };
  cache.set(key, result);
  return result;
}

function run(argv: string[]): string {
  const r = spawnSync(argv[0] as string, argv.slice(1), {
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 5000,
    cwd: "/",
  });
  if (r.error !== undefined) return String(r.error.message);
  if (r.status !== 0) return `${argv[0]} exited ${r.status}: ${String(r.stderr).trim()}`;
  return "";
}
