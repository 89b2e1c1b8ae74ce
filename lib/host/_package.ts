/**
 * Reads a plugin package once, judges its trust, and (when the policy requires signatures) copies
 * the verified bytes to a private directory the worker loads from: verify, then load the same
 * bytes. Private helper of the host.
 * @module
 */

import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, sep } from "node:path";
import { PluginError } from "../errors.ts";
import { type Manifest, parseManifestText } from "../manifest.ts";
import { readPackage } from "../trust/package_snapshot.ts";
import { evaluateTrust, type TrustDecision } from "../trust/evaluate.ts";
import { writePackageCopy } from "../trust/package_snapshot.ts";
import type { TrustPolicy } from "../trust/policy.ts";
import type { TrustStore } from "../trust/trust_store.ts";

/** A package ready to start. */
export interface PreparedPackage {
  /** Manifest with paths in the original directory. */
  manifest: Manifest;
  /** True when `codeDir` is the host's private copy of the verified bytes. */
  privateCopy: boolean;
  /** Where the code is loaded from (the private copy, or the original directory). */
  codeDir: string;
  /** Manifest with the entry and in-package read grants pointing into `codeDir`. */
  codeManifest: Manifest;
  decision: TrustDecision;
  digest: string;
  size: number;
  modifiedAt: number | undefined;
  /** The verified bytes of every file, by relative path. */
  files: ReadonlyMap<string, Uint8Array>;
  /** Removes the private copy, if any. */
  cleanup: () => Promise<void>;
}

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

function remap(dir: string, to: string, path: string): string {
  return inside(dir, path) ? join(to, relative(dir, path)) : path;
}

/**
 * Reads, parses, judges and (under a signature-requiring policy) copies a plugin package.
 *
 * @param dir the plugin's directory
 * @param options policy and trust store
 * @returns the prepared package; `decision.allowed` false means it must not load
 * @throws {PluginError} ERR_MANIFEST_INVALID for unreadable packages or manifests
 */
export async function preparePackage(
  dir: string,
  options: { policy: TrustPolicy; store: TrustStore },
): Promise<PreparedPackage> {
  const snapshot = await readPackage(dir, {
    maxBytes: options.policy.package.maxPackageBytes,
    maxFiles: options.policy.package.maxPackageFiles,
  });
  const bytes = snapshot.files.get("plugin.json");
  if (bytes === undefined) {
    throw new PluginError(
      "ERR_MANIFEST_INVALID",
      `Cannot load plugin in "${dir}": plugin.json is missing`,
      {
        hint: "Create plugin.json in the plugin directory",
      },
    );
  }
  const manifest = parseManifestText(new TextDecoder().decode(bytes), snapshot.dir);
  const decision = evaluateTrust(
    {
      name: manifest.name,
      version: manifest.version,
      digest: snapshot.digest,
      signature: snapshot.signature,
    },
    options.store,
    options.policy,
  );
  let modifiedAt: number | undefined;
  try {
    modifiedAt = (await stat(join(snapshot.dir, "plugin.json"))).mtimeMs;
  } catch {
    modifiedAt = undefined;
  }
  const base = {
    manifest,
    decision,
    digest: snapshot.digest,
    size: snapshot.totalBytes,
    modifiedAt,
    files: snapshot.files,
  };
  if (!decision.allowed || !options.policy.requireSignature) {
    return {
      ...base,
      privateCopy: false,
      codeDir: snapshot.dir,
      codeManifest: manifest,
      cleanup: () => Promise.resolve(),
    };
  }
  const copyRoot = await mkdtemp(join(tmpdir(), `bulkhead-${manifest.name}-`));
  const codeDir = join(copyRoot, "pkg");
  await writePackageCopy(snapshot, codeDir);
  const from = snapshot.dir;
  const codeManifest: Manifest = {
    ...manifest,
    dir: codeDir,
    entry: manifest.entry === undefined ? undefined : remap(from, codeDir, manifest.entry),
    permissions: {
      ...manifest.permissions,
      filesystem: {
        // Data inside the package is read from the verified copy; writes go to the original
        // directory (a copy would lose them).
        read: manifest.permissions.filesystem.read.map((p) => remap(from, codeDir, p)),
        write: manifest.permissions.filesystem.write,
      },
    },
  };
  if (manifest.native !== undefined) {
    codeManifest.native = Object.fromEntries(
      Object.entries(manifest.native).map(([k, p]) => [k, remap(from, codeDir, p)]),
    );
  }
  return {
    ...base,
    privateCopy: true,
    codeDir,
    codeManifest,
    cleanup: () => rm(copyRoot, { recursive: true, force: true }),
  };
}
