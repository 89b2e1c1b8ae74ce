// A host for audit_stress.test.ts, run in a child process because the failure it provokes (an
// audit write error during a plugin crash or timeout) used to kill the host. It loads plugins with
// the audit log on a small tmpfs, fills that filesystem, lets one plugin time out and one crash,
// loads another, frees the space, unloads, closes, prints one JSON report and then returns: the
// process must exit by itself (a worker left spinning would keep it alive on Node and Bun).
// Usage: _audit_host.ts <plugin root> <audit path> <filler path>
import { unlinkSync } from "node:fs";
import { PluginHost } from "../../mod.ts";
import type { LogFields } from "../../lib/logger.ts";
import { fillDisk } from "./_audit_helpers.ts";

const [root, auditPath, fillerPath] = process.argv.slice(-3) as [string, string, string];
const rejections: string[] = [];
const uncaught: string[] = [];
process.on("unhandledRejection", (e) => void rejections.push(String((e as Error)?.stack ?? e)));
process.on("uncaughtException", (e) => void uncaught.push(String(e?.stack ?? e)));

const logs: { level: string; message: string; code: unknown }[] = [];
const log = (level: string) => (message: string, fields?: LogFields) =>
  void logs.push({ level, message, code: fields?.code });
const logger = { debug() {}, info: log("info"), warn: log("warn"), error: log("error") };
// development: the worker tier on every runtime, as the test assumes (Bun and Deno leave parts of
// it unenforced, which that policy allows and warns about).
const host = new PluginHost({
  pluginDirs: [root],
  policy: "development",
  audit: auditPath,
  logger,
  loadTimeoutMs: 20_000,
});
const errorEvents: unknown[] = [];
const violations: string[] = [];
host.events.on("error", (e) => {
  const err = e.error as { code?: string; hint?: string; message?: string };
  errorEvents.push({ plugin: e.plugin ?? null, code: err.code, hint: err.hint, msg: err.message });
});
host.events.on("violation", (v) => void violations.push(`${v.plugin}:${v.kind}`));

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

const steps: Record<string, unknown> = {};
try {
  await host.discover();
  const spinner = await host.load("spinner");
  const crasher = await host.load("crasher");
  fillDisk(auditPath, fillerPath);
  // Deno cannot stop a busy worker: a finite spin there, an endless one elsewhere.
  const spin = process.versions.deno ? ["spin", 1500] : ["spinForever"];
  steps.timeout = await spinner.call(spin[0] as string, ...spin.slice(1)).then(
    () => "resolved",
    (e: { code?: string }) => e.code,
  );
  // The violation is counted after the failed instance was terminated: it proves termination.
  steps.timeoutHandled = await until(() => violations.includes("spinner:timeout"), 10_000);
  steps.crash = await crasher.call("crashLater").then(
    () => "resolved",
    (e: { code?: string }) => e.code,
  );
  steps.crashHandled = await until(() => violations.includes("crasher:crash"), 10_000);
  steps.lateWhileFull = (await host.load("late")).status;
  unlinkSync(fillerPath);
  await host.unload("late");
  steps.unloaded = true;
} catch (e) {
  steps.threw = String((e as Error)?.stack ?? e);
} finally {
  await host.close();
}
await new Promise((r) => setTimeout(r, 100));
process.stdout.write(`${JSON.stringify({ steps, logs, errorEvents, rejections, uncaught })}\n`);
