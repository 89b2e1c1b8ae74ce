import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  buildLauncher,
  connectPorts,
  RUNTIME_BASE_FDS,
  RUNTIME_BASE_THREADS,
  RUNTIME_DATA_FLOOR_MB,
} from "../../sandbox/launcher.ts";
import type { LauncherOptions } from "../../sandbox/launcher.ts";
import { childrenOf, findDescendant } from "../../sandbox/procfs.ts";
import { sampleProcess } from "../../lib/proc_sample.ts";
import { seccompProgram } from "../../sandbox/seccomp.ts";

const base: LauncherOptions = {
  runtime: "node",
  runtimeArgv: ["/usr/bin/node", "/x/_child.ts"],
  platform: "linux",
  hostUid: 0,
  namespaces: true,
  limits: { heapMb: 64, cpuTimeMs: 1000, threads: 4, fileDescriptors: 16, connections: 0 },
  network: "none",
};

function flag(argv: string[], name: string): string | undefined {
  return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

describe("buildLauncher()", () => {
  it("drops a root host to the sandbox uid before anything else", () => {
    const { argv, enforcement } = buildLauncher({ ...base, sandboxUid: 4242 });
    assert.deepEqual(argv.slice(0, 5), [
      "setpriv",
      "--reuid=4242",
      "--regid=4242",
      "--clear-groups",
      "--",
    ]);
    assert.equal(argv[5], "unshare");
    assert.equal(enforcement.uid, 4242);
    assert.equal(enforcement.processes, "rlimit");
  });

  it("does not change uid for an unprivileged host", () => {
    const { argv, enforcement } = buildLauncher({ ...base, hostUid: 1000 });
    assert.equal(argv[0], "unshare");
    assert.equal(enforcement.uid, null);
  });

  it("derives rlimits from the limits and the runtime", () => {
    const { argv } = buildLauncher({ ...base, runtime: "bun" });
    assert.equal(flag(argv, "--data"), String((RUNTIME_DATA_FLOOR_MB.bun + 64) * 1024 * 1024));
    assert.equal(flag(argv, "--nofile"), String(16 + RUNTIME_BASE_FDS));
    assert.equal(flag(argv, "--nproc"), String(4 + RUNTIME_BASE_THREADS));
    assert.equal(flag(argv, "--core"), "0");
    assert.equal(flag(argv, "--cpu"), undefined);
  });

  it("adds a lifetime RLIMIT_CPU only when cpuLifetimeMs is set", () => {
    const { argv, enforcement } = buildLauncher({
      ...base,
      limits: { ...base.limits, cpuLifetimeMs: 2500 },
    });
    assert.equal(flag(argv, "--cpu"), "3:4");
    assert.equal(enforcement.cpu, "rlimit+watchdog+deadline");
  });

  it("isolates namespaces, sets rlimits inside, drops capabilities, runs an init shell", () => {
    const { argv, enforcement } = buildLauncher(base);
    const u = argv.indexOf("unshare");
    const prlimit = argv.indexOf("prlimit");
    const caps = argv.indexOf("--bounding-set=-all");
    const sh = argv.indexOf("sh");
    assert.ok(u >= 0 && prlimit > u && caps > prlimit && sh > caps);
    for (const f of ["--user", "--pid", "--fork", "--kill-child", "--mount-proc", "--net"]) {
      assert.ok(argv.includes(f), f);
    }
    assert.ok(argv.includes("--no-new-privs"));
    assert.deepEqual(argv.slice(-2), base.runtimeArgv);
    assert.equal(enforcement.network, "netns");
    assert.ok(enforcement.namespaces.includes("net"));
  });

  it("keeps the network namespace off when the manifest grants network", () => {
    const full = buildLauncher({ ...base, network: "full" });
    assert.ok(!full.argv.includes("--net"));
    assert.equal(full.enforcement.network, "none");
    const ports = buildLauncher({ ...base, network: ["api.example.com:443"] });
    assert.ok(!ports.argv.includes("--net"));
    assert.equal(ports.enforcement.network, "landlock-ports");
  });

  it("falls back to rlimits only without user namespaces", () => {
    const { argv, enforcement } = buildLauncher({ ...base, namespaces: false });
    assert.ok(!argv.includes("unshare"));
    assert.ok(argv.includes("prlimit"));
    assert.deepEqual(enforcement.namespaces, []);
    assert.equal(enforcement.sandboxed, true);
  });

  it("runs without a sandbox off Linux and says so", () => {
    const { argv, enforcement } = buildLauncher({ ...base, platform: "darwin" });
    assert.deepEqual(argv, base.runtimeArgv);
    assert.equal(enforcement.sandboxed, false);
    assert.equal(enforcement.filesystem, "none");
    assert.equal(enforcement.notes.length, 1);
  });

  it("throws RangeError for a non-positive limit", () => {
    assert.throws(
      () => buildLauncher({ ...base, limits: { ...base.limits, threads: 0 } }),
      RangeError,
    );
  });
});

describe("connectPorts()", () => {
  it("reduces host:port entries to ports and refuses anything else", () => {
    assert.deepEqual(connectPorts(["a.example:443", "[::1]:8080"]), [443, 8080]);
    assert.equal(connectPorts(["a.example"]), null);
    assert.equal(connectPorts(["a.example:99999"]), null);
    assert.equal(connectPorts("full"), null);
    assert.equal(connectPorts("none"), null);
  });
});

describe("procfs", { skip: process.platform !== "linux" ? "procfs is Linux only" : false }, () => {
  it("samples memory, threads, fds and CPU of a process", () => {
    const m = sampleProcess(process.pid);
    assert.ok(m !== null);
    assert.ok(m.rssBytes > 0 && m.peakRssBytes >= m.rssBytes);
    assert.ok(m.threads >= 1 && m.fdCount >= 3 && m.cpuMs >= 0);
  });

  it("returns null for a process that does not exist", () => {
    assert.equal(sampleProcess(2 ** 22 + 12345), null);
  });

  it("finds a grandchild through the children files", async () => {
    const child = spawn("sh", ["-c", "sleep 5 & wait $!"], { stdio: "ignore" });
    try {
      let kids: number[] = [];
      for (let i = 0; i < 100 && kids.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        kids = childrenOf(child.pid as number);
      }
      assert.equal(kids.length, 1);
      assert.equal(findDescendant(child.pid as number, kids[0] as number), kids[0]);
      assert.equal(findDescendant(child.pid as number, 2 ** 22 + 1), null);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("seccompProgram()", () => {
  it("builds a BPF program for x64 and arm64 that ends in a return, and refuses other arches", () => {
    for (const arch of ["x64", "arm64"]) {
      const prog = seccompProgram(arch);
      // An allow-list: longer than a deny list, within the kernel's BPF_MAXINSNS (4096).
      assert.ok(prog !== null && prog.length % 8 === 0 && prog.length / 8 <= 4096);
      const view = new DataView(prog.buffer);
      const last = prog.length - 8;
      assert.equal(view.getUint16(last, true), 0x06); // BPF_RET: no path falls off the end
      // every jump stays inside the program
      for (let i = 0; i < prog.length / 8; i++) {
        if ((view.getUint16(i * 8, true) & 0x07) !== 0x05) continue; // not a BPF_JMP
        const jt = view.getUint8(i * 8 + 2);
        const jf = view.getUint8(i * 8 + 3);
        assert.ok(i + 1 + Math.max(jt, jf) < prog.length / 8, `instruction ${i}`);
      }
    }
    assert.equal(seccompProgram("ia32"), null);
  });
});
