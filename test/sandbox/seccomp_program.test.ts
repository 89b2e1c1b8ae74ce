// The child tiers' seccomp filter as data: its decisions (run through a BPF interpreter, also as
// the process tier's stack of two filters) and its syscall table (checked against the kernel
// headers). `seccomp_attacks.test.ts` runs it against real plugins.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { execDenyProgram, seccompProgram, seccompRules } from "../../sandbox/seccomp.ts";
import type { SeccompOptions } from "../../sandbox/seccomp.ts";
import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_PACKET,
  AF_UNIX,
  AF_VSOCK,
  ALLOW,
  AUDIT_ARCH,
  EACCES,
  EAFNOSUPPORT,
  ENOSYS,
  EPERM,
  errno,
  evaluate,
  KILL_PROCESS,
  nrOf,
  SOCK_STREAM,
  stacked,
} from "./_seccomp_eval.ts";

describe("seccompProgram()", () => {
  for (const arch of ["x64", "arm64"]) {
    const audit = AUDIT_ARCH[arch] as number;
    const run = (name: string, args: number[] = [], options: SeccompOptions = {}) =>
      evaluate(seccompProgram(arch, options) as Uint8Array, audit, nrOf(arch, name), args);

    it(`${arch}: answers every listed syscall as its rule says, and ENOSYS to the rest`, () => {
      const options = { denyExec: true };
      const prog = seccompProgram(arch, options) as Uint8Array;
      const rules = seccompRules(arch, options) ?? [];
      assert.ok(rules.length > 250, `${rules.length} rules`);
      const want: Record<string, number> = {
        allow: ALLOW,
        EPERM: errno(EPERM),
        EACCES: errno(EACCES),
        ENOSYS: errno(ENOSYS),
      };
      for (const rule of rules.filter((r) => r.action !== "filtered")) {
        assert.equal(evaluate(prog, audit, rule.nr), want[rule.action], rule.name);
      }
      const listed = new Set(rules.map((r) => r.nr));
      for (let nr = 0; nr < 1024; nr++) {
        if (!listed.has(nr)) assert.equal(evaluate(prog, audit, nr), errno(ENOSYS), `nr ${nr}`);
      }
      assert.equal(evaluate(prog, audit, 0x40000000), errno(ENOSYS), "x32 numbers");
      assert.equal(evaluate(prog, audit, 0xffffffff), errno(ENOSYS));
    });

    it(`${arch}: kills another ABI and allows the ordinary calls`, () => {
      const prog = seccompProgram(arch) as Uint8Array;
      assert.equal(evaluate(prog, 0x40000003, 0), KILL_PROCESS); // AUDIT_ARCH_I386
      for (const name of ["read", "write", "openat", "mmap", "futex", "epoll_pwait", "getrandom"]) {
        assert.equal(run(name), ALLOW, name);
      }
    });

    it(`${arch}: denies keyrings, metadata writes, namespaces and tracing with EPERM`, () => {
      const denied =
        `keyctl add_key request_key fchmodat fchmodat2 fchownat utimensat setxattr fremovexattr
        setxattrat removexattrat file_setattr unshare setns mount ptrace bpf perf_event_open`;
      for (const name of denied.split(/\s+/)) {
        assert.equal(run(name), errno(EPERM), name);
      }
    });

    it(`${arch}: answers io_uring as absent (ENOSYS), so its users fall back`, () => {
      for (const name of ["io_uring_setup", "io_uring_enter", "io_uring_register"]) {
        assert.equal(run(name), errno(ENOSYS), name);
        assert.equal(run(name, [], { denyExec: true }), errno(ENOSYS), name);
      }
    });

    it(`${arch}: socket() only for AF_INET and AF_INET6, socketpair() only for AF_UNIX`, () => {
      assert.equal(run("socket", [AF_INET, SOCK_STREAM]), ALLOW);
      assert.equal(run("socket", [AF_INET6, SOCK_STREAM]), ALLOW);
      for (const family of [AF_UNIX, AF_NETLINK, AF_PACKET, AF_VSOCK, 0, 45]) {
        assert.equal(run("socket", [family, SOCK_STREAM]), errno(EAFNOSUPPORT), `${family}`);
      }
      assert.equal(run("socketpair", [AF_UNIX, SOCK_STREAM]), ALLOW);
      assert.equal(run("socketpair", [AF_INET, SOCK_STREAM]), errno(EAFNOSUPPORT));
      assert.equal(run("socketpair", [AF_VSOCK, SOCK_STREAM]), errno(EAFNOSUPPORT));
    });

    it(`${arch}: clone() for threads and forks only, clone3() as ENOSYS (libc falls back)`, () => {
      const thread = 0x003d0f00; // glibc's pthread_create flags
      assert.equal(run("clone", [thread]), ALLOW);
      assert.equal(run("clone", [17]), ALLOW); // fork: SIGCHLD
      for (const flag of [0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x02000000]) {
        assert.equal(run("clone", [flag | 17]), errno(EPERM), `flag 0x${flag.toString(16)}`);
      }
      assert.equal(run("clone3"), errno(ENOSYS));
    });

    it(`${arch}: ioctl() except inode flags and terminal injection`, () => {
      assert.equal(run("ioctl", [0, 0x5401]), ALLOW); // TCGETS
      assert.equal(run("ioctl", [0, 0x5421]), ALLOW); // FIONBIO
      for (const cmd of [0x40086602, 0x40046602, 0x401c5820, 0x5412, 0x541c]) {
        assert.equal(run("ioctl", [0, cmd]), errno(EPERM), `0x${cmd.toString(16)}`);
      }
    });

    it(`${arch}: execve() only for the native child`, () => {
      assert.equal(run("execve"), ALLOW);
      assert.equal(run("execve", [], { denyExec: true }), errno(EACCES));
      assert.equal(run("execveat", [], { denyExec: true }), errno(EACCES));
    });

    it(`${arch}: the exec filter denies only execve and execveat, and kills another ABI`, () => {
      const exec = execDenyProgram(arch) as Uint8Array;
      assert.ok(exec.length / 8 <= 8, `${exec.length / 8} instructions`);
      const exe = [nrOf(arch, "execve"), nrOf(arch, "execveat")];
      for (let nr = 0; nr < 1024; nr++) {
        const want = exe.includes(nr) ? errno(EACCES) : ALLOW;
        assert.equal(evaluate(exec, audit, nr), want, `nr ${nr}`);
      }
      assert.equal(evaluate(exec, 0x40000003, nrOf(arch, "execve")), KILL_PROCESS);
    });

    it(`${arch}: stage 1's filter with the exec filter stacked answers as the denyExec policy`, () => {
      const base = seccompProgram(arch) as Uint8Array;
      const exec = execDenyProgram(arch) as Uint8Array;
      const want = seccompProgram(arch, { denyExec: true }) as Uint8Array;
      const argSets = [[], [AF_INET, SOCK_STREAM], [AF_UNIX, SOCK_STREAM], [0x10000000 | 17]];
      for (const a of [audit, 0x40000003]) {
        for (const nr of [...Array(1024).keys(), 0x40000000 | 59, 0xffffffff]) {
          for (const args of argSets) {
            const got = stacked([evaluate(exec, a, nr, args), evaluate(base, a, nr, args)]);
            assert.equal(got, evaluate(want, a, nr, args), `arch 0x${a.toString(16)} nr ${nr}`);
          }
        }
      }
    });
  }

  it("refuses other architectures", () => {
    assert.equal(seccompProgram("ia32"), null);
    assert.equal(seccompRules("ia32"), null);
  });
});

/** `#define __NR_<name> <n>` lines of a header, with `__NR3264_*` indirections resolved. */
function headerNumbers(path: string): Map<string, number> {
  const defs = new Map<string, string>();
  for (const m of readFileSync(path, "utf8").matchAll(/^#define\s+(__NR(?:3264)?_\w+)\s+(\S+)/gm)) {
    defs.set(m[1] as string, m[2] as string);
  }
  const out = new Map<string, number>();
  for (const [name, value] of defs) {
    if (!name.startsWith("__NR_")) continue;
    const resolved = /^\d+$/.test(value) ? value : defs.get(value);
    if (resolved !== undefined && /^\d+$/.test(resolved)) out.set(name.slice(5), Number(resolved));
  }
  return out;
}

describe("seccompRules() syscall table", () => {
  const headers: Array<[string, string]> = [
    ["x64", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"],
    ["arm64", "/usr/include/asm-generic/unistd.h"],
  ];
  for (const [arch, path] of headers) {
    const skip = existsSync(path) ? false : `no ${path}`;
    it(`${arch}: every number matches ${path} (names the header knows)`, { skip }, () => {
      const known = headerNumbers(path);
      let compared = 0;
      for (const rule of seccompRules(arch) ?? []) {
        const nr = known.get(rule.name);
        if (nr === undefined) continue; // newer than the header
        assert.equal(rule.nr, nr, rule.name);
        compared++;
      }
      assert.ok(compared > 250, `${compared} compared`);
    });
  }
});
