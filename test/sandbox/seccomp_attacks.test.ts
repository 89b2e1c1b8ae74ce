// The child tiers' seccomp filter: its decisions (run through a BPF interpreter), its syscall
// table (checked against the kernel headers), and attacks from real plugins in both child tiers
// (a process-tier JS plugin with FFI, a native C plugin) on the leaks it closes: the host's
// session keyring, metadata outside every grant, unnamespaced socket families, nested user
// namespaces. The legitimate path runs in the same children.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { PluginHost } from "../../mod.ts";
import type { Plugin } from "../../mod.ts";
import { seccompProgram, seccompRules } from "../../sandbox/seccomp.ts";
import type { SeccompOptions } from "../../sandbox/seccomp.ts";
import { buildFixtures, type BuiltFixtures } from "../fixtures/native/build.ts";
import { fixtures, removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

const linux = process.platform === "linux" ? false : "the child sandboxes need Linux";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: unknown) => new TextDecoder().decode(b as Uint8Array);

const AUDIT_ARCH: Record<string, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };
const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const errno = (e: number) => 0x00050000 | e;
const EPERM = 1;
const EACCES = 13;
const ENOSYS = 38;
const EAFNOSUPPORT = 97;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const AF_PACKET = 17;
const AF_VSOCK = 40;
const SOCK_STREAM = 1;
const SOCK_RAW = 3;

/** Runs a classic BPF seccomp program on one `seccomp_data` (the instructions it emits only). */
function evaluate(prog: Uint8Array, arch: number, nr: number, args: number[] = []): number {
  const code = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const data = new DataView(new ArrayBuffer(64));
  data.setUint32(0, nr, true);
  data.setUint32(4, arch, true);
  args.forEach((a, i) => data.setBigUint64(16 + 8 * i, BigInt(a), true));
  let acc = 0;
  let pc = 0;
  for (let steps = 0; steps < prog.length / 8; steps++) {
    assert.ok(pc * 8 < prog.length, `jump past the end at ${pc}`);
    const op = code.getUint16(pc * 8, true);
    const jt = code.getUint8(pc * 8 + 2);
    const jf = code.getUint8(pc * 8 + 3);
    const k = code.getUint32(pc * 8 + 4, true);
    if (op === 0x06) return k; // ret k
    if (op === 0x20) acc = data.getUint32(k, true); // ld [k]
    else if (op === 0x05) pc += k; // ja
    else if (op === 0x15) pc += acc === k ? jt : jf;
    else if (op === 0x35) pc += acc >= k ? jt : jf;
    else if (op === 0x45) pc += (acc & k) !== 0 ? jt : jf;
    else assert.fail(`unexpected BPF opcode 0x${op.toString(16)}`);
    pc++;
  }
  return assert.fail("the program did not return");
}

function nrOf(arch: string, name: string): number {
  const rule = seccompRules(arch)?.find((r) => r.name === name);
  assert.ok(rule, `${name} on ${arch}`);
  return rule.nr;
}

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
        setxattrat removexattrat file_setattr unshare setns mount ptrace bpf io_uring_setup`;
      for (const name of denied.split(/\s+/)) {
        assert.equal(run(name), errno(EPERM), name);
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

describe("seccomp under attack from a process-tier and a native plugin", { skip: linux }, () => {
  let built: BuiltFixtures;
  let root: string;
  let target: string;
  let host: PluginHost;
  let js: Plugin;
  let native: Plugin;
  let koffiUrl: string;
  let serial = 0;
  let secret = "";
  let dropKey = (): void => {};
  let before0: ReturnType<typeof snapshot>;

  const snapshot = () => {
    const s = statSync(target);
    return { mode: s.mode, uid: s.uid, gid: s.gid, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
  };
  const raw = async (method: string, ...args: unknown[]) =>
    (await js.call(method, koffiUrl, ...args)) as { rc: number; errno: number; data?: string };
  const nat = async (method: string, input: string) => {
    const [rc, e] = dec(await native.call(method, enc(input))).split(" ").map(Number);
    return { rc, errno: e };
  };

  before(async () => {
    built = buildFixtures(["syscalls"]);
    root = tempDir();
    // The children run as fresh uids: the plugin directories must pass the usual file modes.
    chmodSync(root, 0o755);
    const outside = join(root, "outside");
    mkdirSync(outside, { mode: 0o755 });
    chmodSync(outside, 0o755);
    target = join(outside, "world-writable.txt");
    writeFileSync(target, "host file");
    chmodSync(target, 0o666);
    utimesSync(target, new Date("2001-01-01"), new Date("2001-01-01"));
    const jsDir = writePlugin(root, "sys-js", {
      entry: "./mod.ts",
      isolation: "process",
      permissions: { filesystem: { write: ["./out"] } },
      limits: { cpuTimeMs: 10_000 },
    }, { "mod.ts": { copy: join(fixtures, "process", "syscalls.ts") } });
    const key = `${process.platform}-${process.arch}`;
    const nativeDir = writePlugin(root, "sys-native", {
      native: { [key]: "./libsyscalls.so" },
      permissions: { filesystem: { write: ["./out"] } },
      limits: { cpuTimeMs: 10_000 },
    }, {});
    copyFileSync(built.lib("syscalls"), join(nativeDir, "libsyscalls.so"));
    for (const dir of [jsDir, nativeDir]) {
      chmodSync(dir, 0o755);
      mkdirSync(join(dir, "out"));
      chmodSync(join(dir, "out"), 0o777);
    }
    const require = createRequire(import.meta.url);
    koffiUrl = pathToFileURL(join(dirname(require.resolve("koffi")), "index.js")).href;
    ({ serial, secret, drop: dropKey } = await addSessionKey());
    host = new PluginHost({ pluginDirs: [root] });
    await host.discover();
    js = await host.load("sys-js");
    native = await host.load("sys-native");
    before0 = snapshot();
  });

  after(async () => {
    await host?.close();
    dropKey();
    built?.remove();
    removeDir(root);
  });

  it("reports seccomp for the process-tier plugin", () => {
    assert.equal(js.info.enforcement?.subprocess.mechanism, "seccomp");
    assert.equal(js.info.enforcement?.subprocess.enforced, true);
  });

  it("keyctl cannot read a key the host added to its session keyring", async () => {
    assert.ok(serial > 0, "this host cannot add a key to its session keyring");
    const fromJs = await raw("keyctlRead", serial);
    assert.deepEqual({ rc: fromJs.rc, errno: fromJs.errno }, { rc: -1, errno: EPERM });
    assert.notEqual(fromJs.data, secret);
    assert.deepEqual(await raw("sessionKeyring"), { rc: -1, errno: EPERM });
    const fromNative = dec(await native.call("keyctl_read", enc(String(serial))));
    assert.equal(fromNative, `-1 ${EPERM}`);
  });

  it("cannot change the metadata of a world-writable file outside every grant", async () => {
    const attacks = "fchmodat fchmodat2 fchownat utimensat setxattr setxattrat".split(" ");
    const jsOnly = ["removexattr", "fileSetattr", ...(process.arch === "x64" ? ["chmod"] : [])];
    for (const method of [...attacks, ...jsOnly]) {
      assert.deepEqual(await raw(method, target), { rc: -1, errno: EPERM }, `process: ${method}`);
    }
    assert.deepEqual(await js.call("nodeMetadata", target), {
      chmodSync: "EPERM",
      utimesSync: "EPERM",
    });
    for (const method of [...attacks, "file_setattr"]) {
      assert.deepEqual(await nat(method, target), { rc: -1, errno: EPERM }, `native: ${method}`);
    }
    assert.deepEqual(snapshot(), before0);
    assert.equal(readFileSync(target, "utf8"), "host file");
  });

  it("cannot chmod or touch even its own output by path (the metadata rule's cost)", async () => {
    const out = join(root, "sys-js", "out");
    assert.deepEqual(await js.call("ownOutput", out), {
      writeFileSync: "ok",
      chmodSync: "EPERM",
      utimesSync: "EPERM",
      fchmodSync: "ok", // through a descriptor Landlock let it open: copyFile depends on it
      copyFileSync: "ok",
      // Deno's node:fs appendFileSync chmods the path after writing; fs.cp of Node and Deno
      // chmods the copy (Bun's copies the mode through the descriptor)
      appendFileSync: runtime === "deno" ? "EPERM" : "ok",
      cp: runtime === "bun" ? "ok" : "EPERM",
    });
    assert.equal(statSync(join(out, "own.txt")).mode & 0o777, 0o640);
  });

  it("socket() refuses AF_VSOCK, AF_NETLINK, AF_UNIX and AF_PACKET", async () => {
    for (
      const [family, type] of [
        [AF_VSOCK, SOCK_STREAM],
        [AF_NETLINK, SOCK_RAW],
        [AF_UNIX, SOCK_STREAM],
        [AF_PACKET, SOCK_RAW],
      ]
    ) {
      const want = { rc: -1, errno: EAFNOSUPPORT };
      assert.deepEqual(await raw("socket", family, type), want, `process: family ${family}`);
      assert.deepEqual(
        await nat("socket", `${family} ${type}`),
        want,
        `native: family ${family}`,
      );
    }
    assert.deepEqual(await raw("socketpair", AF_INET), { rc: -1, errno: EAFNOSUPPORT });
    assert.deepEqual(await nat("socketpair", String(AF_INET)), { rc: -1, errno: EAFNOSUPPORT });
  });

  it("socket(AF_INET) and socketpair(AF_UNIX) still work", async () => {
    assert.equal((await raw("socket", AF_INET, SOCK_STREAM)).errno, 0);
    assert.equal((await raw("socketpair", AF_UNIX)).errno, 0);
    assert.equal((await nat("socket", `${AF_INET} ${SOCK_STREAM}`)).errno, 0);
    assert.equal((await nat("socketpair", String(AF_UNIX))).errno, 0);
  });

  it("cannot create a nested user namespace (it would hold every capability)", async () => {
    assert.deepEqual(await raw("unshareUser"), { rc: -1, errno: EPERM });
    assert.deepEqual(await nat("unshare_user", ""), { rc: -1, errno: EPERM });
  });

  it("still does what a normal plugin does (files, threads, crypto, timers, wasm)", async () => {
    // fs.watch on Node: libuv batches epoll_ctl through an io_uring it set up before the filter,
    // and aborts when io_uring_enter is refused (sandbox/SECCOMP.md, "Left open").
    const options = { watch: runtime !== "node" };
    const out = join(root, "sys-js", "out");
    const results = await js.call("workout", out, options) as Record<string, string>;
    const failed = Object.entries(results).filter(([, v]) => v !== "ok");
    assert.deepEqual(failed, []);
    assert.ok(Object.keys(results).length >= 20);
    assert.equal(dec(await native.call("workout", enc(join(root, "sys-native", "out")))), "ok");
    assert.equal(await js.call("ping"), "pong");
    assert.equal(dec(await native.call("ping", new Uint8Array())), "pong");
  });
});

/**
 * Joins a fresh session keyring in this (host) process and adds a key the children would inherit
 * a path to: the same keyring a host started from a login session passes on.
 */
async function addSessionKey(): Promise<{ serial: number; secret: string; drop: () => void }> {
  const koffi = ((await import("koffi")) as unknown as { default: typeof import("koffi") }).default;
  const syscall = koffi.load("libc.so.6").func("long syscall(long nr, ...)");
  const keyctl = nrOf(process.arch, "keyctl");
  const secret = `host secret ${process.pid}`;
  // KEYCTL_JOIN_SESSION_KEYRING; a host without keyrings fails only the keyctl test (serial 0)
  if (Number(syscall(keyctl, "int", 1, "void*", null)) <= 0) {
    return { serial: 0, secret, drop() {} };
  }
  const serial = Number(
    syscall(
      nrOf(process.arch, "add_key"),
      "str",
      "user",
      "str",
      `bulkhead-seccomp-test-${process.pid}`,
      "str",
      secret,
      "size_t",
      secret.length,
      "int",
      -3, // KEY_SPEC_SESSION_KEYRING
    ),
  );
  if (serial <= 0) return { serial: 0, secret, drop() {} };
  const buf = new Uint8Array(64);
  const n = Number(syscall(keyctl, "int", 11, "int", serial, "void*", buf, "size_t", buf.length));
  assert.equal(new TextDecoder().decode(buf.subarray(0, n)), secret, "the host reads its key");
  return { serial, secret, drop: () => void syscall(keyctl, "int", 21, "int", serial) };
}
