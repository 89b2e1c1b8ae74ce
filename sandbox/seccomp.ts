/**
 * The seccomp filter of both child tiers (the native plugin child and the process tier's JS
 * child): a default-deny allow-list. Every syscall the child may make is listed below by family,
 * with its number on x64 and arm64; anything else fails with ENOSYS, as if the kernel did not
 * have it, so libc and runtimes fall back (clone3 to clone, libuv's io_uring to epoll). Denied on
 * purpose, with EPERM: keyrings, metadata writes by path, namespaces and mounts, tracing, bpf,
 * perf events, userfaultfd, identity changes. By argument: socket() (AF_INET and AF_INET6 only),
 * socketpair() (AF_UNIX only), clone() (no CLONE_NEW* flags), ioctl() (no inode flags, no
 * terminal injection). `sandbox/SECCOMP.md` gives the reason for each family and its cost.
 *
 * The process tier installs it in stage 1, before execve() of the runtime: a runtime decides at
 * start-up whether io_uring works (libuv aborts when a ring it already set up is refused later).
 * Stage 2 then stacks {@link execDenyProgram} (execve and execveat fail with EACCES). Installed
 * with SECCOMP_FILTER_FLAG_TSYNC, so it covers the caller's existing threads too.
 *
 * @example
 * ```ts
 * const ok = installSeccomp(sys, "x64"); // true when installed
 * seccompRules("x64")?.find((r) => r.name === "keyctl")?.action; // "EPERM"
 * ```
 * @module
 */

import {
  archCheck,
  BPF_JEQ_K,
  BPF_JSET_K,
  BPF_LD_W_ABS,
  BPF_RET_K,
  encode,
  type Ins,
  RET_ALLOW,
  RET_ERRNO,
  searchTree,
  segments,
} from "./_bpf.ts";

/** The syscalls the filter needs, bound by the caller. */
export interface SeccompSys {
  /** `syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog)`; returns -1 on error. */
  seccomp(nr: number, prog: Uint8Array, flags: number): number;
  /** Address of a byte buffer that stays alive during the call. */
  address(buffer: Uint8Array): bigint;
  /**
   * `syscall(nr, operation, NULL)`: used for keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL);
   * returns -1 on error. Without it the thread keeps the session keyring it inherited.
   */
  keyctl?(nr: number, operation: number): number;
  /** errno of the last failed call. */
  errno?(): number;
}

/** Extra rules of {@link seccompProgram}. */
export interface SeccompOptions {
  /**
   * Also deny execve and execveat: the effective policy of the process tier, where stage 2
   * stacks {@link execDenyProgram} on this filter (no subprocesses).
   */
  denyExec?: boolean;
}

/**
 * What the filter does with one syscall: "allow", fail with an errno, or "filtered" (the answer
 * depends on an argument: socket, socketpair, clone, ioctl).
 */
export type SeccompAction = "allow" | "filtered" | "EPERM" | "EACCES" | "ENOSYS";

/** One syscall of the policy (see {@link seccompRules}). */
export interface SeccompRule {
  /** Kernel name, as in `unistd.h`. */
  name: string;
  /** Family, as in `sandbox/SECCOMP.md`. */
  family: string;
  /** Number on the architecture asked for. */
  nr: number;
  /** What the filter does. */
  action: SeccompAction;
}

// Entries are name/x64/arm64 ("-": no such syscall there). arm64 uses the generic table
// (include/uapi/asm-generic/unistd.h); numbers from 424 on are the same on both.
const ALLOWED: Readonly<Record<string, string>> = {
  "fd I/O": `read/0/63 write/1/64 readv/19/65 writev/20/66 pread64/17/67 pwrite64/18/68
    preadv/295/69 pwritev/296/70 preadv2/327/286 pwritev2/328/287 lseek/8/62 sendfile/40/71
    copy_file_range/326/285 splice/275/76 tee/276/77 vmsplice/278/75 close/3/57
    close_range/436/436 dup/32/23 dup2/33/- dup3/292/24 fcntl/72/25 flock/73/32 fsync/74/82
    fchmod/91/52 fdatasync/75/83 sync_file_range/277/84 syncfs/306/267 sync/162/81 ftruncate/77/46
    fallocate/285/47 fadvise64/221/223 readahead/187/213 pipe/22/- pipe2/293/59
    memfd_create/319/279`,
  "paths": `open/2/- openat/257/56 openat2/437/437 creat/85/- truncate/76/45 mkdir/83/-
    mkdirat/258/34 rmdir/84/- unlink/87/- unlinkat/263/35 rename/82/- renameat/264/38
    renameat2/316/276 link/86/- linkat/265/37 symlink/88/- symlinkat/266/36 mknod/133/-
    mknodat/259/33 chdir/80/49 fchdir/81/50 getcwd/79/17 umask/95/166`,
  "metadata reads": `stat/4/- fstat/5/80 lstat/6/- newfstatat/262/79 statx/332/291
    statfs/137/43 fstatfs/138/44 access/21/- faccessat/269/48 faccessat2/439/439
    readlink/89/- readlinkat/267/78 getdents/78/- getdents64/217/61 getxattr/191/8
    lgetxattr/192/9 fgetxattr/193/10 listxattr/194/11 llistxattr/195/12 flistxattr/196/13
    getxattrat/464/464 listxattrat/465/465 file_getattr/468/468`,
  "events": `poll/7/- ppoll/271/73 select/23/- pselect6/270/72 epoll_create/213/-
    epoll_create1/291/20 epoll_ctl/233/21 epoll_wait/232/- epoll_pwait/281/22
    epoll_pwait2/441/441 eventfd/284/- eventfd2/290/19 signalfd/282/- signalfd4/289/74
    timerfd_create/283/85 timerfd_settime/286/86 timerfd_gettime/287/87 inotify_init/253/-
    inotify_init1/294/26 inotify_add_watch/254/27 inotify_rm_watch/255/28`,
  "memory": `brk/12/214 mmap/9/222 munmap/11/215 mremap/25/216 mprotect/10/226
    madvise/28/233 msync/26/227 mincore/27/232 mlock/149/228 mlock2/325/284 munlock/150/229
    mlockall/151/230 munlockall/152/231 membarrier/324/283 pkey_alloc/330/289
    pkey_free/331/290 pkey_mprotect/329/288 mseal/462/462 map_shadow_stack/453/453`,
  "threads and processes": `fork/57/- vfork/58/- futex/202/98 futex_waitv/449/449
    futex_wake/454/454 futex_wait/455/455 futex_requeue/456/456 set_robust_list/273/99
    get_robust_list/274/100 set_tid_address/218/96 rseq/334/293 gettid/186/178 exit/60/93
    exit_group/231/94 wait4/61/260 waitid/247/95 arch_prctl/158/- sched_yield/24/124
    sched_getaffinity/204/123 sched_setaffinity/203/122 sched_getparam/143/121
    sched_setparam/142/118 sched_getscheduler/145/120
    sched_setscheduler/144/119 sched_get_priority_max/146/125 sched_get_priority_min/147/126
    sched_rr_get_interval/148/127 sched_getattr/315/275 sched_setattr/314/274 getcpu/309/168
    getpriority/140/141 setpriority/141/140 ioprio_get/252/31 ioprio_set/251/30`,
  "signals": `rt_sigaction/13/134 rt_sigprocmask/14/135 rt_sigreturn/15/139
    rt_sigpending/127/136 rt_sigtimedwait/128/137 rt_sigsuspend/130/133
    rt_sigqueueinfo/129/138 rt_tgsigqueueinfo/297/240 sigaltstack/131/132 kill/62/129
    tkill/200/130 tgkill/234/131 pause/34/- alarm/37/- getitimer/36/102 setitimer/38/103
    pidfd_open/434/434 pidfd_send_signal/424/424 restart_syscall/219/128 uretprobe/335/-`,
  "time": `clock_gettime/228/113 clock_getres/229/114 clock_nanosleep/230/115
    nanosleep/35/101 gettimeofday/96/169 time/201/- times/100/153 timer_create/222/107
    timer_settime/223/110 timer_gettime/224/108 timer_getoverrun/225/109
    timer_delete/226/111`,
  "process info": `getpid/39/172 getppid/110/173 getuid/102/174 geteuid/107/175
    getgid/104/176 getegid/108/177 getgroups/115/158 getresuid/118/148 getresgid/120/150
    getpgid/121/155 getpgrp/111/- getsid/124/156 setsid/112/157 setpgid/109/154 uname/63/160
    sysinfo/99/179 getrusage/98/165 getrlimit/97/163 setrlimit/160/164 prlimit64/302/261
    getrandom/318/278 capget/125/90 prctl/157/167`,
  "sockets": `connect/42/203 bind/49/200 listen/50/201 accept/43/202 accept4/288/242
    getsockname/51/204 getpeername/52/205 getsockopt/55/209 setsockopt/54/208 sendto/44/206
    recvfrom/45/207 sendmsg/46/211 recvmsg/47/212 sendmmsg/307/269 recvmmsg/299/243
    shutdown/48/210`,
  "SysV IPC": `shmget/29/194 shmat/30/196 shmdt/67/197 shmctl/31/195 semget/64/190
    semop/65/193 semctl/66/191 semtimedop/220/192 msgget/68/186 msgsnd/69/189
    msgrcv/70/188 msgctl/71/187`,
  "self-restriction": `seccomp/317/277 landlock_create_ruleset/444/444
    landlock_add_rule/445/445 landlock_restrict_self/446/446`,
};

const DENIED: Readonly<Record<string, string>> = {
  "keyrings": "add_key/248/217 request_key/249/218 keyctl/250/219",
  "metadata writes": `chmod/90/- fchmodat/268/53 fchmodat2/452/452 chown/92/-
    fchown/93/55 lchown/94/- fchownat/260/54 utime/132/- utimes/235/- futimesat/261/-
    utimensat/280/88 setxattr/188/5 lsetxattr/189/6 fsetxattr/190/7 removexattr/197/14
    lremovexattr/198/15 fremovexattr/199/16 setxattrat/463/463 removexattrat/466/466
    file_setattr/469/469`,
  "namespaces and mounts": `unshare/272/97 setns/308/268 mount/165/40 umount2/166/39
    pivot_root/155/41 chroot/161/51 open_tree/428/428 open_tree_attr/467/467
    move_mount/429/429 fsopen/430/430 fsconfig/431/431 fsmount/432/432 fspick/433/433
    mount_setattr/442/442`,
  "tracing": `ptrace/101/117 process_vm_readv/310/270 process_vm_writev/311/271
    pidfd_getfd/438/438 kcmp/312/272 process_madvise/440/440`,
  "kernel interfaces": "bpf/321/280 perf_event_open/298/241 userfaultfd/323/282",
  "identity": `setuid/105/146 setgid/106/144 setreuid/113/145 setregid/114/143
    setresuid/117/147 setresgid/119/149 setfsuid/122/151 setfsgid/123/152 setgroups/116/159
    capset/126/91`,
};

/** Refused as absent (ENOSYS), so that their users fall back instead of failing. */
const ABSENT: Readonly<Record<string, string>> = {
  "io_uring": "io_uring_setup/425/425 io_uring_enter/426/426 io_uring_register/427/427",
};

/** Answers of their own: by argument (see `ruleCode`), ENOSYS (clone3), by tier (execve). */
const SPECIAL = `socket/41/198 socketpair/53/199 clone/56/220 ioctl/16/29 clone3/435/435
  execve/59/221 execveat/322/281`;

interface ArchInfo {
  audit: number;
  column: 1 | 2;
}

const ARCHES: Readonly<Record<string, ArchInfo>> = {
  x64: { audit: 0xc000003e, column: 1 },
  arm64: { audit: 0xc00000b7, column: 2 },
};

const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1,
  EACCES: 13,
  ENOSYS: 38,
  EAFNOSUPPORT: 97,
};
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
/** CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (0x80 is clone's exit signal). */
const CLONE_NEW_MASK = 0x7e020000;
/** FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR, TIOCSTI, TIOCLINUX. */
const DENIED_IOCTLS = [0x40086602, 0x40046602, 0x401c5820, 0x5412, 0x541c];
const KEYCTL_JOIN_SESSION_KEYRING = 1;
const SECCOMP_FILTER_FLAG_TSYNC = 1;

/** Offset of the low half of `seccomp_data.args[i]` (both supported arches are little-endian). */
const arg = (i: number): number => 16 + 8 * i;

function parse(table: string, column: 1 | 2): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const entry of table.split(/\s+/)) {
    if (entry === "") continue;
    const parts = entry.split("/");
    const nr = parts[column];
    if (nr !== undefined && nr !== "-") out.push([parts[0] as string, Number(nr)]);
  }
  return out;
}

/**
 * The policy as a list of rules, one per syscall the filter names (exported for tests and the
 * doc). Syscalls not listed get ENOSYS.
 *
 * @param arch `process.arch`
 * @param options extra rules (default none: the native child's filter)
 * @returns the rules sorted by number, or null for an unsupported architecture
 * @example
 * ```ts
 * seccompRules("x64", { denyExec: true })?.find((r) => r.name === "execve")?.action; // "EACCES"
 * ```
 */
export function seccompRules(arch: string, options: SeccompOptions = {}): SeccompRule[] | null {
  const a = ARCHES[arch];
  if (a === undefined) return null;
  const rules: SeccompRule[] = [];
  const add = (family: string, table: string, action: (name: string) => SeccompAction) => {
    for (const [name, nr] of parse(table, a.column)) {
      rules.push({ name, family, nr, action: action(name) });
    }
  };
  for (const [family, table] of Object.entries(ALLOWED)) add(family, table, () => "allow");
  for (const [family, table] of Object.entries(DENIED)) add(family, table, () => "EPERM");
  for (const [family, table] of Object.entries(ABSENT)) add(family, table, () => "ENOSYS");
  add("special", SPECIAL, (name) => {
    if (name === "clone3") return "ENOSYS"; // its flags sit in memory seccomp cannot read
    if (name === "execve" || name === "execveat") {
      return options.denyExec === true ? "EACCES" : "allow";
    }
    return "filtered";
  });
  return rules.sort((x, y) => x.nr - y.nr);
}

/** The instructions for one syscall: a return, or an argument check that ends in returns. */
function ruleCode(rule: SeccompRule): Ins[] {
  const ret = (k: number): Ins => [BPF_RET_K, 0, 0, k];
  const allow = ret(RET_ALLOW);
  if (rule.action === "allow") return [allow];
  if (rule.action !== "filtered") return [ret(RET_ERRNO | (ERRNO[rule.action] as number))];
  const eperm = ret(RET_ERRNO | (ERRNO.EPERM as number));
  const noFamily = ret(RET_ERRNO | (ERRNO.EAFNOSUPPORT as number));
  switch (rule.name) {
    case "socket": // the family is an int: the low half of args[0]
      return [
        [BPF_LD_W_ABS, 0, 0, arg(0)],
        [BPF_JEQ_K, 2, 0, AF_INET],
        [BPF_JEQ_K, 1, 0, AF_INET6],
        noFamily,
        allow,
      ];
    case "socketpair":
      return [[BPF_LD_W_ABS, 0, 0, arg(0)], [BPF_JEQ_K, 1, 0, AF_UNIX], noFamily, allow];
    case "clone": // flags are args[0] on x64 and arm64 alike
      return [[BPF_LD_W_ABS, 0, 0, arg(0)], [BPF_JSET_K, 0, 1, CLONE_NEW_MASK], eperm, allow];
    case "ioctl": { // the request is an unsigned int: the low half of args[1]
      const n = DENIED_IOCTLS.length;
      return [
        [BPF_LD_W_ABS, 0, 0, arg(1)],
        ...DENIED_IOCTLS.map((cmd, i): Ins => [BPF_JEQ_K, n - i, 0, cmd]),
        allow,
        eperm,
      ];
    }
    default:
      throw new Error(`no argument rule for "${rule.name}"`);
  }
}

/**
 * Builds the BPF program (exported for tests).
 *
 * @param arch `process.arch`
 * @param options extra rules (default none: the native child's filter)
 * @returns the `struct sock_filter[]` bytes, or null for an unsupported architecture
 * @example
 * ```ts
 * seccompProgram("x64")!.length % 8; // 0
 * ```
 */
export function seccompProgram(arch: string, options: SeccompOptions = {}): Uint8Array | null {
  const a = ARCHES[arch];
  const rules = seccompRules(arch, options);
  if (a === undefined || rules === null) return null;
  return encode([
    ...archCheck(a.audit),
    [BPF_LD_W_ABS, 0, 0, 0], // seccomp_data.nr; x32 numbers (bit 30) fall in the last ENOSYS range
    ...searchTree(segments(
      rules.map((r) => ({
        ...r,
        key: r.action === "filtered" ? `filtered:${r.name}` : r.action,
        code: ruleCode(r),
      })),
      { key: "ENOSYS", code: [[BPF_RET_K, 0, 0, RET_ERRNO | (ERRNO.ENOSYS as number)]] },
    )),
  ]);
}

/**
 * The process tier's second filter: EACCES for execve and execveat, allow for the rest. Stage 2
 * stacks it on the filter stage 1 installed before execve(); the kernel runs both and the stricter
 * answer wins, so the stack answers as `seccompProgram(arch, { denyExec: true })`.
 *
 * @param arch `process.arch`
 * @returns the `struct sock_filter[]` bytes, or null for an unsupported architecture
 * @example
 * ```ts
 * execDenyProgram("x64")!.length / 8; // 8 instructions
 * ```
 */
export function execDenyProgram(arch: string): Uint8Array | null {
  const a = ARCHES[arch];
  if (a === undefined) return null;
  const nr = (name: string) => parse(SPECIAL, a.column).find(([n]) => n === name)?.[1] ?? -1;
  return encode([
    ...archCheck(a.audit),
    [BPF_LD_W_ABS, 0, 0, 0],
    [BPF_JEQ_K, 2, 0, nr("execve")],
    [BPF_JEQ_K, 1, 0, nr("execveat")],
    [BPF_RET_K, 0, 0, RET_ALLOW],
    [BPF_RET_K, 0, 0, RET_ERRNO | (ERRNO.EACCES as number)],
  ]);
}

/**
 * Joins a fresh anonymous session keyring on the calling thread, then installs the filter on
 * every thread of the process (needs no_new_privs, set before). The keyring join is per thread
 * (credentials are): threads started earlier keep the inherited keyring, but the filter denies
 * them keyctl, add_key and request_key. Called before execve() (process tier, stage 1), the new
 * image starts with the fresh keyring on every thread.
 *
 * @param sys bound syscalls
 * @param arch `process.arch`
 * @param options extra rules
 * @returns true when installed, false for an unsupported architecture
 * @throws {Error} when the kernel refuses the keyring or the filter
 * @example
 * ```ts
 * installSeccomp(sys, process.arch);
 * ```
 */
export function installSeccomp(
  sys: SeccompSys,
  arch: string,
  options: SeccompOptions = {},
): boolean {
  const program = seccompProgram(arch, options);
  if (program === null) return false;
  const keyctl = seccompRules(arch)?.find((r) => r.name === "keyctl")?.nr ?? -1;
  if (sys.keyctl !== undefined && sys.keyctl(keyctl, KEYCTL_JOIN_SESSION_KEYRING) < 0) {
    // ENOSYS: a kernel without keyrings; EPERM: an outer filter (a container's) already denies
    // keyctl. Either way the plugin cannot reach a keyring through keyctl either.
    const e = sys.errno?.() ?? 0;
    if (e !== ERRNO.ENOSYS && e !== ERRNO.EPERM) {
      throw new Error(`keyctl(KEYCTL_JOIN_SESSION_KEYRING) failed: errno ${e}`);
    }
  }
  return load(sys, arch, program);
}

/**
 * Stacks {@link execDenyProgram} on every thread of the process (stage 2 of the process tier).
 *
 * @param sys bound syscalls (`keyctl` is not used)
 * @param arch `process.arch`
 * @returns true when installed, false for an unsupported architecture
 * @throws {Error} when the kernel refuses the filter
 */
export function installExecDeny(sys: SeccompSys, arch: string): boolean {
  const program = execDenyProgram(arch);
  return program !== null && load(sys, arch, program);
}

function load(sys: SeccompSys, arch: string, program: Uint8Array): boolean {
  const prog = new Uint8Array(16); // struct sock_fprog { u16 len; u8 pad[6]; filter* }
  const view = new DataView(prog.buffer);
  view.setUint16(0, program.length / 8, true);
  view.setBigUint64(8, sys.address(program), true);
  const nr = seccompRules(arch)?.find((r) => r.name === "seccomp")?.nr ?? -1;
  // With TSYNC, a positive result is the id of a thread that could not be synchronized.
  const rc = sys.seccomp(nr, prog, SECCOMP_FILTER_FLAG_TSYNC);
  if (rc !== 0) {
    const why = rc > 0 ? `thread ${rc} cannot be synchronized` : `errno ${sys.errno?.() ?? "?"}`;
    throw new Error(`seccomp(SET_MODE_FILTER) failed: ${why}`);
  }
  return true;
}
