/**
 * What both child entries (`lib/guest/native_child.ts` for native plugins, `process_child.ts` for the process tier)
 * need from libc through koffi: the function table, moving the IPC channel off fds 0/1, and a
 * blocking write loop. It takes the koffi module as a parameter, so importing this file never
 * loads koffi. Private helper.
 * @module
 */

import type * as Koffi from "koffi";
import type { SeccompSys } from "./seccomp.ts";

const F_DUPFD_CLOEXEC = 1030;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;
/** errno of an interrupted system call. */
export const EINTR = 4;

/**
 * Binds the libc functions the children use.
 *
 * @param koffi the koffi module (loaded by the caller)
 * @returns the function table
 */
export function bindLibc(koffi: typeof Koffi) {
  const libc = koffi.load("libc.so.6");
  return {
    read: libc.func("long read(int fd, void* buf, size_t n)"),
    write: libc.func("long write(int fd, const void* buf, size_t n)"),
    close: libc.func("int close(int fd)"),
    dup2: libc.func("int dup2(int a, int b)"),
    open: libc.func("int open(const char* path, int flags, ...)"),
    fcntl: libc.func("int fcntl(int fd, int cmd, ...)"),
    syscall: libc.func("long syscall(long nr, ...)"),
    prctl: libc.func("int prctl(int op, ...)"),
    memfdCreate: libc.func("int memfd_create(const char* name, unsigned int flags)"),
    exit: libc.func("void _exit(int status)"),
  };
}

/** The libc function table of {@link bindLibc}. */
export type ChildLibc = ReturnType<typeof bindLibc>;

/**
 * The syscalls `installSeccomp()` needs, through libc's `syscall()`.
 *
 * @param c libc table
 * @param koffi the koffi module (for addresses and errno)
 * @returns the bound syscalls
 */
export function seccompSyscalls(c: ChildLibc, koffi: typeof Koffi): SeccompSys {
  return {
    seccomp: (nr, prog, flags) =>
      Number(c.syscall(nr, "unsigned int", 1, "unsigned int", flags, "void*", prog)),
    address: (buffer) => koffi.address(buffer),
    keyctl: (nr, operation) => Number(c.syscall(nr, "int", operation, "void*", null)),
    errno: () => koffi.errno(),
  };
}

/**
 * Marks every inherited fd >= 3 close-on-exec, moves the IPC channel (stdin/stdout) to private
 * blocking fds >= 10, points fd 0 at /dev/null and fd 1 at stderr, so nothing the plugin prints
 * can reach the channel.
 *
 * @param c libc table
 * @param errno koffi's errno reader
 * @returns the IPC fds
 * @throws {Error} when the fds cannot be duplicated
 */
export function moveIpcChannel(
  c: ChildLibc,
  errno: () => number,
): { ipcIn: number; ipcOut: number } {
  // close_range(3, ~0U, CLOSE_RANGE_CLOEXEC): nothing the host leaked survives an exec.
  c.syscall(436, "unsigned int", 3, "unsigned int", 0xffffffff, "unsigned int", 4);
  const ipcIn = c.fcntl(0, F_DUPFD_CLOEXEC, "int", 10) as number;
  const ipcOut = c.fcntl(1, F_DUPFD_CLOEXEC, "int", 10) as number;
  if (ipcIn < 0 || ipcOut < 0) throw new Error(`dup failed: errno ${errno()}`);
  for (const fd of [ipcIn, ipcOut]) {
    const flags = c.fcntl(fd, F_GETFL, "int", 0) as number;
    if (flags >= 0 && (flags & O_NONBLOCK) !== 0) c.fcntl(fd, F_SETFL, "int", flags & ~O_NONBLOCK);
  }
  const nul = c.open("/dev/null", 2, "int", 0) as number;
  if (nul >= 0) {
    c.dup2(nul, 0);
    c.close(nul);
  }
  c.dup2(2, 1);
  return { ipcIn, ipcOut };
}

/**
 * Writes all of `bytes` to `fd`, retrying on EINTR.
 *
 * @param c libc table
 * @param errno koffi's errno reader
 * @param fd file descriptor
 * @param bytes what to write
 * @returns 0 on success, else the errno of the failed write
 */
export function writeAll(
  c: ChildLibc,
  errno: () => number,
  fd: number,
  bytes: Uint8Array,
): number {
  let off = 0;
  while (off < bytes.length) {
    const n = Number(c.write(fd, bytes.subarray(off), bytes.length - off));
    if (n < 0) {
      const e = errno();
      if (e === EINTR) continue;
      return e;
    }
    off += n;
  }
  return 0;
}
