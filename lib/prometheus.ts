/**
 * Prometheus text exposition (format 0.0.4) of plugin metrics snapshots, for a `/metrics`
 * endpoint.
 *
 * @example
 * ```ts
 * import { PluginMetrics } from "./metrics.ts";
 * import { renderPrometheus } from "./prometheus.ts";
 * const m = new PluginMetrics("resizer");
 * m.recordCall(3.2);
 * const text = renderPrometheus([m.snapshot()], { plugins: 1 });
 * ```
 * @module
 */

import type { PluginMetricsSnapshot } from "./metrics.ts";

/** Host-wide values for {@link renderPrometheus}; each is rendered only when given. */
export interface HostMetrics {
  /** Plugins currently loaded. */
  plugins?: number;
  /** Host uptime, seconds. */
  uptimeSeconds?: number;
  /** Host resident set, bytes. */
  residentBytes?: number;
  /** Host JS heap in use, bytes. */
  heapBytes?: number;
  /** Runtime name and version, rendered as `bulkhead_host_info{runtime,version} 1`. */
  runtime?: { name: string; version: string };
}

/**
 * Escapes a label value for the text format: backslash, double quote and line feed.
 *
 * @param value raw label value
 * @returns escaped value, without the surrounding quotes
 * @example
 * ```ts
 * escapeLabelValue('a"b'); // 'a\\"b'
 * ```
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

interface Family {
  name: string;
  type: "counter" | "gauge" | "summary";
  help: string;
  lines: string[];
}

function labels(pairs: Record<string, string>): string {
  const parts = Object.entries(pairs).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/**
 * Renders snapshots in Prometheus text exposition format 0.0.4
 * (`Content-Type: text/plain; version=0.0.4`).
 *
 * Families (each with `# HELP` and `# TYPE`, omitted when it has no samples):
 * `bulkhead_plugin_calls_total`, `bulkhead_plugin_call_errors_total`,
 * `bulkhead_plugin_call_duration_seconds` (summary: quantiles 0.5 and 0.99, `_sum`, `_count`),
 * `bulkhead_plugin_cpu_seconds_total`, `bulkhead_plugin_violations_total` (counters),
 * `bulkhead_plugin_heap_bytes`, `bulkhead_plugin_threads`, `bulkhead_plugin_open_fds`,
 * `bulkhead_plugin_connections` (gauges; a `null` gauge is left out), and the `bulkhead_host_*`
 * gauges of `host`. Every plugin sample has the label `plugin="<name>"`, escaped.
 *
 * @param snapshots one per plugin, names unique
 * @param host optional host-wide values
 * @returns the exposition text, ending in a newline
 * @throws {RangeError} when two snapshots share a name
 * @example
 * ```ts
 * renderPrometheus([new PluginMetrics("a").snapshot()]);
 * // # HELP bulkhead_plugin_calls_total Calls completed by the plugin.
 * // # TYPE bulkhead_plugin_calls_total counter
 * // bulkhead_plugin_calls_total{plugin="a"} 0
 * // ...
 * ```
 */
export function renderPrometheus(
  snapshots: readonly PluginMetricsSnapshot[],
  host?: HostMetrics,
): string {
  const seen = new Set<string>();
  for (const s of snapshots) {
    if (seen.has(s.name)) {
      throw new RangeError(`Cannot render metrics: plugin "${s.name}" appears twice`);
    }
    seen.add(s.name);
  }
  const fam = (name: string, type: Family["type"], help: string): Family => ({
    name,
    type,
    help,
    lines: [],
  });
  const calls = fam("bulkhead_plugin_calls_total", "counter", "Calls completed by the plugin.");
  const errors = fam("bulkhead_plugin_call_errors_total", "counter", "Calls that failed.");
  const duration = fam("bulkhead_plugin_call_duration_seconds", "summary", "Call latency.");
  const cpu = fam("bulkhead_plugin_cpu_seconds_total", "counter", "CPU time used by the plugin.");
  const violations = fam(
    "bulkhead_plugin_violations_total",
    "counter",
    "Resource limit violations.",
  );
  const heap = fam("bulkhead_plugin_heap_bytes", "gauge", "Heap or resident memory, bytes.");
  const threads = fam("bulkhead_plugin_threads", "gauge", "Threads of the plugin.");
  const fds = fam("bulkhead_plugin_open_fds", "gauge", "Open file descriptors.");
  const conns = fam("bulkhead_plugin_connections", "gauge", "Open network connections.");

  for (const s of snapshots) {
    const l = labels({ plugin: s.name });
    calls.lines.push(`${calls.name}${l} ${formatValue(s.calls)}`);
    errors.lines.push(`${errors.name}${l} ${formatValue(s.errors)}`);
    for (const [q, ms] of [["0.5", s.p50Ms], ["0.99", s.p99Ms]] as const) {
      // Client libraries expose NaN for an empty summary; 0 would claim a measured latency.
      const v = s.calls === 0 ? NaN : ms / 1000;
      duration.lines.push(
        `${duration.name}${labels({ plugin: s.name, quantile: q })} ${formatValue(v)}`,
      );
    }
    duration.lines.push(`${duration.name}_sum${l} ${formatValue(s.latencySumMs / 1000)}`);
    duration.lines.push(`${duration.name}_count${l} ${formatValue(s.calls)}`);
    violations.lines.push(`${violations.name}${l} ${formatValue(s.violationCount)}`);
    if (s.cpuTimeMs !== null) cpu.lines.push(`${cpu.name}${l} ${formatValue(s.cpuTimeMs / 1000)}`);
    if (s.heapBytes !== null) heap.lines.push(`${heap.name}${l} ${formatValue(s.heapBytes)}`);
    if (s.threadCount !== null) {
      threads.lines.push(`${threads.name}${l} ${formatValue(s.threadCount)}`);
    }
    if (s.fdCount !== null) fds.lines.push(`${fds.name}${l} ${formatValue(s.fdCount)}`);
    if (s.connectionCount !== null) {
      conns.lines.push(`${conns.name}${l} ${formatValue(s.connectionCount)}`);
    }
  }
  const families = [calls, errors, duration, cpu, violations, heap, threads, fds, conns];
  if (host !== undefined) {
    const hostGauge = (name: string, help: string, v: number | undefined): void => {
      if (v === undefined) return;
      const f = fam(name, "gauge", help);
      f.lines.push(`${name} ${formatValue(v)}`);
      families.push(f);
    };
    hostGauge("bulkhead_host_plugins", "Plugins loaded.", host.plugins);
    hostGauge("bulkhead_host_uptime_seconds", "Host uptime.", host.uptimeSeconds);
    hostGauge("bulkhead_host_resident_memory_bytes", "Host resident set.", host.residentBytes);
    hostGauge("bulkhead_host_heap_bytes", "Host JS heap in use.", host.heapBytes);
    if (host.runtime !== undefined) {
      const f = fam("bulkhead_host_info", "gauge", "Runtime of the host; value is always 1.");
      f.lines.push(
        `${f.name}${labels({ runtime: host.runtime.name, version: host.runtime.version })} 1`,
      );
      families.push(f);
    }
  }
  let out = "";
  for (const f of families) {
    if (f.lines.length === 0) continue;
    out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n${f.lines.join("\n")}\n`;
  }
  return out;
}
