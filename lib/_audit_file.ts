/**
 * The audit log's file: appended with one `write(2)` per batch of lines, and every batch starts on
 * a fresh line even when a writer before it died (or the disk filled) inside a line. Private to
 * lib/audit.ts.
 * @module
 */

import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";

const ENCODER = new TextEncoder();

/** An `O_APPEND` file of JSON lines. */
export class AppendFile {
  readonly path: string;
  #fd: number;
  /** The next write must start with "\n": the file ends inside a line. */
  #torn: boolean;
  /** A write failed: whether it left part of a line must be read from the file. */
  #unsure = false;

  /**
   * Opens (or creates, mode 0600) the file and checks that it ends with a newline.
   *
   * @param path file path
   * @throws {Error} the `node:fs` error when the file cannot be opened
   */
  constructor(path: string) {
    this.#fd = openSync(path, "a", 0o600);
    this.path = path;
    try {
      this.#torn = !endsWithNewline(path, fstatSync(this.#fd).size);
    } catch (error) {
      closeSync(this.#fd);
      throw error;
    }
  }

  /**
   * Appends lines, each followed by "\n", preceded by "\n" when the file ends inside a line.
   * The newline that ends a torn line goes in the same `write(2)` as the lines, so that no other
   * writer can append between the two.
   *
   * @param lines lines without newlines
   * @throws {Error} what `write(2)` reported (ENOSPC, EIO, ...); the next call first checks
   *   whether that write left part of a line
   */
  append(lines: readonly string[]): void {
    if (this.#unsure) {
      // Deno's node:fs writeSync loops over short writes itself (the write-all asked for in
      // https://github.com/denoland/std/pull/1817) and throws without the count it wrote: on Deno
      // 2.9 a full tmpfs took 40 bytes of a 1,100-byte write, then ENOSPC. Only the file can tell.
      this.#torn = !endsWithNewline(this.path, sizeOf(this.#fd));
      this.#unsure = false;
    }
    const bytes = ENCODER.encode(`${this.#torn ? "\n" : ""}${lines.join("\n")}\n`);
    let off = 0;
    try {
      // One write(2) in practice; loops only on a short write (disk full, signal).
      while (off < bytes.length) {
        const n = writeSync(this.#fd, bytes, off, bytes.length - off);
        if (n <= 0) throw new Error("write(2) wrote nothing");
        off += n;
      }
    } catch (error) {
      // A short write before ENOSPC leaves part of a line: the next entry starts afresh.
      if (off > 0) this.#torn = true;
      else this.#unsure = true;
      throw error;
    }
    this.#torn = false;
  }

  /** Closes the file. @throws {Error} what `close(2)` reported */
  close(): void {
    closeSync(this.#fd);
  }
}

/** The size of an open file, or -1 when it cannot be read. */
function sizeOf(fd: number): number {
  try {
    return fstatSync(fd).size;
  } catch {
    return -1;
  }
}

/**
 * Whether a file of `size` bytes ends with "\n" (or is empty). When its last byte cannot be read
 * (a write-only file), the answer is no: an empty line costs less than a line glued to a torn one.
 * The byte is read through a separate read-only descriptor: the one kept open stays write-only.
 */
function endsWithNewline(path: string, size: number): boolean {
  if (size === 0) return true;
  if (size < 0) return false;
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return false;
  }
  try {
    const last = new Uint8Array(1);
    return readSync(fd, last, 0, 1, size - 1) === 1 && last[0] === 0x0a;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
