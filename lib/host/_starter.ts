/**
 * How a plugin gets started: read and judge the package under the policy, apply limits, pick the
 * tier (worker, process, native) and start an instance. Private helper of the host.
 * @module
 */

import { relative, sep } from "node:path";
import { PluginError } from "../errors.ts";
import type { Manifest } from "../manifest.ts";
import type { Logger } from "../logger.ts";
import type { HostOptions } from "./options.ts";
import { HOST_API_VERSION } from "./options.ts";
import type { PluginRecord } from "../plugin.ts";
import type { Denial } from "../broker/context.ts";
import type {
  CallLimits,
  InstanceCallbacks,
  InstanceFailure,
  PluginBudgets,
  PluginInstance,
} from "../tiers/types.ts";
import { checkEngine } from "../dependencies.ts";
import type { ViolationType } from "../violations.ts";
import type { AuditLog } from "../audit.ts";
import { checkLimits, tightenLimits } from "../limits.ts";
import { PERMISSION_AREAS, startWorkerInstance } from "../tiers/worker.ts";
import { type PreparedPackage, preparePackage } from "./_package.ts";
import { platformKey, startNativeInstance } from "../tiers/native.ts";
import type { PluginEntry } from "./_entry.ts";
import type { TrustPolicy } from "../trust/policy.ts";
import { createTrustStore, type TrustStore } from "../trust/trust_store.ts";
import { openTrustList, type TrustListFile } from "../trust/trust_file.ts";
import { recordVersion } from "../trust/trust_list.ts";
import { assertAllowed } from "../trust/evaluate.ts";
import type { EnforcementArea } from "../../permissions/enforcement.ts";
import { loadAdapter } from "../runtime/detect.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";

/** What a started instance reports back to the host. */
export interface StarterHost {
  onDenied(denial: Denial): void;
  violation(entry: PluginEntry, v: { type: ViolationType; used: number; limit: number }): boolean;
  registerHook(entry: PluginEntry, hook: string): void;
  onFailure(entry: PluginEntry, instance: PluginInstance, failure: InstanceFailure): Promise<void>;
}

/** Shared state the starter reads from the host. */
export interface StarterState {
  options: HostOptions;
  policy: TrustPolicy;
  store: Map<string, unknown>;
  logger: Logger;
  audit: AuditLog | undefined;
}

/** Starts plugin instances for the host. */
export class Starter {
  #options: HostOptions;
  #policy: TrustPolicy;
  #store: Map<string, unknown>;
  #logger: Logger;
  #audit: AuditLog | undefined;
  #host: StarterHost;
  #adapter: Promise<RuntimeAdapter> | undefined;
  #trustStore: TrustStore | undefined;
  #trustFile: TrustListFile | undefined;

  /**
   * @param state host options, policy, store, logger, audit log
   * @param host callbacks into the host
   */
  constructor(state: StarterState, host: StarterHost) {
    this.#options = state.options;
    this.#policy = state.policy;
    this.#store = state.store;
    this.#logger = state.logger;
    this.#audit = state.audit;
    this.#host = host;
  }

  /** The adapter of the current runtime (loaded once). */
  getAdapter(): Promise<RuntimeAdapter> {
    this.#adapter ??= loadAdapter();
    return this.#adapter;
  }

  async #getTrustStore(): Promise<TrustStore> {
    if (this.#trustStore !== undefined) return this.#trustStore;
    const t = this.#options.trust ?? {};
    if (t.listPath !== undefined) {
      if (t.secret === undefined) {
        throw new PluginError("ERR_TRUST_LIST", "Cannot open the trust list: no secret given", {
          hint: "Pass trust.secret ({ passphrase } or { key })",
        });
      }
      this.#trustFile = await openTrustList(t.listPath, t.secret, { create: true });
    }
    this.#trustStore = createTrustStore({
      ...(this.#trustFile ? { list: this.#trustFile.list } : {}),
      ...(t.pinnedKeys ? { pinnedKeys: t.pinnedKeys } : {}),
    });
    return this.#trustStore;
  }

  /**
   * The manifest with its limits checked against `maxLimits` and tightened by the policy.
   *
   * @param manifest declared manifest
   * @returns the manifest with effective limits
   * @throws {PluginError} ERR_LIMITS when a limit exceeds the host bound
   */
  effectiveLimits(manifest: Manifest): Manifest {
    const declared = manifest.limits;
    if (this.#options.maxLimits !== undefined) {
      checkLimits(declared, this.#options.maxLimits, manifest.name);
    }
    const t = this.#policy.tightenLimits;
    return t === undefined ? manifest : { ...manifest, limits: tightenLimits(declared, t) };
  }

  /** @returns the enforcement areas the host's options and policy require */
  requiredAreas(): EnforcementArea[] {
    const r = this.#options.requireEnforcement;
    if (Array.isArray(r)) return r;
    if (r === true || this.#policy.requireEnforcement) return [...PERMISSION_AREAS];
    return [];
  }

  /**
   * Reads and judges a plugin package; records digest, size and trust on the entry's record.
   *
   * @param entry the plugin's entry
   * @returns the prepared package (allowed to load)
   * @throws {PluginError} ERR_UNTRUSTED, ERR_SIGNATURE_INVALID, ERR_DOWNGRADE, ERR_ENGINE,
   * ERR_MANIFEST_INVALID
   */
  async prepare(entry: PluginEntry): Promise<PreparedPackage> {
    const prepared = await preparePackage(entry.dir, {
      policy: this.#policy,
      store: await this.#getTrustStore(),
    });
    const d = prepared.decision;
    const { record } = entry;
    record.digest = prepared.digest;
    record.size = prepared.size;
    record.modifiedAt = prepared.modifiedAt;
    record.trust = { state: d.state, reason: d.reason, keyId: d.keyId };
    this.#audit?.write("trust", prepared.manifest.name, {
      state: d.state,
      allowed: d.allowed,
      reason: d.reason,
      keyId: d.keyId,
      digest: prepared.digest,
      version: prepared.manifest.version,
    });
    for (const w of d.warnings) this.#logger.warn(w, { plugin: prepared.manifest.name });
    if (!d.allowed) {
      await prepared.cleanup();
      assertAllowed(d, prepared.manifest.name);
    }
    if (prepared.manifest.engine !== undefined) {
      checkEngine(prepared.manifest.engine, HOST_API_VERSION, { plugin: prepared.manifest.name });
    }
    return prepared;
  }

  /**
   * Starts an instance in the plugin's tier (native child, process tier, or worker).
   *
   * @param entry the plugin's entry
   * @param prepared the verified package
   * @returns the ready instance
   */
  async startInstance(entry: PluginEntry, prepared: PreparedPackage): Promise<PluginInstance> {
    if (prepared.codeManifest.native !== undefined) return this.#startNative(entry, prepared);
    if (this.#isolation(prepared.codeManifest) === "process") {
      return this.#startProcess(entry, prepared);
    }
    const adapter = await this.getAdapter();
    const { instance, enforcement } = await startWorkerInstance({
      manifest: this.effectiveLimits(prepared.codeManifest),
      adapter,
      store: this.#store,
      logger: this.#logger,
      requireAreas: this.requiredAreas(),
      ...this.#timeouts(),
      heapLimit: this.#options.denoHeapLimit !== false,
      ...this.#instanceCallbacks(entry),
    });
    entry.record.enforcement = enforcement;
    return instance;
  }

  /** The host's load and shutdown timeouts, as every tier takes them. */
  #timeouts(): {
    loadTimeoutMs: number;
    shutdownTimeoutMs: number;
    calls: CallLimits;
    budgets: PluginBudgets;
  } {
    const { maxInFlight, maxQueued } = this.#options;
    return {
      loadTimeoutMs: this.#options.loadTimeoutMs ?? 10_000,
      shutdownTimeoutMs: this.#options.shutdownTimeoutMs ?? 2000,
      calls: {
        ...(maxInFlight !== undefined ? { maxInFlight } : {}),
        ...(maxQueued !== undefined ? { maxQueued } : {}),
      },
      budgets: this.#options.budgets ?? {},
    };
  }

  /** What every tier reports back to the host about a new instance of `entry`. */
  #instanceCallbacks(entry: PluginEntry): InstanceCallbacks {
    entry.hookPriorities = new Map();
    return {
      onDenied: (d) => this.#host.onDenied(d),
      onLimit: (l) => void this.#host.violation(entry, l),
      onHook: (inst, hook, priority) => {
        if (priority >= 0) entry.hookPriorities.set(hook, priority);
        if (entry.plugin?.instance === inst) this.#host.registerHook(entry, hook);
      },
      onFailure: (inst, failure) => void this.#host.onFailure(entry, inst, failure),
    };
  }

  /** What the child tiers (process, native) take besides the manifest and the code. */
  #childOptions(entry: PluginEntry, adapter: RuntimeAdapter) {
    return {
      runtime: adapter.name,
      store: this.#store,
      logger: this.#logger,
      requireSandbox: this.requiredAreas().length > 0,
      ...this.#timeouts(),
      ...this.#instanceCallbacks(entry),
    };
  }

  /**
   * The tier a JS plugin runs in: the manifest's `isolation`, else the policy's (`strict` prefers
   * `process`, used where the kernel can enforce it: Linux).
   */
  #isolation(manifest: Manifest): "worker" | "process" {
    if (manifest.isolation !== undefined) return manifest.isolation;
    return this.#policy.isolation === "process" && process.platform === "linux"
      ? "process"
      : "worker";
  }

  async #startProcess(entry: PluginEntry, prepared: PreparedPackage): Promise<PluginInstance> {
    const adapter = await this.getAdapter();
    const { startProcessInstance } = await import("../tiers/process.ts");
    const { instance, enforcement } = await startProcessInstance({
      manifest: this.effectiveLimits(prepared.codeManifest),
      privateCopy: prepared.privateCopy,
      ...this.#childOptions(entry, adapter),
    });
    entry.record.enforcement = enforcement;
    return instance;
  }

  async #startNative(entry: PluginEntry, prepared: PreparedPackage): Promise<PluginInstance> {
    const manifest = this.effectiveLimits(prepared.manifest);
    const name = manifest.name;
    const key = platformKey();
    const libraryPath = manifest.native?.[key];
    if (libraryPath === undefined) {
      throw new PluginError(
        "ERR_RUNTIME_UNSUPPORTED",
        `Cannot load native plugin "${name}": it has no library for "${key}"`,
        {
          hint: `Add "${key}" to "native" in plugin.json`,
          plugin: name,
        },
      );
    }
    const library = prepared.files.get(relative(manifest.dir, libraryPath).split(sep).join("/"));
    if (library === undefined) {
      throw new PluginError(
        "ERR_NATIVE_LOAD",
        `Cannot load native plugin "${name}": "${libraryPath}" is not in the package`,
        {
          hint: "Put the library inside the plugin directory",
          plugin: name,
        },
      );
    }
    const adapter = await this.getAdapter();
    const { instance, enforcement } = await startNativeInstance({
      manifest,
      library,
      libraryPath,
      ...this.#childOptions(entry, adapter),
    });
    entry.record.enforcement = enforcement;
    return instance;
  }

  /**
   * Records the version of a trusted plugin as the highest seen (rollback protection).
   *
   * @param record the plugin's record
   * @returns once the trust list is saved
   */
  async recordTrustedVersion(record: PluginRecord): Promise<void> {
    if (this.#trustFile === undefined || record.trust?.state !== "trusted") return;
    const next = recordVersion(this.#trustFile.list, record.manifest.name, record.manifest.version);
    if (next === this.#trustFile.list) return;
    await this.#trustFile.save(next);
    this.#trustStore = undefined;
  }
}
