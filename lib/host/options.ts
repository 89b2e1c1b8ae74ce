/**
 * Options of the plugin host.
 * @module
 */

import type { Logger } from "../logger.ts";
import type { Denial, PluginBudgets } from "../broker/context.ts";
import type { UnmountBehavior } from "../violations.ts";
import type { AuditSink } from "../audit.ts";
import type { Limits } from "../limits.ts";
import type { TrustPolicyInput, TrustPresetName } from "../trust/policy.ts";
import type { TrustSecret } from "../trust/trust_file.ts";
import type { EnforcementArea } from "../../permissions/enforcement.ts";

/** The host API version plugins' `engine` ranges are checked against. */
export const HOST_API_VERSION = "1.0.0";

/** Where the host finds trusted keys and the encrypted trust list. */
export interface TrustOptions {
  /** Path of the encrypted trust list (created on first save). */
  listPath?: string;
  /** Passphrase or raw 32-byte key of the list. */
  secret?: TrustSecret;
  /** Public keys trusted on top of the list: the `.pub` line (`bulkhead-ed25519:…`) or 64 hex. */
  pinnedKeys?: string[];
}

/** Options for {@link PluginHost}. */
export interface HostOptions {
  /** Directories scanned by `discover()`; each subdirectory with a plugin.json is a plugin. */
  pluginDirs?: string[];
  /** Initial context values (`config`, `logger`, `http`, `cache`, `database`, or custom keys). */
  context?: Record<string, unknown>;
  /**
   * Where host and plugin logs go. Default: discard everything except security warnings (a
   * plugin running with restrictions nobody enforces), which go to stderr.
   */
  logger?: Logger;
  /**
   * Security policy: `development` (unsigned allowed, warns), `standard` (signature from a trusted
   * key required), `strict` (signature and enforcement required, no downgrade, tighter limits), or
   * a custom object. Default: `standard` when `trust` is given, else `development`'s trust
   * rules. Isolation: `strict` asks for the process tier, a `development` policy named here for
   * the worker tier (and allows unenforced plugins, warned); otherwise, and when the manifest
   * names no `isolation`, each plugin gets the cheapest tier that enforces what its manifest
   * restricts on this runtime (`"auto"`), or is refused (ERR_RUNTIME_UNSUPPORTED).
   */
  policy?: TrustPresetName | TrustPolicyInput;
  /** Trusted keys and the encrypted trust list. */
  trust?: TrustOptions;
  /**
   * Areas that must be enforced, even with `allowUnenforced`: auto isolation picks a tier that
   * enforces them (the process tier on Linux), and a plugin no tier here can hold to them is
   * refused (ERR_RUNTIME_UNSUPPORTED). `true` means the permission areas (filesystem, network,
   * env, subprocess, ffi, signals); a list names exactly those areas (add "memory" and "cpu" to
   * require enforced limits too).
   */
  requireEnforcement?: boolean | EnforcementArea[];
  /**
   * Run plugins whose restrictions this runtime and OS cannot enforce instead of refusing them
   * (ERR_RUNTIME_UNSUPPORTED): auto isolation still prefers a tier that enforces them, and every
   * load that runs unenforced is warned about (the logger, the `unenforced` event, the audit
   * log). `requireEnforcement` still refuses the areas it names. Default false.
   */
  allowUnenforced?: boolean;
  /** Host-wide upper bounds for manifest limits: asking for more is refused with ERR_LIMITS. */
  maxLimits?: Partial<Limits>;
  /** Violation threshold and what happens when it is crossed. */
  unmount?: Partial<UnmountBehavior>;
  /** Restart a plugin after a crash or timeout until its violations cross the threshold. */
  restartOnFailure?: boolean;
  /** Security audit log: a function receiving JSON lines, or a file path (appended, mode 0600). */
  audit?: AuditSink | string;
  /**
   * Deno only. `true` (default): each plugin runs in a heap-limited `worker_threads` worker created
   * by a loader that holds its permissions (~600 ms to start on Deno 2.9: nested workers are slow).
   * `false`: each plugin runs in one restricted Web Worker (~40 ms); permissions hold the same, but
   * the heap is not limited (the report says so) and an OOM ends the host.
   */
  denoHeapLimit?: boolean;
  /** Deadline for import + `init()` (default 10,000 ms). */
  loadTimeoutMs?: number;
  /** Deadline for `shutdown()` at unload (default 2,000 ms). */
  shutdownTimeoutMs?: number;
  /**
   * Calls and hook deliveries sent to one plugin at once (default 256); more wait in order in
   * the host, and each call's deadline starts when it is sent, not while it waits.
   */
  maxInFlight?: number;
  /** Calls that may wait for one plugin (default 10,000); one more fails with `ERR_BUSY`. */
  maxQueued?: number;
  /**
   * Plugins started at once (default 8); more loads wait in order, and a load's
   * `loadTimeoutMs` starts when its start does. Lets `Promise.all` of hundreds of loads succeed.
   */
  loadConcurrency?: number;
  /**
   * What one plugin may make the host keep through `ctx`: one value's size (1 MiB), its values'
   * total (16 MiB), a log line's length (8,192) and log lines per second (100). Over a size
   * budget, `ctx.set` fails with `ERR_RESOURCE_LIMIT` and a `context` violation is recorded.
   */
  budgets?: PluginBudgets;
  /** Deadline of one hook handler (default 5,000 ms). */
  hookTimeoutMs?: number;
  /** Called with every permission the host refused. */
  onDenied?: (denial: Denial) => void;
}

/** Options for {@link PluginHost.unload}. */
export interface UnloadOptions {
  /** Also unload plugins that depend on this one (dependents first). */
  cascade?: boolean;
  /** Recorded in the lifecycle history and events. */
  reason?: string;
}
