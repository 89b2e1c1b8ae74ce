// One stage of bench/scale.bench.ts, run in a fresh process of the same runtime so that neither
// its timing nor its RSS inherits what an earlier stage left behind: N raw workers / raw children
// or N plugins in one host, started one after another or all at once, optionally followed by one
// ping to each. Prints one JSON line ({@link StageResult}) on stdout, then stops everything it
// started and exits by itself.
import { type Logger, type Plugin, PluginHost, SILENT_LOGGER } from "../mod.ts";
import { type Raw, startRawChild, startRawWorker } from "./_scale_raw.ts";
import { settledRss } from "./_scale_memory.ts";
import type { Tier } from "./_scale_plugins.ts";
import type { TrustPresetName } from "../mod.ts";

/** What {@link runStage} is asked to do (passed as JSON in argv[2]). */
export interface Stage {
  tier: Tier;
  side: "raw" | "bulkhead";
  concurrent: boolean;
  /** Plugin directories; raw stages start as many baselines. */
  dirs: string[];
  ping: boolean;
  /** The host's `policy` option; undefined: default options. */
  policy?: TrustPresetName;
}

/** A failed start or ping. */
export interface Failure {
  code: string;
  message: string;
}

/** One ping to each started plugin or baseline. */
export interface PingResult {
  ms: number;
  answered: number;
  failures: Failure[];
}

/** What a stage prints. */
export interface StageResult {
  startMs: number;
  /** Security warnings the host logged (plugins running unenforced); counted, not printed. */
  securityWarnings: number;
  /** Host RSS growth over the starts, bytes (after a full GC, settled). */
  rssBytes: number;
  started: number;
  failures: Failure[];
  ping?: PingResult;
}

const PING_TIMEOUT_MS = 30_000;

function failureOf(e: unknown): Failure {
  const err = e as { code?: unknown; name?: unknown } | undefined;
  const code = typeof err?.code === "string"
    ? err.code
    : typeof err?.name === "string"
    ? err.name
    : "?";
  return { code, message: e instanceof Error ? e.message : String(e) };
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`No answer within ${ms} ms`), { code: "TIMEOUT" })),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Runs every start one after another, or all at once; times the whole batch. */
async function startAll<T>(
  starts: (() => Promise<T>)[],
  concurrent: boolean,
): Promise<{ ms: number; ok: T[]; errors: unknown[] }> {
  const ok: T[] = [];
  const errors: unknown[] = [];
  const t0 = performance.now();
  if (concurrent) {
    for (const r of await Promise.allSettled(starts.map((s) => s()))) {
      if (r.status === "fulfilled") ok.push(r.value);
      else errors.push(r.reason);
    }
  } else {
    for (const s of starts) {
      try {
        ok.push(await s());
      } catch (e) {
        errors.push(e);
      }
    }
  }
  return { ms: performance.now() - t0, ok, errors };
}

/** One `ping` to each at once: how many answered, and how long until all settled. */
async function pingAll(pings: (() => Promise<unknown>)[]): Promise<PingResult> {
  const t0 = performance.now();
  const settled = await Promise.allSettled(pings.map((p) => within(p(), PING_TIMEOUT_MS)));
  const ms = performance.now() - t0;
  const errors = settled.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  return { ms, answered: settled.length - errors.length, failures: errors.map(failureOf) };
}

/**
 * Runs one stage.
 *
 * @returns timings, RSS growth and failures
 */
export async function runStage(stage: Stage): Promise<StageResult> {
  const raws: Raw[] = [];
  let securityWarnings = 0;
  // A relaxed policy warns once per unenforced load: N lines on stderr would bury the table.
  const logger: Logger = {
    ...SILENT_LOGGER,
    warn: (_message, fields) => void (fields?.security === true && securityWarnings++),
  };
  const options = stage.policy === undefined ? {} : { policy: stage.policy, logger };
  const host = stage.side === "bulkhead" ? new PluginHost(options) : undefined;
  try {
    const starts: (() => Promise<{ ping(): Promise<unknown> }>)[] = host === undefined
      ? stage.dirs.map(() => async () => {
        const raw = await (stage.tier === "worker" ? startRawWorker() : startRawChild());
        raws.push(raw);
        return raw;
      })
      : stage.dirs.map((dir) => async () => {
        const plugin: Plugin = await host.load(dir);
        return { ping: () => plugin.call("ping") };
      });
    const before = await settledRss();
    const run = await startAll(starts, stage.concurrent);
    const rssBytes = await settledRss() - before;
    const result: StageResult = {
      startMs: run.ms,
      securityWarnings,
      rssBytes,
      started: run.ok.length,
      failures: run.errors.map(failureOf),
    };
    if (stage.ping) result.ping = await pingAll(run.ok.map((r) => () => r.ping()));
    return result;
  } finally {
    await host?.close();
    await Promise.all(raws.map((r) => r.close()));
  }
}

if (import.meta.main) {
  const result = await runStage(JSON.parse(process.argv[2] ?? "null") as Stage);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
