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
import type { Enforcement, EnforcementArea } from "../../permissions/enforcement.ts";
import { assertRuntimeVersion, loadAdapter } from "../runtime/detect.ts";
import type { Emitter, HostEvents } from "../events.ts";
import {
  allowsUnenforced,
  checkedAreas,
  chooseIsolation,
  explicitIsolation,
  forecastProcessTier,
  type IsolationChoice,
  verifyEnforcement,
} from "./_isolation.ts";
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
  /** Where a load that runs unenforced is announced (`unenforced`). */
  events?: Emitter<HostEvents>;
}

/** Starts plugin instances for the host. */
export class Starter {
  #options: HostOptions;
  #policy: TrustPolicy;
  #store: Map<string, unknown>;
  #logger: Logger;
  #audit: AuditLog | undefined;
  #events: Emitter<HostEvents> | undefined;
  #host: StarterHost;
  #adapter: Promise<RuntimeAdapter> | undefined;
  #trustStore: TrustStore | undefined;
  #trustFile: TrustListFile | undefined;

  /**
   * @param state host options, policy, store, logger, audit log
   * @param host callbacks into the host
   * @throws {PluginError} ERR_RUNTIME_UNSUPPORTED when the runtime is older than bulkhead needs
   */
  constructor(state: StarterState, host: StarterHost) {
    assertRuntimeVersion();
    this.#options = state.options;
    this.#policy = state.policy;
    this.#store = state.store;
    this.#logger = state.logger;
    this.#audit = state.audit;
    this.#events = state.events;
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
   * Starts an instance in the plugin's tier (native child, process tier, or worker), then checks
   * its enforcement report: a restricted area left unenforced is refused, or with
   * `allowUnenforced` (or the `development` policy) announced as a security warning.
   *
   * @param entry the plugin's entry
   * @param prepared the verified package
   * @returns the ready instance
   * @throws {PluginError} ERR_RUNTIME_UNSUPPORTED when no allowed tier enforces the manifest
   */
  async startInstance(entry: PluginEntry, prepared: PreparedPackage): Promise<PluginInstance> {
    const required = this.requiredAreas();
    const allowUnenforced = allowsUnenforced(this.#options);
    let choice: IsolationChoice | undefined;
    let instance: PluginInstance;
    if (prepared.codeManifest.native !== undefined) {
      instance = await this.#startNative(entry, prepared, required.length > 0 || !allowUnenforced);
    } else {
      const manifest = this.effectiveLimits(prepared.codeManifest);
      const adapter = await this.getAdapter();
      choice = await chooseIsolation({
        manifest,
        runtime: adapter.name,
        heapLimit: this.#options.denoHeapLimit !== false,
        explicit: explicitIsolation(manifest, this.#options.policy),
        explicitFrom: manifest.isolation !== undefined ? "plugin.json" : "the policy",
        required,
        allowUnenforced,
        forecastProcess: () => forecastProcessTier(adapter.name, manifest, prepared.privateCopy),
      });
      instance = choice.tier === "process"
        ? await this.#startProcess(entry, prepared, choice.requireSandbox)
        : await this.#startWorker(entry, manifest, adapter);
    }
    const report = entry.record.enforcement;
    if (report === undefined) return instance;
    const name = prepared.manifest.name;
    let gaps: EnforcementArea[];
    try {
      gaps = verifyEnforcement(report, {
        name,
        checked: choice?.checked ?? checkedAreas(prepared.manifest, required),
        required,
        allowUnenforced,
      });
    } catch (error) {
      await instance.terminate(error as PluginError);
      throw error;
    }
    if (gaps.length > 0) this.#announceUnenforced(name, report, gaps);
    return instance;
  }

  async #startWorker(
    entry: PluginEntry,
    manifest: Manifest,
    adapter: RuntimeAdapter,
  ): Promise<PluginInstance> {
    const { instance, enforcement } = await startWorkerInstance({
      manifest,
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

  /** Logs (a security warning), emits `unenforced` and audits a load that runs unenforced. */
  #announceUnenforced(name: string, report: Enforcement, areas: EnforcementArea[]): void {
    const { runtime, tier } = report;
    this.#logger.warn(
      `Plugin "${name}" runs with ${areas.join(", ")} not enforced (${runtime}, ${tier} tier): ` +
        "its manifest restricts them, but this tier does not hold it to that",
      { plugin: name, security: true, runtime, tier, areas },
    );
    this.#events?.emit("unenforced", { plugin: name, runtime, tier, areas });
    this.#audit?.write("unenforced", name, { runtime, tier, areas });
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
  #childOptions(entry: PluginEntry, adapter: RuntimeAdapter, requireSandbox: boolean) {
    return {
      runtime: adapter.name,
      store: this.#store,
      logger: this.#logger,
      requireSandbox,
      ...this.#timeouts(),
      ...this.#instanceCallbacks(entry),
    };
  }

  async #startProcess(
    entry: PluginEntry,
    prepared: PreparedPackage,
    requireSandbox: boolean,
  ): Promise<PluginInstance> {
    const adapter = await this.getAdapter();
    const { startProcessInstance } = await import("../tiers/process.ts");
    const { instance, enforcement } = await startProcessInstance({
      manifest: this.effectiveLimits(prepared.codeManifest),
      privateCopy: prepared.privateCopy,
      ...this.#childOptions(entry, adapter, requireSandbox),
    });
    entry.record.enforcement = enforcement;
    return instance;
  }

  async #startNative(
    entry: PluginEntry,
    prepared: PreparedPackage,
    requireSandbox: boolean,
  ): Promise<PluginInstance> {
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
      ...this.#childOptions(entry, adapter, requireSandbox),
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
