/**
 * Many plugins in one host vs as many raw workers / raw children, in the same run: sequential and
 * concurrent load time (`Promise.all` of `host.load` under default options: the load queue admits
 * `loadConcurrency` = 8 at once; the raw baselines start all at once), host RSS per plugin, and one
 * `ping` to every plugin at once at the largest N. Worker tier at N = 50/100/200/400, process tier
 * (Linux) at N = 10/25/50. The raw baselines are `node:worker_threads` workers echoing over a
 * MessageChannel and child processes of the same runtime echoing over stdin/stdout. Failed loads
 * are counted and listed by code with their first message.
 *
 * Each stage (raw or bulkhead, sequential or concurrent, per N) runs in a fresh process of this
 * runtime (bench/_scale_stage.ts): in one process, a stage reuses the pages the previous one freed,
 * which made the second of two equal stages look 2.5x leaner. RSS is the stage's
 * `process.memoryUsage().rss` growth over the N starts (after a full GC) divided by N; the process
 * tier's children are not in it.
 *
 * Run: node bench/scale.bench.ts | bun bench/scale.bench.ts |
 *      deno run -A --unstable-worker-options --no-prompt bench/scale.bench.ts
 * Options: --max=<N> (largest N), --tiers=worker,process, --policy=<preset> (the host's `policy`
 * option instead of the defaults, with its security warnings counted instead of printed:
 * `development` lets Bun and Deno run worker-tier plugins unenforced, which the defaults refuse);
 * BENCH_QUICK=1 runs N = 50 and 10 only.
 * @module
 */

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { makeRoot, removeRoot, type Tier, writePlugins } from "./_scale_plugins.ts";
import type { Failure, Stage, StageResult } from "./_scale_stage.ts";
import type { TrustPresetName } from "../mod.ts";

const runtime = process.versions.deno ? "deno" : process.versions.bun ? "bun" : "node";
const SIZES: Record<Tier, number[]> = { worker: [50, 100, 200, 400], process: [10, 25, 50] };
const MIB = 1024 * 1024;
/** A stage that printed its result must be gone by then, or it did not exit by itself. */
const EXIT_GRACE_MS = 15_000;
const STAGE_TIMEOUT_MS = 30 * 60_000;
const stageEntry = fileURLToPath(new URL("./_scale_stage.ts", import.meta.url));

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { max: { type: "string" }, tiers: { type: "string" }, policy: { type: "string" } },
  strict: true,
});
const max = values.max === undefined ? Infinity : Number(values.max);
if ((!Number.isInteger(max) && max !== Infinity) || max < 1) {
  throw new RangeError(
    `Cannot run scale.bench: --max must be a positive integer, got "${values.max}"`,
  );
}
const tiers = (values.tiers ?? "worker,process").split(",") as Tier[];
for (const t of tiers) {
  if (!Object.hasOwn(SIZES, t)) {
    throw new RangeError(`Cannot run scale.bench: unknown tier "${t}" in --tiers`);
  }
}
const policy = values.policy as TrustPresetName | undefined;
if (policy !== undefined && !["development", "standard", "strict"].includes(policy)) {
  throw new RangeError(`Cannot run scale.bench: unknown --policy "${policy}"`);
}
const quick = process.env.BENCH_QUICK === "1";

function sizesOf(tier: Tier): number[] {
  const all = quick ? SIZES[tier].slice(0, 1) : SIZES[tier];
  const fit = all.filter((n) => n <= max);
  return fit.length > 0 ? fit : [max];
}

interface Row {
  label: string;
  raw: number;
  bulkhead: number;
  /** Failures as "raw/bulkhead". */
  failed: string;
  /** False when either side started nothing: its figure measures no plugin. */
  hasRatio: boolean;
}

const rows: Row[] = [];
/** One line per stage and error code: count, code, first message. */
const notes: string[] = [];

function noteFailures(stage: string, failures: Failure[]): void {
  const byCode = new Map<string, { count: number; message: string }>();
  for (const { code, message } of failures) {
    const seen = byCode.get(code);
    if (seen !== undefined) seen.count++;
    else byCode.set(code, { count: 1, message });
  }
  for (const [code, { count, message }] of byCode) {
    notes.push(`${stage}: ${count} x ${code}: ${message}`);
  }
}

/**
 * Runs one stage in a fresh process of this runtime and reads the JSON line it prints.
 *
 * @returns the stage's result; NaN figures and an `ERR_STAGE_EXIT` failure when it printed none
 */
function runStage(stage: Stage): Promise<StageResult> {
  const flags = runtime === "deno" ? ["run", "-A", "--unstable-worker-options", "--no-prompt"] : [];
  const child = spawn(process.execPath, [...flags, stageEntry, JSON.stringify(stage)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (s: string) => (out += s));
  return new Promise((resolve, reject) => {
    let grace: ReturnType<typeof setTimeout> | undefined;
    const timer = setTimeout(() => child.kill("SIGKILL"), STAGE_TIMEOUT_MS);
    child.stdout.on("data", () => {
      if (grace === undefined && out.includes("\n")) {
        grace = setTimeout(() => {
          notes.push(`${label(stage)}: the stage did not exit by itself; killed`);
          child.kill("SIGKILL");
        }, EXIT_GRACE_MS);
      }
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(grace);
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line !== undefined) resolve(JSON.parse(line) as StageResult);
      else {
        // A stage that died still yields a row (NaN) and a note, so the other stages are reported.
        const failure = { code: "ERR_STAGE_EXIT", message: `exited with ${code ?? signal}` };
        resolve({
          startMs: NaN,
          securityWarnings: 0,
          rssBytes: NaN,
          started: 0,
          failures: [failure],
        });
      }
    });
  });
}

function label(stage: Stage): string {
  const mode = stage.concurrent ? "concurrent" : "sequential";
  return `${stage.tier} ${String(stage.dirs.length).padStart(3)} ${stage.side} ${mode}`;
}

/**
 * The policy of a stage: --policy when given; else, for the worker tier on Bun and Deno (which
 * auto isolation refuses: those workers do not enforce the manifest), the development preset,
 * which runs them unenforced with a warning, so the worker tier's cost is still measured there.
 */
function stagePolicy(tier: Tier): TrustPresetName | undefined {
  if (policy !== undefined) return policy;
  return tier === "worker" && process.versions.node !== undefined &&
      (process.versions.bun !== undefined || process.versions.deno !== undefined)
    ? "development"
    : undefined;
}

async function measure(tier: Tier, dirs: string[], isTop: boolean): Promise<void> {
  const n = dirs.length;
  const tag = `${tier} ${String(n).padStart(3)}`;
  const preset = stagePolicy(tier);
  const run = async (side: Stage["side"], concurrent: boolean) => {
    const stage: Stage = {
      tier,
      side,
      concurrent,
      dirs,
      ping: concurrent && isTop,
      ...(preset === undefined ? {} : { policy: preset }),
    };
    process.stderr.write(`scale.bench: ${label(stage)}\n`);
    const r = await runStage(stage);
    noteFailures(`${label(stage)} start`, r.failures);
    if (r.ping !== undefined) noteFailures(`${label(stage)} ping`, r.ping.failures);
    if (r.securityWarnings > 0) {
      notes.push(`${label(stage)}: ${r.securityWarnings} security warnings (unenforced loads)`);
    }
    return r;
  };
  const rawSeq = await run("raw", false);
  const seq = await run("bulkhead", false);
  const rawConc = await run("raw", true);
  const conc = await run("bulkhead", true);
  const failed = (a: StageResult, b: StageResult) => `${a.failures.length}/${b.failures.length}`;
  const both = (a: StageResult, b: StageResult) => a.started > 0 && b.started > 0;
  rows.push(
    {
      label: `${tag} load sequential (ms)`,
      raw: rawSeq.startMs,
      bulkhead: seq.startMs,
      failed: failed(rawSeq, seq),
      hasRatio: both(rawSeq, seq),
    },
    {
      label: `${tag} load concurrent (ms)`,
      raw: rawConc.startMs,
      bulkhead: conc.startMs,
      failed: failed(rawConc, conc),
      hasRatio: both(rawConc, conc),
    },
    {
      label: `${tag} RSS per plugin (MiB)`,
      raw: rawSeq.rssBytes / n / MIB,
      bulkhead: seq.rssBytes / n / MIB,
      failed: failed(rawSeq, seq),
      hasRatio: both(rawSeq, seq),
    },
  );
  if (rawConc.ping !== undefined && conc.ping !== undefined) {
    rows.push({
      label: `${tag} ping all (ms)`,
      raw: rawConc.ping.ms,
      bulkhead: conc.ping.ms,
      // Unanswered of N: a plugin that did not load does not answer either.
      failed: `${n - rawConc.ping.answered}/${n - conc.ping.answered}`,
      hasRatio: both(rawConc, conc),
    });
    notes.push(
      `${tag} ping all: answered raw ${rawConc.ping.answered}/${n}, ` +
        `bulkhead ${conc.ping.answered}/${n}`,
    );
  }
}

const root = makeRoot();
const t0 = performance.now();
try {
  for (const tier of tiers) {
    if (tier === "process" && process.platform !== "linux") {
      notes.push(`process tier skipped: "${process.platform}" has no sandbox`);
      continue;
    }
    const sizes = sizesOf(tier);
    const dirs = writePlugins(root, { tier, n: Math.max(...sizes) });
    for (const n of sizes) await measure(tier, dirs.slice(0, n), n === sizes[sizes.length - 1]);
  }
} finally {
  removeRoot(root);
}

console.log(
  `\nscale.bench on ${runtime} ${
    process.versions.deno ?? process.versions.bun ?? process.versions.node
  }, ${policy === undefined ? "default host options" : `policy "${policy}"`} (${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s)`,
);
const line = (cells: string[]) =>
  console.log(
    `${cells[0]?.padEnd(32)} ${cells[1]?.padStart(9)} ${cells[2]?.padStart(11)} ${
      cells[3]?.padStart(8)
    }   ${cells[4]}`,
  );
line(["measurement", "raw", "bulkhead", "ratio", "failed raw/bulkhead"]);
for (const { label, raw, bulkhead, failed, hasRatio } of rows) {
  // An RSS growth can be <= 0 (the stage returned more pages than its starts took): no ratio then.
  const ratio = hasRatio && raw > 0 && bulkhead >= 0 ? `${(bulkhead / raw).toFixed(2)}x` : "n/a";
  line([label, raw.toFixed(2), bulkhead.toFixed(2), ratio, failed]);
}
for (const note of notes) console.log(note);
