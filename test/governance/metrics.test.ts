import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LatencyHistogram, PluginMetrics } from "../../lib/metrics.ts";
import { escapeLabelValue, renderPrometheus } from "../../lib/prometheus.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Parsed {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Strict parser for text format 0.0.4, as far as this exposition uses it. */
function parseExposition(text: string): Parsed {
  assert.ok(text.endsWith("\n"), "exposition ends with a newline");
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const closed = new Set<string>(); // families whose sample block ended
  let current: string | undefined;
  const familyOf = (name: string): string => {
    for (const suffix of ["_sum", "_count", ""]) {
      const base = suffix === "" ? name : name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && types.has(base)) {
        const type = types.get(base)!;
        if (suffix === "" || type === "summary" || type === "histogram") return base;
      }
    }
    assert.fail(`sample "${name}" belongs to no declared family`);
  };
  for (const line of text.slice(0, -1).split("\n")) {
    assert.notEqual(line, "", "no blank lines");
    if (line.startsWith("# HELP ")) {
      const [, name, ...rest] = line.slice(2).split(" ");
      assert.match(name!, NAME);
      assert.ok(!help.has(name!), `one HELP for ${name}`);
      assert.ok(!/\\[^\\n]/.test(rest.join(" ")), "HELP escapes only \\\\ and \\n");
      help.set(name!, rest.join(" "));
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const parts = line.slice(7).split(" ");
      assert.equal(parts.length, 2, line);
      const [name, type] = parts as [string, string];
      assert.match(name, NAME);
      assert.ok(["counter", "gauge", "summary", "histogram", "untyped"].includes(type), type);
      assert.ok(!types.has(name), `one TYPE for ${name}`);
      assert.ok(!samples.some((s) => familyOf(s.name) === name), "TYPE precedes samples");
      types.set(name, type);
      continue;
    }
    assert.ok(!line.startsWith("#"), `unknown comment ${line}`);
    // name{labels} value
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/s.exec(line);
    assert.ok(m, `malformed sample line ${JSON.stringify(line)}`);
    const [, name, rawLabels, rawValue] = m as unknown as [
      string,
      string,
      string | undefined,
      string,
    ];
    const labels: Record<string, string> = {};
    if (rawLabels !== undefined) {
      let i = 1;
      const body = rawLabels;
      while (i < body.length - 1) {
        const eq = body.indexOf("=", i);
        const key = body.slice(i, eq);
        assert.match(key, LABEL);
        assert.equal(body[eq + 1], '"', "label value quoted");
        let j = eq + 2;
        let value = "";
        for (;;) {
          const c = body[j];
          assert.ok(c !== undefined, "unterminated label value");
          assert.notEqual(c, "\n", "raw newline in label value");
          if (c === "\\") {
            const n = body[j + 1];
            assert.ok(n === "\\" || n === '"' || n === "n", `bad escape \\${n}`);
            value += n === "n" ? "\n" : n;
            j += 2;
            continue;
          }
          if (c === '"') break;
          value += c;
          j++;
        }
        assert.ok(!(key in labels), `duplicate label ${key}`);
        labels[key] = value;
        i = j + 1;
        if (body[i] === ",") i++;
        else assert.equal(i, body.length - 1, "labels end after a value");
      }
    }
    const value = rawValue === "NaN"
      ? NaN
      : rawValue === "+Inf"
      ? Infinity
      : rawValue === "-Inf"
      ? -Infinity
      : Number(rawValue);
    assert.ok(
      rawValue === "NaN" || /^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|Inf)$/.test(rawValue),
      `value ${rawValue}`,
    );
    const family = familyOf(name);
    if (current !== family) {
      assert.ok(!closed.has(family), `samples of ${family} are contiguous`);
      if (current !== undefined) closed.add(current);
      current = family;
    }
    if (types.get(family) === "summary" && name === family) {
      assert.ok("quantile" in labels, "summary sample has a quantile");
    }
    samples.push({ name, labels, value });
  }
  for (const name of types.keys()) {
    assert.ok(help.has(name), `HELP for ${name}`);
    assert.ok(name.startsWith("bulkhead_"), `prefix of ${name}`);
    if (types.get(name) === "counter") assert.ok(name.endsWith("_total"), `${name} ends _total`);
  }
  const keys = samples.map((s) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`);
  assert.equal(new Set(keys).size, keys.length, "no duplicate series");
  return { types, help, samples };
}

function find(p: Parsed, name: string, labels: Record<string, string>): number {
  const s = p.samples.find((x) =>
    x.name === name && JSON.stringify(Object.entries(x.labels).sort()) ===
      JSON.stringify(Object.entries(labels).sort())
  );
  assert.ok(s, `sample ${name} ${JSON.stringify(labels)}`);
  return s.value;
}

describe("LatencyHistogram", () => {
  it("estimates quantiles within 5 % and is exact at the extremes", () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 10_000; i++) h.record(i / 100); // 0.01 .. 100 ms uniform
    for (const [q, want] of [[0.5, 50], [0.9, 90], [0.99, 99]] as const) {
      const got = h.quantile(q);
      assert.ok(Math.abs(got - want) / want < 0.05, `q${q}: ${got} vs ${want}`);
    }
    assert.equal(h.quantile(0), 0.01);
    assert.equal(h.quantile(1), 100);
    assert.equal(h.count, 10_000);
  });

  it("handles zero, sub-microsecond and huge values, and rejects bad ones", () => {
    const h = new LatencyHistogram();
    h.record(0);
    h.record(1e-9);
    h.record(1e12);
    assert.equal(h.quantile(0), 0);
    assert.equal(h.quantile(1), 1e12);
    assert.throws(() => h.record(-1), RangeError);
    assert.throws(() => h.record(NaN), RangeError);
    assert.throws(() => h.quantile(1.5), RangeError);
    h.reset();
    assert.equal(h.quantile(0.5), 0);
  });
});

describe("PluginMetrics", () => {
  it("counts calls and errors and reports p50/p99", () => {
    const m = new PluginMetrics("p");
    for (let i = 0; i < 99; i++) m.recordCall(2);
    m.recordCall(500, "error");
    const s = m.snapshot();
    assert.equal(s.calls, 100);
    assert.equal(s.errors, 1);
    // Bucket midpoints: within 4.5 % of the true value.
    assert.ok(Math.abs(s.p50Ms - 2) / 2 < 0.045, String(s.p50Ms));
    assert.ok(Math.abs(s.p99Ms - 2) / 2 < 0.045, String(s.p99Ms));
    assert.equal(s.latencySumMs, 99 * 2 + 500);
    m.recordCall(500);
    assert.ok(m.snapshot().p99Ms > 400);
  });

  it("keeps gauges null until sampled and merges partial samples", () => {
    const m = new PluginMetrics("p");
    assert.equal(m.snapshot().heapBytes, null);
    m.setGauges({ heapBytes: 1024, threadCount: 2 });
    m.setGauges({ fdCount: 7 });
    m.setViolationCount(3);
    const s = m.snapshot();
    assert.deepEqual(
      [s.heapBytes, s.threadCount, s.fdCount, s.cpuTimeMs, s.violationCount],
      [1024, 2, 7, null, 3],
    );
    assert.throws(() => m.setGauges({ fdCount: -1 }), RangeError);
    assert.throws(() => m.setViolationCount(0.5), RangeError);
  });
});

describe("renderPrometheus()", () => {
  const weird = 'we"ird\\name\nline2';

  function example(): string {
    const a = new PluginMetrics("resizer");
    a.recordCall(4);
    a.recordCall(8, "error");
    a.setGauges({
      heapBytes: 5_000_000,
      cpuTimeMs: 1500,
      threadCount: 1,
      fdCount: 12,
      connectionCount: 2,
    });
    a.setViolationCount(2);
    const b = new PluginMetrics(weird);
    return renderPrometheus([a.snapshot(), b.snapshot()], {
      plugins: 2,
      uptimeSeconds: 12.5,
      residentBytes: 1e8,
      heapBytes: 2e7,
      runtime: { name: "node", version: "26.10.0" },
    });
  }

  it("produces valid text format 0.0.4 with declared families only", () => {
    const p = parseExposition(example());
    assert.equal(p.types.get("bulkhead_plugin_calls_total"), "counter");
    assert.equal(p.types.get("bulkhead_plugin_call_duration_seconds"), "summary");
    assert.equal(p.types.get("bulkhead_plugin_heap_bytes"), "gauge");
    assert.equal(p.types.get("bulkhead_host_info"), "gauge");
  });

  it("carries the values, in base units", () => {
    const p = parseExposition(example());
    const r = { plugin: "resizer" };
    assert.equal(find(p, "bulkhead_plugin_calls_total", r), 2);
    assert.equal(find(p, "bulkhead_plugin_call_errors_total", r), 1);
    assert.equal(find(p, "bulkhead_plugin_cpu_seconds_total", r), 1.5);
    assert.equal(find(p, "bulkhead_plugin_open_fds", r), 12);
    assert.equal(find(p, "bulkhead_plugin_connections", r), 2);
    assert.equal(find(p, "bulkhead_plugin_violations_total", r), 2);
    assert.equal(find(p, "bulkhead_plugin_call_duration_seconds_count", r), 2);
    assert.equal(find(p, "bulkhead_plugin_call_duration_seconds_sum", r), 0.012);
    const p50 = find(p, "bulkhead_plugin_call_duration_seconds", { ...r, quantile: "0.5" });
    assert.ok(p50 >= 0.004 && p50 <= 0.008, String(p50));
    assert.equal(find(p, "bulkhead_host_plugins", {}), 2);
    assert.equal(find(p, "bulkhead_host_info", { runtime: "node", version: "26.10.0" }), 1);
  });

  it("escapes label values so a hostile plugin name round-trips", () => {
    const text = example();
    const p = parseExposition(text);
    assert.equal(find(p, "bulkhead_plugin_calls_total", { plugin: weird }), 0);
    assert.ok(text.includes(`plugin="${escapeLabelValue(weird)}"`));
    assert.equal(escapeLabelValue(weird), 'we\\"ird\\\\name\\nline2');
  });

  it("exposes NaN quantiles for a plugin without calls and omits unsampled gauges", () => {
    const p = parseExposition(renderPrometheus([new PluginMetrics("idle").snapshot()]));
    const q = find(p, "bulkhead_plugin_call_duration_seconds", {
      plugin: "idle",
      quantile: "0.99",
    });
    assert.ok(Number.isNaN(q));
    assert.ok(!p.types.has("bulkhead_plugin_heap_bytes"));
    assert.ok(!p.types.has("bulkhead_host_plugins"));
  });

  it("refuses duplicate plugin names", () => {
    const s = new PluginMetrics("x").snapshot();
    assert.throws(() => renderPrometheus([s, s]), RangeError);
  });

  it("has a parser that rejects what it should (the check can fail)", () => {
    assert.throws(() => parseExposition('bulkhead_x_total{plugin="a"} 1\n'));
    assert.throws(() =>
      parseExposition(
        "# HELP bulkhead_x_total x\n# TYPE bulkhead_x_total counter\n" +
          'bulkhead_x_total{plugin="a"b"} 1\n',
      )
    );
    assert.throws(() =>
      parseExposition("# HELP bulkhead_x x\n# TYPE bulkhead_x counter\nbulkhead_x 1\n")
    );
  });
});
