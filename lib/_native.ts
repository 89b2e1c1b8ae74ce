/**
 * Native plugins in the host: the library's verified bytes go to a sandboxed child process
 * (`ffi/`), wrapped as a {@link PluginInstance} so `load`, `call`, lifecycle, limits and metrics
 * work as for worker plugins. `ffi/` (and koffi) is imported only here, lazily. Private helper.
 * @module
 */

import { PluginError } from "./errors.ts";
import { DrainWaiters } from "./_drain.ts";
import type { Manifest } from "./manifest.ts";
import type { Logger } from "./logger.ts";
import type { Denial } from "./context.ts";
import type { InstanceCallbacks, PluginInstance } from "./instance.ts";
import type { ReadyInfo } from "./worker/protocol.ts";
import { KIND_CALL, KIND_LIFECYCLE } from "./worker/protocol.ts";
import type { Enforcement, EnforcementEntry } from "../permissions/enforcement.ts";
import type { RuntimeName } from "../permissions/enforcement.ts";

/** The platform key of this machine, as used in a manifest's `native` map. */
export function platformKey(): string {
  return `${process.platform}-${process.arch}`;
}

/** Values of the declared environment variables that are set in the host. */
function declaredEnv(names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of names) {
    const v = process.env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** What {@link startNativeInstance} needs. */
export interface NativeStartOptions extends Pick<InstanceCallbacks, "onDenied" | "onFailure"> {
  manifest: Manifest;
  /** Verified bytes of the library for this platform. */
  library: Uint8Array;
  /** Absolute path the bytes came from (for messages). */
  libraryPath: string;
  runtime: RuntimeName;
  store: Map<string, unknown>;
  logger: Logger;
  /** Refuse to start without namespaces and Landlock. */
  requireSandbox: boolean;
}

interface NativeHandle {
  call(method: string, input?: unknown): Promise<unknown>;
  close(): Promise<void>;
  kill(): void;
  metrics():
    | { rssKb: number; cpuMs: number; threads: number; fds: number; tcpConnections: number }
    | null;
  onExit(
    listener: (
      exit: { code: number | null; signal: string | null; crashed: boolean; reason: string },
    ) => void,
  ): () => void;
  readonly enforcement: {
    sandboxed: boolean;
    filesystem: string;
    network: string;
    memory: string;
    cpu: string;
    processes: string;
    fileDescriptors: string;
    syscalls: string;
    notes: string[];
  };
}

function entry(mechanism: string, enforced: boolean, note?: string): EnforcementEntry {
  return note === undefined ? { mechanism, enforced } : { mechanism, enforced, note };
}

/**
 * Converts the sandbox's report into the host's enforcement report (tier `process`).
 *
 * @param runtime host runtime
 * @param e the launcher's report
 * @param network the manifest's network grant
 * @returns the report
 */
export function nativeEnforcement(
  runtime: RuntimeName,
  e: NativeHandle["enforcement"],
  network: Manifest["permissions"]["network"],
): Enforcement {
  const notes = e.notes.join("; ");
  return {
    runtime,
    tier: "process",
    filesystem: entry(e.filesystem, e.filesystem === "landlock"),
    network: network === "full" ? entry("none", true, "full network was declared") : entry(
      e.network,
      e.network === "netns",
      e.network === "landlock-ports" ? "TCP ports only; host names are not checked" : undefined,
    ),
    env: entry("clean-env", true, "the child gets PATH and the declared variables only"),
    subprocess: entry(
      e.processes === "rlimit" ? "rlimit+seccomp" : "none",
      e.processes === "rlimit",
    ),
    ffi: entry("process", true, "native code runs only in the sandboxed child"),
    memory: entry(e.memory, true, notes || undefined),
    cpu: entry(e.cpu, true),
  };
}

/**
 * Starts a native plugin in its child process and wraps it as an instance.
 *
 * @param options manifest, verified library bytes, host services
 * @returns the instance and its enforcement report
 * @throws {PluginError} ERR_NATIVE_LOAD, ERR_ABI, ERR_PLUGIN_INIT, ERR_SANDBOX
 */
export async function startNativeInstance(
  options: NativeStartOptions,
): Promise<{ instance: PluginInstance; enforcement: Enforcement }> {
  const { manifest } = options;
  const name = manifest.name;
  const read = new Set(manifest.permissions.context.read);
  const write = new Set(manifest.permissions.context.write);
  const deny = (what: Denial["what"], key: string): never => {
    options.onDenied({ plugin: name, what, target: key });
    throw new PluginError(
      "ERR_PERMISSION_DENIED",
      `Cannot ${
        what === "context.read" ? "read" : "write"
      } context key "${key}": plugin "${name}" did not declare it`,
      {
        hint: `Add "${key}" to permissions.context in plugin.json`,
        plugin: name,
      },
    );
  };
  const { startNativePlugin } = await import("../ffi/native_plugin.ts");
  const fs = manifest.permissions.filesystem;
  const handle = await startNativePlugin({
    name,
    libraryPath: options.libraryPath,
    libraryBytes: options.library,
    limits: { ...manifest.limits },
    permissions: {
      network: manifest.permissions.network,
      filesystem: fs.read.length + fs.write.length === 0
        ? "none"
        : { read: fs.read, write: fs.write },
    },
    context: (op, key, value) => {
      if (op === "get") {
        if (!read.has(key)) deny("context.read", key);
        return Promise.resolve(options.store.get(key));
      }
      if (!write.has(key)) deny("context.write", key);
      options.store.set(key, value);
      return Promise.resolve(undefined);
    },
    log: (level, message) => {
      const l = level === "debug" || level === "warn" || level === "error" ? level : "info";
      options.logger[l](message.slice(0, 8192), { plugin: name });
    },
    sandbox: options.requireSandbox ? true : "auto",
    env: declaredEnv(manifest.permissions.env),
    callTimeoutMs: manifest.limits.cpuTimeMs,
  }) as unknown as NativeHandle;
  const instance = new NativeInstance(name, handle, options.onFailure);
  return {
    instance,
    enforcement: nativeEnforcement(
      options.runtime,
      handle.enforcement,
      manifest.permissions.network,
    ),
  };
}

class NativeInstance implements PluginInstance {
  readonly name: string;
  readonly ready: ReadyInfo = { methods: [], hooks: [], lifecycle: [] };
  #h: NativeHandle;
  #pending = 0;
  #dead = false;
  #drained = new DrainWaiters();

  constructor(name: string, handle: NativeHandle, onFailure: NativeStartOptions["onFailure"]) {
    this.name = name;
    this.#h = handle;
    handle.onExit((exit) => {
      if (this.#dead) return;
      this.#dead = true;
      const kind = exit.reason === "timeout"
        ? "timeout"
        : exit.reason === "resource"
        ? "heap"
        : "crash";
      const error = new PluginError(
        exit.reason === "timeout"
          ? "ERR_CALL_TIMEOUT"
          : exit.reason === "resource"
          ? "ERR_RESOURCE_LIMIT"
          : "ERR_PLUGIN_CRASHED",
        `Cannot continue native plugin "${name}": its process ended (${
          exit.signal ?? `exit code ${exit.code}`
        }, ${exit.reason})`,
        { hint: "Check the plugin for crashes, hangs or resource exhaustion", plugin: name },
      );
      onFailure(this, { error, kind });
    });
  }

  get pendingCount(): number {
    return this.#pending;
  }

  get dead(): boolean {
    return this.#dead;
  }

  send(kind: number, name: string, payload: unknown, _timeoutMs: number): Promise<unknown> {
    if (kind === KIND_LIFECYCLE) {
      if (name === "$stats") {
        const m = this.#h.metrics();
        // Resident memory of the whole child (runtime included); the sandbox's own watchdog
        // enforces the limit on growth, so this is reported, not judged, by the host.
        return Promise.resolve(
          m === null ? {} : {
            rssBytes: m.rssKb * 1024,
            cpuMs: m.cpuMs,
            threads: m.threads,
            fds: m.fds,
            connections: m.tcpConnections,
          },
        );
      }
      return Promise.resolve(undefined);
    }
    if (kind !== KIND_CALL) return Promise.resolve(undefined);
    const args = payload as unknown[];
    this.#pending++;
    return this.#h.call(name, args.length === 0 ? undefined : args[0]).finally(() => {
      this.#pending--;
      if (this.#pending === 0) this.#drained.release();
    });
  }

  drain(timeoutMs: number): Promise<boolean> {
    return this.#drained.wait(() => this.#pending, timeoutMs);
  }

  async terminate(_error: PluginError): Promise<void> {
    if (this.#dead) {
      this.#h.kill();
      return;
    }
    this.#dead = true;
    await this.#h.close().catch(() => this.#h.kill());
  }
}
