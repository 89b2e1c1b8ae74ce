/**
 * Trust policies: what a host requires before it loads a plugin.
 *
 * | preset        | signature        | downgrade | requireEnforcement | isolation | limits     |
 * | ------------- | ---------------- | --------- | ------------------ | --------- | ---------- |
 * | `development` | optional (warns) | allowed   | false              | worker    | as is      |
 * | `standard`    | trusted key      | refused   | false              | worker    | as is      |
 * | `strict`      | trusted key      | refused   | true               | process   | `"strict"` |
 *
 * `strict` also caps packages at 64 MiB and 2,000 files (others: 256 MiB, 10,000).
 *
 * A custom policy is an object of overrides on top of a preset (`extends`, default `standard`).
 *
 * {@link resolvePinnedKeys} checks the host's `trust.pinnedKeys` the same way, for the place the
 * host is created: each key in the one text form of a `.pub` file
 * (`bulkhead-ed25519:<key id>:<base64>`) or as 64 hex characters.
 *
 * @example
 * ```ts
 * import { resolvePolicy } from "./policy.ts";
 * resolvePolicy("strict").requireEnforcement; // true
 * resolvePolicy({ extends: "standard", allowDowngrade: true }).allowDowngrade; // true
 * ```
 * @module
 */

import type { TightenPolicy } from "../limits.ts";
import { parsePublicKey, PUBLIC_KEY_PREFIX } from "./keys.ts";

/** Names of the built-in presets. */
export type TrustPresetName = "development" | "standard" | "strict";

/** Package size caps: {@link readPackage} refuses larger packages. */
export interface PackageCaps {
  /** Largest package the host reads, bytes. */
  maxPackageBytes: number;
  /** Most files in a package. */
  maxPackageFiles: number;
}

/** A fully resolved policy. */
export interface TrustPolicy {
  /** The preset this policy is, or `"custom"` when overrides were applied. */
  name: TrustPresetName | "custom";
  /**
   * Require a valid signature from a trusted key (or an approving list entry). When false,
   * unsigned plugins and plugins signed by an unknown key load with a warning; a signature that
   * does not verify, a revoked key or digest, and a refused downgrade still block.
   */
  requireSignature: boolean;
  /** Accept a version lower than the highest one seen. */
  allowDowngrade: boolean;
  /** Refuse to run when the runtime cannot enforce the plugin's permissions. */
  requireEnforcement: boolean;
  /** Preferred isolation for JS plugins. */
  isolation: "worker" | "process";
  /** How the host tightens plugin limits (`tightenLimits` in `lib/limits.ts`); undefined: as is. */
  tightenLimits: TightenPolicy | undefined;
  /** Package size caps, passed to `readPackage`. */
  package: PackageCaps;
}

/** A custom policy: a preset plus overrides. */
export interface TrustPolicyInput {
  /** Preset to start from (default `"standard"`). */
  extends?: TrustPresetName;
  /** See {@link TrustPolicy.requireSignature}. */
  requireSignature?: boolean;
  /** See {@link TrustPolicy.allowDowngrade}. */
  allowDowngrade?: boolean;
  /** See {@link TrustPolicy.requireEnforcement}. */
  requireEnforcement?: boolean;
  /** See {@link TrustPolicy.isolation}. */
  isolation?: "worker" | "process";
  /** See {@link TrustPolicy.tightenLimits}; `1` leaves limits unchanged. */
  tightenLimits?: TightenPolicy;
  /** See {@link TrustPolicy.package}. */
  package?: Partial<PackageCaps>;
}

const DEFAULT_CAPS: PackageCaps = { maxPackageBytes: 256 * 1024 * 1024, maxPackageFiles: 10_000 };
const STRICT_CAPS: PackageCaps = { maxPackageBytes: 64 * 1024 * 1024, maxPackageFiles: 2_000 };

function preset(name: TrustPresetName): TrustPolicy {
  switch (name) {
    case "development":
      return {
        name,
        requireSignature: false,
        allowDowngrade: true,
        requireEnforcement: false,
        isolation: "worker",
        tightenLimits: undefined,
        package: { ...DEFAULT_CAPS },
      };
    case "standard":
      return {
        name,
        requireSignature: true,
        allowDowngrade: false,
        requireEnforcement: false,
        isolation: "worker",
        tightenLimits: undefined,
        package: { ...DEFAULT_CAPS },
      };
    case "strict":
      return {
        name,
        requireSignature: true,
        allowDowngrade: false,
        requireEnforcement: true,
        isolation: "process",
        tightenLimits: "strict",
        package: { ...STRICT_CAPS },
      };
  }
}

/** The names of the presets, in order of strictness. */
export const TRUST_PRESETS: readonly TrustPresetName[] = ["development", "standard", "strict"];

function isPreset(value: unknown): value is TrustPresetName {
  return typeof value === "string" && (TRUST_PRESETS as readonly string[]).includes(value);
}

function checkBool(input: TrustPolicyInput, key: keyof TrustPolicyInput): void {
  if (input[key] !== undefined && typeof input[key] !== "boolean") {
    throw new TypeError(`Cannot resolve policy: "${key}" must be a boolean`);
  }
}

/**
 * Resolves a preset name or a custom object into a full policy.
 *
 * @param input preset name, custom overrides, or undefined for `standard`
 * @returns a new policy object
 * @throws {TypeError} when the preset name is unknown or a field has the wrong type
 * @throws {RangeError} when a limit is not a positive number
 * @example
 * ```ts
 * resolvePolicy("development").requireSignature; // false
 * ```
 */
export function resolvePolicy(input: TrustPresetName | TrustPolicyInput = "standard"): TrustPolicy {
  if (typeof input === "string") {
    if (!isPreset(input)) throw new TypeError(`Cannot resolve policy: unknown preset "${input}"`);
    return preset(input);
  }
  if (typeof input !== "object" || input === null) {
    throw new TypeError("Cannot resolve policy: expected a preset name or an object");
  }
  const base = input.extends ?? "standard";
  if (!isPreset(base)) throw new TypeError(`Cannot resolve policy: unknown preset "${base}"`);
  for (const key of ["requireSignature", "allowDowngrade", "requireEnforcement"]) {
    checkBool(input, key as keyof TrustPolicyInput);
  }
  if (
    input.isolation !== undefined && input.isolation !== "worker" && input.isolation !== "process"
  ) {
    throw new TypeError('Cannot resolve policy: "isolation" must be "worker" or "process"');
  }
  const t = input.tightenLimits;
  const tightenOk = t === undefined || t === "strict" ||
    (typeof t === "number" && t > 0 && t <= 1) || (typeof t === "object" && t !== null);
  if (!tightenOk) {
    throw new TypeError(
      'Cannot resolve policy: "tightenLimits" must be a factor, "strict" or limits',
    );
  }
  const policy = preset(base);
  const caps = { ...policy.package };
  for (const [key, value] of Object.entries(input.package ?? {})) {
    if (!Object.hasOwn(caps, key)) {
      throw new TypeError(`Cannot resolve policy: unknown package cap "${key}"`);
    }
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(
        `Cannot resolve policy: package cap "${key}" must be a positive integer`,
      );
    }
    caps[key as keyof PackageCaps] = value;
  }
  return {
    name: "custom",
    requireSignature: input.requireSignature ?? policy.requireSignature,
    allowDowngrade: input.allowDowngrade ?? policy.allowDowngrade,
    requireEnforcement: input.requireEnforcement ?? policy.requireEnforcement,
    isolation: input.isolation ?? policy.isolation,
    tightenLimits: input.tightenLimits ?? policy.tightenLimits,
    package: caps,
  };
}

const KEY_FORM = `"${PUBLIC_KEY_PREFIX}:<key id>:<base64>" (the line of a .pub file from ` +
  "`bulkhead keygen`) or 64 hex characters";

/**
 * Validates the host option `trust.pinnedKeys` when the host is created, so a key in the wrong
 * form fails there, saying which form is expected, instead of failing every later load.
 *
 * @param keys the option's value: undefined, or an array of keys as text or 32 bytes
 * @returns the 32-byte keys, in order
 * @throws {TypeError} when it is not an array, or a key is not a valid public key in an accepted
 *   form (a path to a `.pub` file is refused too: pass the file's contents)
 * @example
 * ```ts
 * resolvePinnedKeys([readFileSync("release.key.pub", "utf8")]).length; // 1
 * ```
 */
export function resolvePinnedKeys(keys: unknown): Uint8Array[] {
  if (keys === undefined) return [];
  if (!Array.isArray(keys)) {
    throw new TypeError(
      `Cannot resolve trust options: "pinnedKeys" must be an array of ${KEY_FORM}`,
    );
  }
  return keys.map((key: unknown, i) => {
    if (typeof key !== "string" && !(key instanceof Uint8Array)) {
      throw new TypeError(`Cannot resolve trust options: "pinnedKeys.${i}" must be ${KEY_FORM}`);
    }
    try {
      return parsePublicKey(key);
    } catch (error) {
      const text = typeof key === "string" ? key.trim() : "";
      const why = (error as Error).message.replace(/^Cannot use public key: /, "");
      const path = /^(\.{1,2}|~)?\/|\.pub$/.test(text)
        ? '; it looks like a path: pass the file\'s contents (readFileSync(path, "utf8"))'
        : "";
      throw new TypeError(
        `Cannot resolve trust options: "pinnedKeys.${i}" is not ${KEY_FORM} (${why})${path}`,
        { cause: error },
      );
    }
  });
}
