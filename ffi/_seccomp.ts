/**
 * A small seccomp filter for the native plugin child: no new AF_UNIX sockets and no io_uring
 * (setup, enter, register: the runtime's own rings exist before the filter and are denied too).
 * Private to `_child.ts` (which binds the syscalls with koffi).
 *
 * Why: pathname Unix sockets cross network namespaces, and Landlock (ABI <= 7) does not govern
 * connect() on them, so a plugin with no network could still reach a host daemon through a socket
 * file it can see (verified: it connected to a socket in /tmp). Denying socket(AF_UNIX) closes
 * that; io_uring is denied because its SOCKET/CONNECT operations bypass seccomp. The filter is
 * installed with SECCOMP_FILTER_FLAG_TSYNC, so it covers the runtime's existing threads too.
 * The IPC channel is an already-open socket pair, unaffected.
 *
 * @example
 * ```ts
 * const ok = installSeccomp(sys, "x64"); // true when installed
 * ```
 * @module
 */

/** The syscall the filter needs, bound by the caller. */
export interface SeccompSys {
  /** `syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog)`; returns -1 on error. */
  seccomp(nr: number, prog: Uint8Array, flags: number): number;
  /** Address of a byte buffer that stays alive during the call. */
  address(buffer: Uint8Array): bigint;
}

/** Extra rules of {@link seccompProgram}. */
export interface SeccompOptions {
  /** Also deny execve and execveat (the process tier's JS child: no subprocesses). */
  denyExec?: boolean;
}

interface ArchInfo {
  audit: number;
  seccomp: number;
  socket: number;
  ioUringSetup: number;
  execve: number;
  execveat: number;
}

const ARCHES: Record<string, ArchInfo> = {
  x64: {
    audit: 0xc000003e,
    seccomp: 317,
    socket: 41,
    ioUringSetup: 425,
    execve: 59,
    execveat: 322,
  },
  arm64: {
    audit: 0xc00000b7,
    seccomp: 277,
    socket: 198,
    ioUringSetup: 425,
    execve: 221,
    execveat: 281,
  },
};

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO_EACCES = 0x00050000 | 13;
const RET_KILL_PROCESS = 0x80000000;
const AF_UNIX = 1;

/**
 * Builds the BPF program (exported for tests).
 *
 * @param arch `process.arch`
 * @param options extra rules (default none: the native child's filter)
 * @returns the `struct sock_filter[]` bytes, or null for an unsupported architecture
 */
export function seccompProgram(arch: string, options: SeccompOptions = {}): Uint8Array | null {
  const a = ARCHES[arch];
  if (a === undefined) return null;
  const ins: Array<[number, number, number, number]> = [
    [BPF_LD_W_ABS, 0, 0, 4], // seccomp_data.arch
    [BPF_JEQ_K, 1, 0, a.audit],
    [BPF_RET_K, 0, 0, RET_KILL_PROCESS],
    [BPF_LD_W_ABS, 0, 0, 0], // seccomp_data.nr
    [BPF_JGE_K, 0, 1, 0x40000000], // x32 ABI numbers
    [BPF_RET_K, 0, 0, RET_ERRNO_EACCES],
    [BPF_JGE_K, 0, 2, a.ioUringSetup], // io_uring_setup, io_uring_enter, io_uring_register
    [BPF_JGE_K, 1, 0, a.ioUringSetup + 3],
    [BPF_RET_K, 0, 0, RET_ERRNO_EACCES],
    ...(options.denyExec === true
      ? [
        [BPF_JEQ_K, 1, 0, a.execve],
        [BPF_JEQ_K, 0, 1, a.execveat],
        [BPF_RET_K, 0, 0, RET_ERRNO_EACCES],
      ] as Array<[number, number, number, number]>
      : []),
    [BPF_JEQ_K, 0, 3, a.socket],
    [BPF_LD_W_ABS, 0, 0, 16], // seccomp_data.args[0], low half (little-endian)
    [BPF_JEQ_K, 0, 1, AF_UNIX],
    [BPF_RET_K, 0, 0, RET_ERRNO_EACCES],
    [BPF_RET_K, 0, 0, RET_ALLOW],
  ];
  const out = new Uint8Array(ins.length * 8);
  const view = new DataView(out.buffer);
  ins.forEach(([code, jt, jf, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k >>> 0, true);
  });
  return out;
}

/**
 * Installs the filter on every thread of the process (needs no_new_privs, set before).
 *
 * @param sys bound syscall
 * @param arch `process.arch`
 * @param options extra rules
 * @returns true when installed, false for an unsupported architecture
 * @throws {Error} when the kernel refuses the filter
 */
export function installSeccomp(
  sys: SeccompSys,
  arch: string,
  options: SeccompOptions = {},
): boolean {
  const program = seccompProgram(arch, options);
  const a = ARCHES[arch];
  if (program === null || a === undefined) return false;
  const prog = new Uint8Array(16); // struct sock_fprog { u16 len; u8 pad[6]; filter* }
  const view = new DataView(prog.buffer);
  view.setUint16(0, program.length / 8, true);
  view.setBigUint64(8, sys.address(program), true);
  if (sys.seccomp(a.seccomp, prog, 1) < 0) throw new Error("seccomp(SET_MODE_FILTER) failed");
  return true;
}
