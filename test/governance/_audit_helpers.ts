// Helpers of the audit stress tests: a real full disk (a small tmpfs mounted by the test, root
// only), a JSON lines reader and a logger that remembers.
import { spawnSync } from "node:child_process";
import { closeSync, fstatSync, openSync, readFileSync, rmdirSync, writeSync } from "node:fs";
import type { LogFields } from "../../lib/logger.ts";
import { tempDir } from "../_helpers.ts";

/** tmpfs allocates whole pages: a file's last page has room a small append can still use. */
const PAGE = 4096;

/**
 * Mounts a tmpfs of `sizeKb` on a new temporary directory.
 *
 * @returns the mount point, or the reason the mount is not possible here
 */
export function mountTmpfs(sizeKb: number): { dir: string } | { reason: string } {
  const dir = tempDir("bulkhead-fulldisk-");
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k`, "tmpfs", dir], {
    encoding: "utf8",
  });
  if (r.status === 0) return { dir };
  rmdirSync(dir);
  const why = (r.stderr || r.error?.message || `exit ${r.status}`).replace(/\s+/g, " ").trim();
  return { reason: `mounting a tmpfs is not permitted here (${why})` };
}

/** Unmounts what {@link mountTmpfs} mounted and removes the mount point. */
export function unmountTmpfs(dir: string): void {
  // Lazily when busy (a killed child's descriptors may still be closing): detached at once.
  if (spawnSync("umount", [dir]).status !== 0) spawnSync("umount", ["-l", dir]);
  rmdirSync(dir);
}

/**
 * Fills the filesystem of `auditPath`: first its last page up to `room` bytes (with one valid
 * JSON line, so the file stays parseable), then every free page with `fillerPath`. Later appends
 * to the audit file then fit `room` bytes at most, and fail with ENOSPC until the filler is gone.
 */
export function fillDisk(auditPath: string, fillerPath: string, room = 0): void {
  const fd = openSync(auditPath, "a");
  try {
    const size = fstatSync(fd).size;
    // `{"pad":""}\n` is 11 bytes: a pad shorter than that takes the next page too.
    let pad = (PAGE - room - (size % PAGE) + PAGE) % PAGE;
    if (pad > 0 && pad < 11) pad += PAGE;
    if (pad > 0) writeSync(fd, `{"pad":"${" ".repeat(pad - 11)}"}\n`);
  } finally {
    closeSync(fd);
  }
  const filler = openSync(fillerPath, "w");
  const chunk = new Uint8Array(PAGE);
  try {
    for (;;) writeSync(filler, chunk);
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOSPC") throw e;
  } finally {
    closeSync(filler);
  }
}

/** Parses a JSON lines file (without fillDisk's pads); `torn` collects the lines that are not JSON. */
export function readLines(path: string): { records: Record<string, unknown>[]; torn: string[] } {
  const records: Record<string, unknown>[] = [];
  const torn: string[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line === "") continue;
    try {
      records.push(JSON.parse(line));
    } catch {
      torn.push(line);
    }
  }
  return { records: records.filter((r) => !("pad" in r)), torn };
}

/** A logger that keeps every line. */
export function memoryLogger() {
  const logs: { level: string; message: string; fields: LogFields | undefined }[] = [];
  const at = (level: string) => (message: string, fields?: LogFields) =>
    void logs.push({ level, message, fields });
  return {
    logs,
    logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") },
  };
}
