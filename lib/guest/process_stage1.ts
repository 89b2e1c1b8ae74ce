/**
 * Stage 1 of a process-tier JS plugin's child: applies Landlock, then replaces itself (execve)
 * with the runtime running `process_child.ts`. Not imported by anything: the host's launcher runs it.
 *
 * Why a separate stage: Landlock restricts the calling thread and the threads it creates later,
 * and this kernel has no thread sync for it (FIELD_NOTES). A runtime already has threads (libuv
 * pool, V8 platform, Bun/Deno I/O pools) when the first line of JavaScript runs, and a plugin's
 * async I/O could run on one of them. After execve() the whole new process image (every thread
 * it will ever create) starts inside the Landlock domain, which is airtight.
 *
 * argv: `<config JSON> <stage-2 argv...>`; config is `{ landlock, keepEnv }`. Stage 2 gets only the
 * variables named in `keepEnv` and, as its last argument, the Landlock result as JSON.
 * Exit code 126 (with a line on stderr) when Landlock or execve fails.
 * @module
 */
import type * as Koffi from "koffi";
import { applyLandlock } from "../../sandbox/landlock.ts";
import type { LandlockPolicy, LandlockResult } from "../../sandbox/landlock.ts";

interface Stage1Config {
  landlock: LandlockPolicy;
  keepEnv: string[];
}

const F_SETFD = 2;
const koffi = ((await import("koffi")) as unknown as { default: typeof Koffi }).default;

function main(): void {
  const libc = koffi.load("libc.so.6");
  const syscall = libc.func("long syscall(long nr, ...)");
  const open = libc.func("int open(const char* path, int flags, ...)");
  const close = libc.func("int close(int fd)");
  const fcntl = libc.func("int fcntl(int fd, int cmd, ...)");
  const prctl = libc.func("int prctl(int op, ...)");
  const execve = libc.func("int execve(const char* path, const char** argv, const char** envp)");
  const write = libc.func("long write(int fd, const void* buf, size_t n)");
  const exit = libc.func("void _exit(int status)");
  const die = (text: string): never => {
    const bytes = new TextEncoder().encode(`[bulkhead stage1] ${text}\n`);
    write(2, bytes, bytes.length);
    exit(126);
    return process.exit(126);
  };
  const [configText, ...argv] = process.argv.slice(2);
  if (configText === undefined || argv.length === 0) die("usage: <config> <argv...>");
  const config = JSON.parse(configText as string) as Stage1Config;
  // Nothing the host leaked may cross the exec (close_range CLOSE_RANGE_CLOEXEC), but stdio must.
  syscall(436, "unsigned int", 3, "unsigned int", 0xffffffff, "unsigned int", 4);
  for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, "int", 0);
  let result: LandlockResult;
  try {
    result = applyLandlock({
      landlockCreateRuleset: (attr, size, flags) =>
        Number(syscall(444, "void*", attr, "size_t", size, "uint32_t", flags)),
      landlockAddRule: (fd, type, attr) =>
        Number(syscall(445, "int", fd, "int", type, "void*", attr, "uint32_t", 0)),
      landlockRestrictSelf: (fd) => Number(syscall(446, "int", fd, "uint32_t", 0)),
      openPath: (path) => open(path, 0o10000000 | 0o2000000, "int", 0),
      close: (fd) => close(fd),
      setNoNewPrivs: () => prctl(38, "unsigned long", 1, "unsigned long", 0, "unsigned long", 0),
      errno: () => koffi.errno(),
    }, config.landlock);
  } catch (error) {
    return die(`the kernel refused Landlock: ${String(error)}`);
  }
  prctl(38, "unsigned long", 1, "unsigned long", 0, "unsigned long", 0); // no_new_privs
  const env: (string | null)[] = [];
  for (const name of config.keepEnv) {
    const value = process.env[name];
    if (value !== undefined) env.push(`${name}=${value}`);
  }
  env.push(null);
  const args: (string | null)[] = [...argv, JSON.stringify(result), null];
  execve(argv[0] as string, args, env);
  die(`execve("${argv[0]}") failed: errno ${koffi.errno()}`);
}

main();
