// Attacks on the child tiers' seccomp filter from real plugins in both child tiers (a
// process-tier JS plugin with FFI, a native C plugin) on the leaks it closes: the host's session
// keyring, metadata outside every grant, unnamespaced socket families, nested user namespaces,
// io_uring. The legitimate path runs in the same children. The filter's decisions as data are
// checked in `seccomp_program.test.ts`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
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
import { buildFixtures, type BuiltFixtures } from "../fixtures/native/build.ts";
import { fixtures, removeDir, runtime, tempDir, writePlugin } from "../_helpers.ts";

import {
  AF_INET,
  AF_NETLINK,
  AF_PACKET,
  AF_UNIX,
  AF_VSOCK,
  EAFNOSUPPORT,
  ENOSYS,
  EPERM,
  nrOf,
  SOCK_RAW,
  SOCK_STREAM,
} from "./_seccomp_eval.ts";

const linux = process.platform === "linux" ? false : "the child sandboxes need Linux";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: unknown) => new TextDecoder().decode(b as Uint8Array);

describe("seccomp under attack from a process-tier and a native plugin", { skip: linux }, () => {
  let built: BuiltFixtures;
  let root: string;
  let target: string;
  let host: PluginHost;
  let js: Plugin;
  let uring: Plugin;
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
    const uringDir = writePlugin(root, "uring-js", {
      entry: "./mod.ts",
      isolation: "process",
      limits: { cpuTimeMs: 10_000 },
    }, { "mod.ts": { copy: join(fixtures, "io_uring", "mod.ts") } });
    chmodSync(uringDir, 0o755);
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
    uring = await host.load("uring-js");
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

  it("cannot set up or drive an io_uring through FFI (the filter answers, not the kernel)", async () => {
    // io_uring's SOCKET, CONNECT and file operations would bypass every rule above. The kernel
    // would answer EBADF to enter/register on fd -1: ENOSYS shows the filter refused the call.
    for (const method of ["setup", "enter", "register"]) {
      assert.deepEqual(await uring.call(method, koffiUrl), { rc: -1, errno: ENOSYS }, method);
    }
    assert.equal(uring.info.enforcement?.subprocess.mechanism, "seccomp");
    assert.equal(await js.call("ping"), "pong");
  });

  it("cannot create a nested user namespace (it would hold every capability)", async () => {
    assert.deepEqual(await raw("unshareUser"), { rc: -1, errno: EPERM });
    assert.deepEqual(await nat("unshare_user", ""), { rc: -1, errno: EPERM });
  });

  it("still does what a normal plugin does (files, threads, crypto, timers, wasm)", async () => {
    // fs.watch adds a descriptor to the event loop after the filter is on: libuv (Node) must
    // have started without an io_uring (stage 1 installs the filter before execve).
    const options = { watch: true };
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
