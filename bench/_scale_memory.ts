// Host RSS for bench/scale.bench.ts, taken once it has settled: after a full garbage collection,
// and after the pages of stopped workers have gone back to the system (they return over tens of
// milliseconds after a worker exits, so a reading taken at once counts them against the next
// stage).
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

type Collect = () => void;

const STEP_MS = 100;
const STEPS = 30;
const STABLE_BYTES = 1024 * 1024;

let collect: Collect | undefined;

function collector(): Collect {
  // Bun (JavaScriptCore) has no V8 flags; it exposes a synchronous collection instead.
  const bun = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun;
  if (bun !== undefined) return () => bun.gc(true);
  // Node and Deno: `--expose-gc` set at run time defines `gc` in contexts created afterwards.
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as Collect;
}

function sample(): number {
  collect ??= collector();
  collect();
  return process.memoryUsage().rss;
}

/**
 * The process's resident set in bytes once two readings 100 ms apart differ by under 1 MiB
 * (at most 3 s of waiting).
 */
export async function settledRss(): Promise<number> {
  let last = sample();
  for (let i = 0; i < STEPS; i++) {
    await new Promise((resolve) => setTimeout(resolve, STEP_MS));
    const now = sample();
    if (Math.abs(now - last) < STABLE_BYTES) return now;
    last = now;
  }
  return last;
}
