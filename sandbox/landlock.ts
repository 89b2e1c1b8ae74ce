/**
 * Landlock rules for the native plugin child, applied through raw syscalls (444-446 on x86-64
 * and arm64). Used by `lib/guest/native_child.ts`: it receives the child's libc bindings, so koffi stays out
 * of anything the host imports.
 *
 * Landlock restricts the calling thread and the threads it creates later. Threads the runtime
 * started before (libuv pool, V8 platform, Bun/Deno workers) stay unrestricted (no thread sync on
 * this kernel, see FIELD_NOTES): the child therefore applies the rules before it loads the plugin
 * and then runs only synchronous code on its main thread, so plugin code never reaches them.
 *
 * @example
 * ```ts
 * // inside the child, with libc bound by koffi:
 * applyLandlock(sys, { read: ["/data"], write: [], network: "none", connectPorts: [] });
 * ```
 * @module
 */
import { statSync } from "node:fs";

/** The syscalls and helpers the rules need, bound by the caller. */
export interface LandlockSys {
  /** `syscall(nr, ...)` with pointer/size/flag arguments. */
  landlockCreateRuleset(attr: Uint8Array | null, size: number, flags: number): number;
  /** `landlock_add_rule(fd, type, attr, 0)`. */
  landlockAddRule(fd: number, type: number, attr: Uint8Array): number;
  /** `landlock_restrict_self(fd, 0)`. */
  landlockRestrictSelf(fd: number): number;
  /** `open(path, O_PATH | O_CLOEXEC)`. */
  openPath(path: string): number;
  /** `close(fd)`. */
  close(fd: number): number;
  /** `prctl(PR_SET_NO_NEW_PRIVS, 1)`. */
  setNoNewPrivs(): number;
  /** Last errno. */
  errno(): number;
}

/** What the plugin may touch. */
export interface LandlockPolicy {
  /** Absolute paths readable (files or directory trees). */
  read: string[];
  /** Absolute paths readable and writable. */
  write: string[];
  /** Absolute directories whose trees may be listed (names only, no file contents). */
  list?: string[];
  /** "none": no TCP bind/connect; "full": unrestricted; "ports": connect only to `connectPorts`. */
  network: "none" | "full" | "ports";
  /** TCP ports the plugin may connect to when `network` is "ports". */
  connectPorts: number[];
}

/** What was applied. */
export interface LandlockResult {
  /** Landlock ABI of the kernel; 0 when Landlock is unavailable. */
  abi: number;
  /** Whether the filesystem rules are in force. */
  filesystem: boolean;
  /** Whether TCP rules are in force (ABI >= 4). */
  network: boolean;
  /** Whether abstract-socket and signal scoping is in force (ABI >= 6). */
  scoped: boolean;
}

const EXECUTE = 1n << 0n;
const WRITE_FILE = 1n << 1n;
const READ_FILE = 1n << 2n;
const READ_DIR = 1n << 3n;
const MAKE_SYM = 1n << 12n;
const TRUNCATE = 1n << 14n;
const IOCTL_DEV = 1n << 15n;
const FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
const READ = EXECUTE | READ_FILE | READ_DIR;
const RULE_PATH_BENEATH = 1;
const RULE_NET_PORT = 2;
const NET_BIND_TCP = 1n << 0n;
const NET_CONNECT_TCP = 1n << 1n;
const SCOPE_ALL = 3n; // ABSTRACT_UNIX_SOCKET | SIGNAL

/**
 * Returns the kernel's Landlock ABI version, 0 when unavailable.
 *
 * @param sys bound syscalls
 * @returns ABI version
 */
export function landlockAbi(sys: LandlockSys): number {
  const v = sys.landlockCreateRuleset(null, 0, 1); // LANDLOCK_CREATE_RULESET_VERSION
  return v > 0 ? v : 0;
}

/**
 * Restricts the calling thread (and its future threads and children) to the policy.
 *
 * @param sys bound syscalls
 * @param policy paths and network rules
 * @returns what was applied (`abi: 0` when the kernel has no Landlock: nothing applied)
 * @throws {Error} when the kernel has Landlock but refuses a rule (errno in the message)
 */
export function applyLandlock(sys: LandlockSys, policy: LandlockPolicy): LandlockResult {
  const abi = landlockAbi(sys);
  if (abi === 0) return { abi, filesystem: false, network: false, scoped: false };
  let fsAll = (1n << 13n) - 1n; // ABI 1: bits 0..12
  if (abi >= 2) fsAll |= 1n << 13n; // REFER
  if (abi >= 3) fsAll |= TRUNCATE;
  if (abi >= 5) fsAll |= IOCTL_DEV;
  const net = abi >= 4 && policy.network !== "full" ? NET_BIND_TCP | NET_CONNECT_TCP : 0n;
  const scoped = abi >= 6 ? SCOPE_ALL : 0n;
  const size = abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
  const attr = new Uint8Array(24);
  const view = new DataView(attr.buffer);
  view.setBigUint64(0, fsAll, true);
  view.setBigUint64(8, net, true);
  view.setBigUint64(16, scoped, true);
  const ruleset = sys.landlockCreateRuleset(attr.subarray(0, size), size, 0);
  if (ruleset < 0) throw new Error(`landlock_create_ruleset failed: errno ${sys.errno()}`);
  try {
    const rules: Array<[string, bigint]> = [
      ...policy.read.map((p): [string, bigint] => [p, READ]),
      // No symlink creation, even in a write grant: a link planted there after another plugin's
      // load-time check would lead that plugin (Node follows links inside grants) outside.
      ...policy.write.map((p): [string, bigint] => [p, fsAll & ~MAKE_SYM]),
      ...(policy.list ?? []).map((p): [string, bigint] => [p, READ_DIR]),
      ["/dev/null", READ_FILE | WRITE_FILE],
    ];
    for (const [path, access] of rules) addPathRule(sys, ruleset, path, access & fsAll);
    if (net !== 0n && policy.network === "ports") {
      for (const port of policy.connectPorts) {
        const rule = new Uint8Array(16);
        const rv = new DataView(rule.buffer);
        rv.setBigUint64(0, NET_CONNECT_TCP, true);
        rv.setBigUint64(8, BigInt(port), true);
        if (sys.landlockAddRule(ruleset, RULE_NET_PORT, rule) < 0) {
          throw new Error(`landlock_add_rule(port ${port}) failed: errno ${sys.errno()}`);
        }
      }
    }
    sys.setNoNewPrivs();
    if (sys.landlockRestrictSelf(ruleset) < 0) {
      throw new Error(`landlock_restrict_self failed: errno ${sys.errno()}`);
    }
  } finally {
    sys.close(ruleset);
  }
  return { abi, filesystem: true, network: net !== 0n, scoped: scoped !== 0n };
}

function addPathRule(sys: LandlockSys, ruleset: number, path: string, access: bigint): void {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    return; // a grant for a missing path allows nothing
  }
  const fd = sys.openPath(path);
  if (fd < 0) throw new Error(`open("${path}") failed: errno ${sys.errno()}`);
  try {
    const rule = new Uint8Array(12); // struct landlock_path_beneath_attr is packed
    const view = new DataView(rule.buffer);
    view.setBigUint64(0, isDir ? access : access & FILE_ONLY, true);
    view.setInt32(8, fd, true);
    if (sys.landlockAddRule(ruleset, RULE_PATH_BENEATH, rule) < 0) {
      throw new Error(`landlock_add_rule("${path}") failed: errno ${sys.errno()}`);
    }
  } finally {
    sys.close(fd);
  }
}
