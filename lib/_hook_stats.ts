/**
 * Timing statistics of hooks and of each plugin's handlers. Private to lib/hooks.ts, which
 * re-exports the public types.
 *
 * @module
 */

import { PluginError } from "./errors.ts";
import { TIMED_OUT } from "./_deadlines.ts";

/** Timing of one plugin's handlers on one hook. */
export interface PluginHookStats {
  /** Handler calls. */
  calls: number;
  /** Summed duration, ms. */
  totalMs: number;
  /** Longest call, ms. */
  maxMs: number;
  /** Calls that threw or rejected (timeouts included). */
  errors: number;
  /** Calls that missed their deadline. */
  timeouts: number;
}

/** Timing of one hook: whole runs, and per plugin. */
export interface HookStats {
  /** Runs of the hook (run, runParallel, runUntil). */
  calls: number;
  /** Summed run duration, ms. */
  totalMs: number;
  /** Longest run, ms. */
  maxMs: number;
  /** Handler errors over all runs. */
  errors: number;
  /** Per plugin name. */
  plugins: Record<string, PluginHookStats>;
}

/** The live counters of one hook: its runs, and per plugin. */
export interface StatsRecord {
  readonly stats: { calls: number; totalMs: number; maxMs: number; errors: number };
  readonly plugins: Map<string, PluginHookStats>;
}

/** One registered handler, as far as its accounting goes. */
export interface AccountedEntry {
  readonly info: { readonly hook: string; readonly plugin: string };
  readonly stats: PluginHookStats;
}

/** A hook's counters, all zero. */
export function newStatsRecord(): StatsRecord {
  return { stats: { calls: 0, totalMs: 0, maxMs: 0, errors: 0 }, plugins: new Map() };
}

/** The counters of a plugin on a hook, created on first use. */
export function pluginStats(record: StatsRecord, plugin: string): PluginHookStats {
  let stats = record.plugins.get(plugin);
  if (stats === undefined) {
    stats = { calls: 0, totalMs: 0, maxMs: 0, errors: 0, timeouts: 0 };
    record.plugins.set(plugin, stats);
  }
  return stats;
}

/** Records a call in its plugin's stats and turns TIMED_OUT into ERR_CALL_TIMEOUT. */
export function account(
  entry: AccountedEntry,
  out: unknown,
  ms: number,
  timeoutMs: number,
): unknown {
  const stats = entry.stats;
  stats.calls++;
  stats.totalMs += ms;
  if (ms > stats.maxMs) stats.maxMs = ms;
  if (out === TIMED_OUT) {
    stats.timeouts++;
    out = new PluginError(
      "ERR_CALL_TIMEOUT",
      `Cannot run hook "${entry.info.hook}": plugin "${entry.info.plugin}" did not finish within ${timeoutMs} ms`,
      { plugin: entry.info.plugin, hint: "Make the handler faster, or raise timeoutMs" },
    );
  }
  if (out instanceof PluginError) stats.errors++;
  return out;
}

/** Records one whole run of a hook. */
export function finish(record: StatsRecord, ms: number, errors: number): void {
  const s = record.stats;
  s.calls++;
  s.totalMs += ms;
  if (ms > s.maxMs) s.maxMs = ms;
  s.errors += errors;
}

/** A copy of a hook's counters. */
export function snapshot(record: StatsRecord): HookStats {
  const plugins: Record<string, PluginHookStats> = {};
  for (const [name, s] of record.plugins) plugins[name] = { ...s };
  return { ...record.stats, plugins };
}

/** Sets a hook's counters, and its plugins', back to zero (in place: entries hold them). */
export function resetStats(record: StatsRecord): void {
  Object.assign(record.stats, { calls: 0, totalMs: 0, maxMs: 0, errors: 0 });
  for (const s of record.plugins.values()) {
    Object.assign(s, { calls: 0, totalMs: 0, maxMs: 0, errors: 0, timeouts: 0 });
  }
}
