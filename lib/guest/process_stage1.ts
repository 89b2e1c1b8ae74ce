/**
 * Stage 1 of a process-tier JS plugin's child: applies Landlock and the seccomp filter, then
 * replaces itself (execve) with the runtime running `process_child.ts`. Not imported by anything:
 * the host's launcher runs it.
 *
 * Why a separate stage: Landlock restricts the calling thread and the threads it creates later,
 * and this kernel has no thread sync for it. A runtime already has threads (libuv pool, V8
 * platform, Bun/Deno I/O pools) when the first line of JavaScript runs, and a plugin's async I/O
 * could run on one of them. After execve() the whole new process image (every thread it will ever
 * create) starts inside the Landlock domain, which is airtight.
 *
 * Why seccomp goes on here too: a runtime probes the kernel while it starts and keeps what it
 * found. libuv (Node) sets up an io_uring per event loop to batch epoll_ctl, and aborts the
 * process when io_uring_enter is refused afterwards (`uv__epoll_ctl_flush` in
 * https://github.com/libuv/libuv/blob/v1.52.1/src/unix/linux.c), so a filter installed after
 * start-up killed the first `fs.watch` or new socket. Under the filter from its first
 * instruction, the runtime sees io_uring_setup fail (ENOSYS) and uses plain epoll_ctl, as on
 * Android (https://github.com/libuv/libuv/issues/4010). The fresh session keyring joined here
 * also covers every thread of the new image. This filter allows execve (this stage needs it
 * once); stage 2 stacks the one that denies it before the plugin is imported.
 *
 * argv: `<config JSON> <stage-2 argv...>`; config is `{ landlock, keepEnv }`. Stage 2 gets only the
 * variables named in `keepEnv` and, as its last argument, `{ landlock, seccomp }` as JSON: the
 * Landlock result and whether the filter is on.
 * Exit code 126 (with a line on stderr) when Landlock, seccomp or execve fails.
 * @module
 */
import type * as Koffi from "koffi";
import { applyLandlock } from "../../sandbox/landlock.ts";
import type { LandlockPolicy, LandlockResult } from "../../sandbox/landlock.ts";
import { bindLibc, seccompSyscalls } from "../../sandbox/libc.ts";
import { installSeccomp } from "../../sandbox/seccomp.ts";

interface Stage1Config {
  landlock: LandlockPolicy;
  keepEnv: string[];
}

const F_SETFD = 2;
const koffi = ((await import("koffi")) as unknown as { default: typeof Koffi }).default;

function main(): void {
  const c = bindLibc(koffi);
  const execve = koffi.load("libc.so.6").func(
    "int execve(const char* path, const char** argv, const char** envp)",
  );
  const die = (text: string): never => {
    const bytes = new TextEncoder().encode(`[bulkhead stage1] ${text}\n`);
    c.write(2, bytes, bytes.length);
    c.exit(126);
    return process.exit(126);
  };
  const [configText, ...argv] = process.argv.slice(2);
  if (configText === undefined || argv.length === 0) die("usage: <config> <argv...>");
  const config = JSON.parse(configText as string) as Stage1Config;
  // Nothing the host leaked may cross the exec (close_range CLOSE_RANGE_CLOEXEC), but stdio must.
  c.syscall(436, "unsigned int", 3, "unsigned int", 0xffffffff, "unsigned int", 4);
  for (const fd of [0, 1, 2]) c.fcntl(fd, F_SETFD, "int", 0);
  const noNewPrivs = () => c.prctl(38, "unsigned long", 1, "unsigned long", 0, "unsigned long", 0);
  let landlock: LandlockResult;
  try {
    landlock = applyLandlock({
      landlockCreateRuleset: (attr, size, flags) =>
        Number(c.syscall(444, "void*", attr, "size_t", size, "uint32_t", flags)),
      landlockAddRule: (fd, type, attr) =>
        Number(c.syscall(445, "int", fd, "int", type, "void*", attr, "uint32_t", 0)),
      landlockRestrictSelf: (fd) => Number(c.syscall(446, "int", fd, "uint32_t", 0)),
      openPath: (path) => c.open(path, 0o10000000 | 0o2000000, "int", 0) as number,
      close: (fd) => c.close(fd) as number,
      setNoNewPrivs: () => noNewPrivs() as number,
      errno: () => koffi.errno(),
    }, config.landlock);
  } catch (error) {
    return die(`the kernel refused Landlock: ${String(error)}`);
  }
  noNewPrivs(); // seccomp needs it even where Landlock is missing
  let seccomp: boolean;
  try {
    // Nothing below may touch what the filter denies: from here on this process only execs.
    seccomp = installSeccomp(seccompSyscalls(c, koffi), process.arch);
  } catch (error) {
    return die(`the kernel refused seccomp: ${String(error)}`);
  }
  const env: (string | null)[] = [];
  for (const name of config.keepEnv) {
    const value = process.env[name];
    if (value !== undefined) env.push(`${name}=${value}`);
  }
  env.push(null);
  const args: (string | null)[] = [...argv, JSON.stringify({ landlock, seccomp }), null];
  execve(argv[0] as string, args, env);
  die(`execve("${argv[0]}") failed: errno ${koffi.errno()}`);
}

main();
