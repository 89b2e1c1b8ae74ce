// Shared set-up of the process-tier tests: a manifest for the fixture and a started instance.
import { join } from "node:path";
import { parseManifest } from "../../lib/manifest.ts";
import { SILENT_LOGGER } from "../../lib/logger.ts";
import type { Logger } from "../../lib/logger.ts";
import type { Denial } from "../../lib/broker/context.ts";
import type { InstanceFailure, PluginInstance } from "../../lib/tiers/types.ts";
import type { Enforcement } from "../../permissions/enforcement.ts";
import { startProcessInstance } from "../../lib/tiers/process.ts";
import { fixtures, runtime } from "../_helpers.ts";

/** What a started fixture recorded. */
export interface Started {
  instance: PluginInstance;
  enforcement: Enforcement;
  denials: Denial[];
  failures: InstanceFailure[];
  hooks: string[];
  logs: string[];
}

/** Starts test/fixtures/process/mod.ts (or `dir`) in the process tier. */
export async function startFixture(
  manifest: Record<string, unknown>,
  options: { dir?: string; store?: Map<string, unknown> } = {},
): Promise<Started> {
  const dir = options.dir ?? join(fixtures, "process");
  const parsed = parseManifest({ version: "1.0.0", entry: "./mod.ts", ...manifest }, dir);
  const out: Omit<Started, "instance" | "enforcement"> = {
    denials: [],
    failures: [],
    hooks: [],
    logs: [],
  };
  const logger: Logger = { ...SILENT_LOGGER, warn: (m: string) => out.logs.push(m) };
  const { instance, enforcement } = await startProcessInstance({
    manifest: parsed,
    runtime,
    store: options.store ?? new Map(),
    logger,
    requireSandbox: true,
    onDenied: (d) => out.denials.push(d),
    onLimit: () => {},
    onHook: (_i, name, priority) => out.hooks.push(`${name}:${priority}`),
    onFailure: (_i, f) => out.failures.push(f),
    loadTimeoutMs: 15_000,
  });
  return { instance, enforcement, ...out };
}
