/**
 * Which tier a JS plugin runs in, and whether it may run with restrictions nobody enforces.
 * Private helper of the starter.
 *
 * A manifest *restricts* an area when it grants less than everything in it. Permissions start
 * from nothing, so nearly every plugin restricts every permission area:
 * - `filesystem`: unless its write grant holds `/` (a write grant is readable too: everything);
 * - `network`: unless it declares `"full"`;
 * - `env`: always (a manifest names variables; none grants the whole environment);
 * - `subprocess`, `ffi`, `signals`: always (never granted to a JS plugin).
 *
 * Limits (`memory`, `cpu`) and the host's process state (`process`) are not permissions: they
 * are reported in `info.enforcement` and count here only when `requireEnforcement` lists them.
 *
 * Isolation `"auto"` (no `isolation` in the manifest or the policy) takes the cheapest tier
 * whose report enforces every checked area (restricted or required): the worker tier when
 * `describeEnforcement` says so for this runtime, else the process tier when
 * `describeProcessTier` does for the namespaces the launcher can create on this machine (Landlock
 * and seccomp are applied in the child, and its report is checked again after the start), else
 * the load is refused. An explicit tier is used as asked; what it leaves unenforced is refused,
 * unless the host allows unenforced plugins (`allowUnenforced`, or the `development` policy):
 * then every such load is warned about.
 * @module
 */

import { statSync } from "node:fs";
import { dirname } from "node:path";
import { PluginError } from "../errors.ts";
import type { Manifest } from "../manifest.ts";
import type { HostOptions } from "./options.ts";
import {
  describeEnforcement,
  type Enforcement,
  type EnforcementArea,
  type RuntimeName,
  unenforcedAreas,
} from "../../permissions/enforcement.ts";
import { describeProcessTier } from "../../permissions/child_enforcement.ts";
import { PERMISSION_AREAS } from "../tiers/worker.ts";

/** A JS plugin's tier. */
export type JsTier = "worker" | "process";

/** What {@link chooseIsolation} decides. */
export interface IsolationChoice {
  /** The tier to start. */
  tier: JsTier;
  /** The areas the started instance's report must enforce (else refused, or warned about). */
  checked: EnforcementArea[];
  /** Process tier: refuse to start when namespaces or Landlock are missing. */
  requireSandbox: boolean;
}

/** The process tier's report as this machine would give it (undefined: no such tier here). */
export interface ProcessForecast {
  report: Enforcement | undefined;
  /** Why the sandbox is unavailable or incomplete; empty when nothing is missing. */
  reason: string;
}

/** What {@link chooseIsolation} needs. */
export interface IsolationInput {
  /** The effective manifest. */
  manifest: Manifest;
  runtime: RuntimeName;
  /** Deno: whether the worker tier runs with a heap limit (`denoHeapLimit`). */
  heapLimit: boolean;
  /** The manifest's tier, else the policy's; undefined: auto. */
  explicit: JsTier | undefined;
  /** Where `explicit` came from, for messages: `plugin.json` or `the policy`. */
  explicitFrom: string;
  /** Areas `requireEnforcement` names: never run unenforced. */
  required: readonly EnforcementArea[];
  /** Run with unenforced areas (warned) instead of refusing. */
  allowUnenforced: boolean;
  /** The process tier's report on this machine (probes the sandbox; called only when needed). */
  forecastProcess: () => Promise<ProcessForecast>;
}

const WAYS_OUT = "or pass allowUnenforced: true to PluginHost to run it unenforced (warned)";

/**
 * Whether the host runs plugins with restricted areas unenforced, warning about each load:
 * `allowUnenforced: true`, or the `development` policy named explicitly (as a preset or as the
 * base of a custom policy; the implicit default is not).
 *
 * @param options the host's options
 * @returns whether unenforced plugins run
 */
export function allowsUnenforced(
  options: Pick<HostOptions, "allowUnenforced" | "policy">,
): boolean {
  const p = options.policy;
  const development = p === "development" ||
    (typeof p === "object" && p !== null && p.extends === "development");
  return options.allowUnenforced === true || development;
}

/**
 * The tier asked for explicitly: the manifest's `isolation`, else the one the host's `policy`
 * option names (its own `isolation`, else its preset's: `strict` asks for `process` where the
 * kernel can enforce it, Linux; `development` for `worker`; `standard` for none).
 *
 * @param manifest the plugin's manifest
 * @param policy the host's `policy` option as given
 * @returns the tier, or undefined for auto
 */
export function explicitIsolation(
  manifest: Manifest,
  policy: HostOptions["policy"],
): JsTier | undefined {
  if (manifest.isolation !== undefined) return manifest.isolation;
  const asked = policyIsolation(policy);
  return asked === "process" && process.platform !== "linux" ? undefined : asked;
}

function policyIsolation(policy: HostOptions["policy"]): JsTier | undefined {
  if (policy === "strict") return "process";
  if (policy === "development") return "worker";
  if (typeof policy !== "object" || policy === null) return undefined;
  return policy.isolation ?? policyIsolation(policy.extends);
}

/**
 * The permission areas a manifest restricts (see the module doc for the rule).
 *
 * @param manifest the plugin's manifest
 * @returns the restricted areas, in report order
 */
export function restrictedAreas(manifest: Manifest): EnforcementArea[] {
  const { network, filesystem } = manifest.permissions;
  return PERMISSION_AREAS.filter((area) => {
    if (area === "filesystem") return !filesystem.write.includes("/");
    if (area === "network") return network !== "full";
    return true;
  });
}

/**
 * The areas a plugin's report must enforce: those its manifest restricts, and those
 * `requireEnforcement` names.
 *
 * @param manifest the plugin's manifest
 * @param required the areas `requireEnforcement` names
 * @returns the areas, restricted ones first
 */
export function checkedAreas(
  manifest: Manifest,
  required: readonly EnforcementArea[],
): EnforcementArea[] {
  return [...new Set([...restrictedAreas(manifest), ...required])];
}

/**
 * The areas of `report` that are checked but not enforced.
 *
 * @param report an enforcement report
 * @param checked the areas that must be enforced
 * @returns the gaps, in report order
 */
export function enforcementGaps(
  report: Enforcement,
  checked: readonly EnforcementArea[],
): EnforcementArea[] {
  return unenforcedAreas(report).filter((a) => checked.includes(a));
}

/**
 * Picks the tier of a JS plugin, or refuses it.
 *
 * @param input the manifest, runtime, explicit choice and the host's stance
 * @returns the tier, the areas to check after the start, and whether the sandbox is required
 * @throws {PluginError} ERR_RUNTIME_UNSUPPORTED when no allowed tier enforces what must be
 */
export async function chooseIsolation(input: IsolationInput): Promise<IsolationChoice> {
  const { manifest, runtime, required, allowUnenforced } = input;
  const name = manifest.name;
  const checked = checkedAreas(manifest, required);
  const sandboxed = (tier: JsTier): IsolationChoice => ({
    tier,
    checked,
    requireSandbox: required.length > 0 || !allowUnenforced,
  });
  if (input.explicit === "process") return sandboxed("process");
  const worker = describeEnforcement(runtime, {
    network: manifest.permissions.network,
    heapLimit: input.heapLimit,
  });
  const gaps = enforcementGaps(worker, checked);
  const requiredGaps = gaps.filter((a) => required.includes(a));
  if (input.explicit === "worker") {
    if (requiredGaps.length > 0) {
      throw refuse(
        name,
        `${runtime} does not enforce ${requiredGaps.join(", ")} in the worker tier`,
        {
          hint: 'Set "isolation": "process" in plugin.json (the kernel enforces it on Linux), ' +
            "or relax requireEnforcement",
        },
      );
    }
    if (gaps.length > 0 && !allowUnenforced) {
      throw refuse(
        name,
        `${runtime} does not enforce ${
          gaps.join(", ")
        } in the worker tier (asked for by ${input.explicitFrom})`,
        { hint: `Set "isolation": "process" (the kernel enforces it on Linux), ${WAYS_OUT}` },
      );
    }
    return sandboxed("worker");
  }
  if (gaps.length === 0) return sandboxed("worker");
  const forecast = await input.forecastProcess();
  const processGaps = forecast.report === undefined
    ? gaps
    : enforcementGaps(forecast.report, checked);
  if (processGaps.length === 0) return sandboxed("process");
  // Neither tier enforces everything: only an explicit opt-in runs it, in the cheaper tier that
  // still enforces what requireEnforcement names.
  if (allowUnenforced) {
    if (requiredGaps.length === 0) return sandboxed("worker");
    const covers = processGaps.every((a) => !required.includes(a));
    if (forecast.report !== undefined && covers) return sandboxed("process");
  }
  const detail = forecast.reason === "" ? "" : ` (${forecast.reason})`;
  const why = forecast.report === undefined
    ? `the process tier is unavailable${detail}`
    : `the process tier would leave ${processGaps.join(", ")} unenforced here${detail}`;
  throw refuse(
    name,
    `${runtime} does not enforce ${gaps.join(", ")} in the worker tier, and ${why}`,
    {
      hint: "Run it where the process tier can enforce it (Linux with user namespaces and " +
        `Landlock, "isolation": "process"), ${
          requiredGaps.length > 0 ? "or relax requireEnforcement" : WAYS_OUT
        }`,
    },
  );
}

/**
 * Checks a started instance's report: the gaps to warn about, or a refusal.
 *
 * @param report the instance's enforcement report
 * @param o the plugin name, the checked and required areas, and the host's stance
 * @returns the checked areas the report does not enforce (empty: nothing to say)
 * @throws {PluginError} ERR_RUNTIME_UNSUPPORTED when a gap is not allowed
 */
export function verifyEnforcement(
  report: Enforcement,
  o: {
    name: string;
    checked: readonly EnforcementArea[];
    required: readonly EnforcementArea[];
    allowUnenforced: boolean;
  },
): EnforcementArea[] {
  const gaps = enforcementGaps(report, o.checked);
  const refused = o.allowUnenforced ? gaps.filter((a) => o.required.includes(a)) : gaps;
  if (refused.length === 0) return gaps;
  throw refuse(
    o.name,
    `the ${report.tier} tier started without enforcing ${refused.join(", ")} on this machine`,
    {
      hint: "Enable unprivileged user namespaces, Landlock and seccomp for the sandbox, " +
        (o.allowUnenforced ? "or relax requireEnforcement" : WAYS_OUT),
    },
  );
}

/**
 * The process tier's report as this machine would give it: the namespaces the launcher can
 * create here (probed once per uid, one short child), with Landlock and seccomp as the child
 * applies them (its own report confirms them after the start).
 *
 * @param runtime the host runtime
 * @param manifest the effective manifest (network grant, limits, and the code's directory)
 * @param privateCopy whether `manifest.dir` is the host's private copy (shared with the child)
 * @returns the forecast report, or why the tier is unavailable
 */
export async function forecastProcessTier(
  runtime: RuntimeName,
  manifest: Manifest,
  privateCopy: boolean,
): Promise<ProcessForecast> {
  if (process.platform !== "linux") {
    return { report: undefined, reason: `it needs Linux, this is "${process.platform}"` };
  }
  const hostUid = process.getuid?.() ?? -1;
  // A root host's child drops to a uid of its own, which reaches the plugin only through the
  // "other" permission bits (a private copy is shared with it by group instead).
  if (hostUid === 0 && !privateCopy && !readableByOthers(manifest.dir)) {
    return {
      report: undefined,
      reason: `its sandbox uid cannot read "${manifest.dir}": make it and its parents ` +
        "world-readable (chmod o+rx)",
    };
  }
  const [{ probeSandbox }, launcher] = await Promise.all([
    import("../../sandbox/probe.ts"),
    import("../../sandbox/launcher.ts"),
  ]);
  const sandboxUid = launcher.allocateSandboxUid();
  const probe = probeSandbox(hostUid, sandboxUid);
  const network = manifest.permissions.network;
  const { limits } = manifest;
  const { enforcement } = launcher.buildLauncher({
    runtime,
    runtimeArgv: [],
    platform: process.platform,
    hostUid,
    namespaces: probe.namespaces,
    sandboxUid,
    limits: {
      heapMb: limits.heapMb,
      cpuTimeMs: limits.cpuTimeMs,
      threads: limits.threads,
      fileDescriptors: limits.fileDescriptors,
      connections: limits.connections,
    },
    network: network === "full" ? "full" : "none",
  });
  const report = describeProcessTier(runtime, {
    landlock: true,
    seccomp: true,
    namespaces: enforcement.namespaces,
    network,
    notes: enforcement.notes,
  });
  return { report, reason: probe.reason };
}

/** Whether `dir` is listable and readable by others, and its parents searchable. */
function readableByOthers(dir: string): boolean {
  try {
    if ((statSync(dir).mode & 0o005) !== 0o005) return false;
    for (let p = dirname(dir); p !== dirname(p); p = dirname(p)) {
      if ((statSync(p).mode & 0o001) === 0) return false;
    }
    return true;
  } catch {
    return true; // unreadable to the host itself: the start reports it
  }
}

function refuse(name: string, why: string, o: { hint: string }): PluginError {
  return new PluginError("ERR_RUNTIME_UNSUPPORTED", `Cannot load plugin "${name}": ${why}`, {
    hint: o.hint,
    plugin: name,
  });
}
