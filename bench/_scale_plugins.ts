// Generated plugins of bench/scale.bench.ts: N tiny plugins with a `ping` method in one temp dir.
// The process tier's child runs as its own uid, so the dir is 0755 and every file 0644.
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The plugin tiers the bench measures. */
export type Tier = "worker" | "process";

const MOD = 'export default { methods: { ping: () => "pong" } };\n';

/** Creates a world-readable temp dir for generated plugins. */
export function makeRoot(): string {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "bulkhead-scale-")));
  chmodSync(root, 0o755);
  return root;
}

/** Removes a dir made by {@link makeRoot}. */
export function removeRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

/**
 * Writes `n` plugins named `scale-<tier>-<i>` under `root`.
 *
 * @returns their directories, in order
 */
export function writePlugins(root: string, options: { tier: Tier; n: number }): string[] {
  const dirs: string[] = [];
  for (let i = 0; i < options.n; i++) {
    const name = `scale-${options.tier}-${i}`;
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    const manifest = { name, version: "1.0.0", entry: "./mod.ts", isolation: options.tier };
    for (const [file, text] of [["plugin.json", JSON.stringify(manifest)], ["mod.ts", MOD]]) {
      writeFileSync(join(dir, file as string), text as string);
      chmodSync(join(dir, file as string), 0o644);
    }
    dirs.push(dir);
  }
  return dirs;
}
