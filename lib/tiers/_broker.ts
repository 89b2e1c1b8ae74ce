/**
 * The one context broker every tier wires the same way: the plugin's declared context keys,
 * its network grant for `ctx.fetch`, the host's store and logger, and the host callbacks, bound
 * to the instance once it exists. Also the declared environment, computed once for every tier.
 * Private to lib/tiers.
 * @module
 */

import { type ContextApi, createContextApi } from "../broker/context.ts";
import type { Manifest } from "../manifest.ts";
import type { Logger } from "../logger.ts";
import type { NetworkGrant } from "../../permissions/grants.ts";
import type { InstanceCallbacks, PluginBudgets, PluginInstance } from "./types.ts";
import { realpathSync } from "node:fs";
import { findUp } from "../find_up.ts";

/** A plugin's broker, and how to bind it to the instance that serves it. */
export interface Broker {
  /** The host-side `ctx` API (ACL-checked). */
  api: ContextApi;
  /** Binds hook registrations to the instance (they are ignored before). */
  attach(instance: PluginInstance): void;
}

/** What {@link createBroker} needs. */
export interface BrokerOptions extends InstanceCallbacks {
  manifest: Manifest;
  /** The network grant derived from the manifest. */
  network: NetworkGrant;
  store: Map<string, unknown>;
  logger: Logger;
  /** Bounds on context values and log lines. */
  budgets?: PluginBudgets;
}

/**
 * Creates the context broker of one plugin instance.
 *
 * @param o manifest, network grant, host services and callbacks
 * @returns the API and its instance binding
 */
export function createBroker(o: BrokerOptions): Broker {
  const holder: { instance?: PluginInstance } = {};
  const { manifest } = o;
  const api = createContextApi({
    plugin: manifest.name,
    read: manifest.permissions.context.read,
    write: manifest.permissions.context.write,
    network: o.network,
    connections: manifest.limits.connections,
    store: o.store,
    logger: o.logger,
    ...(o.budgets !== undefined ? { budgets: o.budgets } : {}),
    onDenied: o.onDenied,
    onLimit: o.onLimit,
    onHook: (hook, priority) => {
      if (holder.instance !== undefined) o.onHook(holder.instance, hook, priority);
    },
  });
  return { api, attach: (instance) => (holder.instance = instance) };
}

/**
 * Values of the declared environment variables that are set in the host (and nothing else).
 *
 * @param names the manifest's `permissions.env`
 * @returns name to value
 */
export function declaredEnv(names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of names) {
    const v = process.env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * The nearest package.json at or above `from` (real path), if any. Node reads it to decide the
 * module type of the plugin's `.js`/`.ts` files, so every tier grants that one file read-only: it
 * is metadata of whatever project holds the plugin.
 *
 * @param from a directory
 * @returns zero or one path
 */
export function packageJsonAbove(from: string): string[] {
  const found = findUp(from, "package.json");
  return found === undefined ? [] : [realpathSync(found)];
}
