/**
 * Hot-reload watcher: polls each loaded plugin's directory fingerprint (paths, sizes, mtimes) and
 * reloads a plugin once a change has been stable for one interval (debounce). Polling is used
 * because recursive `fs.watch` differs across Deno, Bun and Node. Private helper of the host.
 * @module
 */

import { fingerprint } from "./_fingerprint.ts";
import { type Entry, LOADED } from "./_entry.ts";

/** What the watcher needs from the host. */
export interface WatchDeps {
  entries(): Iterable<Entry>;
  reload(name: string): Promise<void>;
  isClosed(): boolean;
  intervalMs: number;
}

/**
 * Starts watching.
 *
 * @param deps host services and the poll interval
 * @returns a function that stops watching
 */
export function watchEntries(deps: WatchDeps): () => void {
  // Entries loaded before the watcher started carry the fingerprint of what was loaded; the first
  // pass runs at once, so no edit waits an interval to be noticed.
  const pending = new Map<string, string>();
  let busy = false;
  const tick = async () => {
    if (busy || deps.isClosed()) return;
    busy = true;
    try {
      for (const entry of deps.entries()) {
        const record = entry.record;
        if (record === undefined || !LOADED.includes(record.lifecycle.state)) continue;
        const name = record.manifest.name;
        const fp = await fingerprint(entry.dir).catch(() => undefined);
        if (fp === undefined) continue;
        if (entry.fingerprint === undefined) {
          entry.fingerprint = fp;
          continue;
        }
        if (fp === entry.fingerprint) {
          pending.delete(name);
          continue;
        }
        if (pending.get(name) !== fp) {
          pending.set(name, fp);
          continue;
        }
        pending.delete(name);
        entry.fingerprint = fp;
        // A refused reload keeps the old version serving; the host reports it as an event.
        await deps.reload(name).catch(() => {});
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), deps.intervalMs);
  void tick();
  return () => clearInterval(timer);
}
