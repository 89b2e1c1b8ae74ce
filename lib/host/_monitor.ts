/**
 * One monitoring pass over the loaded plugins: worker thread CPU from `/proc/self/task` (threads
 * the adapter named), and each instance's `$stats` (self-reported heap for workers, procfs for
 * child processes). Private helper of the host.
 * @module
 */

import { listThreads } from "../thread_cpu.ts";
import { type Entry, hasRecord, type PluginEntry } from "./_entry.ts";
import type { ViolationType } from "../violations.ts";
import { KIND_STATS } from "../protocol/messages.ts";
import type { PluginMetricsSnapshot } from "../metrics.ts";
import { renderPrometheus } from "../prometheus.ts";
import { detectRuntime, runtimeVersion } from "../runtime/detect.ts";

type OnViolation = (
  entry: PluginEntry,
  v: { type: ViolationType; used: number; limit: number },
) => void;

/**
 * Samples the entries every `intervalMs` until stopped.
 *
 * @param entries the host's entries, read at each pass
 * @param onViolation called when a sample exceeds a limit
 * @param intervalMs sampling interval
 * @returns `stop()`, and `sample()` for one pass now
 */
export function monitorEntries(
  entries: () => Iterable<Entry>,
  onViolation: OnViolation,
  intervalMs: number,
): { stop(): void; sample(): Promise<void> } {
  const sample = () => sampleEntries(entries(), onViolation);
  const timer = setInterval(() => void sample(), intervalMs);
  return { stop: () => clearInterval(timer), sample };
}

/**
 * Prometheus text of the plugins' metrics and the host's own.
 *
 * @param metrics every plugin's snapshot
 * @param plugins how many are loaded
 * @param started when the host was created (ms since the epoch)
 * @returns the exposition text
 */
export function hostMetricsText(
  metrics: PluginMetricsSnapshot[],
  plugins: number,
  started: number,
): string {
  const mem = process.memoryUsage();
  return renderPrometheus(metrics, {
    plugins,
    uptimeSeconds: (Date.now() - started) / 1000,
    residentBytes: mem.rss,
    heapBytes: mem.heapUsed,
    runtime: { name: detectRuntime(), version: runtimeVersion() },
  });
}

interface Stats {
  heapUsed?: number;
  rssBytes?: number;
  cpuMs?: number;
  threads?: number;
  fds?: number;
  connections?: number;
}

/**
 * Samples every active plugin once and updates its metrics.
 *
 * @param entries the host's entries
 * @param onViolation called when a sample exceeds a limit (heap above `heapMb`)
 * @returns once every plugin answered or timed out (1 s)
 */
export async function sampleEntries(
  entries: Iterable<Entry>,
  onViolation: OnViolation,
): Promise<void> {
  const threads = new Map(listThreads().map((t) => [t.name, t]));
  await Promise.all([...entries].map(async (entry) => {
    const instance = entry.plugin?.instance;
    if (!hasRecord(entry) || instance === undefined || entry.record.lifecycle.state !== "active") {
      return;
    }
    const { record } = entry;
    const thread = instance.threadName === undefined ? undefined : threads.get(instance.threadName);
    if (thread !== undefined) record.metrics.setGauges({ cpuTimeMs: thread.cpuMs, threadCount: 1 });
    let s: Stats;
    try {
      s = await instance.send(KIND_STATS, "stats", undefined, 1000) as Stats;
    } catch {
      return; // a busy plugin skips this sample: stats never count against a plugin
    }
    const heap = s?.heapUsed ?? s?.rssBytes;
    record.metrics.setGauges({
      ...(heap !== undefined ? { heapBytes: heap } : {}),
      ...(s?.cpuMs !== undefined ? { cpuTimeMs: s.cpuMs } : {}),
      ...(s?.threads !== undefined ? { threadCount: s.threads } : {}),
      ...(s?.fds !== undefined ? { fdCount: s.fds } : {}),
      ...(s?.connections !== undefined ? { connectionCount: s.connections } : {}),
    });
    const limit = record.manifest.limits.heapMb * 1024 * 1024;
    if (s?.heapUsed !== undefined && s.heapUsed > limit) {
      onViolation(entry, { type: "heap", used: s.heapUsed, limit });
    }
  }));
}
