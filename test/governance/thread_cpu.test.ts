import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuUsage, platform, versions } from "node:process";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import {
  CLOCK_TICKS_PER_SECOND,
  currentThreadId,
  findNewThreads,
  findThreads,
  isProcfsAvailable,
  listThreads,
  readThread,
  sampleProcess,
  ThreadCpuSampler,
} from "../../lib/thread_cpu.ts";

const linux = platform === "linux";
const isDeno = "deno" in versions;
const isBun = "bun" in versions;
const LIB = pathToFileURL(join(import.meta.dirname ?? ".", "../../lib/thread_cpu.ts")).href;

/** Spins until this process used `ms` of CPU (the VM is shared: wall time is no measure). */
function burnCpu(ms: number): void {
  const start = cpuUsage();
  const deadline = performance.now() + 20 * ms;
  for (;;) {
    const u = cpuUsage(start);
    if ((u.user + u.system) / 1000 >= ms || performance.now() > deadline) return;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

// Deno sets signalCode as soon as kill() returns, before the child is reaped: wait for the
// "exit" event itself, subscribed at spawn time.
const exits = new WeakMap<ChildProcess, Promise<unknown>>();
function exited(child: ChildProcess): Promise<unknown> {
  return exits.get(child)!;
}

describe("thread sampling", { skip: !linux && "procfs is Linux-only" }, () => {
  it("lists the calling thread with its name and CPU time", () => {
    assert.ok(isProcfsAvailable());
    const tid = currentThreadId();
    assert.ok(tid !== null && tid > 0);
    const mine = listThreads().find((t) => t.tid === tid);
    assert.ok(mine, "own thread listed");
    assert.ok(mine.name.length > 0 && mine.name.length <= 15);
    assert.deepEqual(readThread(tid)?.tid, tid);
    assert.equal(readThread(2 ** 31 - 2), null);
  });

  it("converts ticks at 100 Hz (agrees with process.cpuUsage())", () => {
    assert.equal(CLOCK_TICKS_PER_SECOND, 100);
    const p0 = sampleProcess("self")!.cpuMs;
    const u0 = cpuUsage();
    burnCpu(250);
    const p1 = sampleProcess("self")!.cpuMs;
    const u = cpuUsage(u0);
    const usageMs = (u.user + u.system) / 1000;
    // Tick resolution is 10 ms; other threads add a little. A wrong HZ would be off by 2x+.
    assert.ok(Math.abs(p1 - p0 - usageMs) < 40 + usageMs * 0.2, `${p1 - p0} vs ${usageMs}`);
    assert.ok(usageMs >= 250, `burned ${usageMs} ms`);
  });

  describe("worker threads", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "bulkhead-tcpu-"));
      writeFileSync(
        join(dir, "worker.mjs"),
        `import { parentPort } from "node:worker_threads";
import { currentThreadId, readThread } from ${JSON.stringify(LIB)};
// Spin until this thread used ms of CPU, by its own procfs clock (capped at 20x in wall time).
parentPort.on("message", (ms) => {
  const tid = currentThreadId();
  const start = readThread(tid).cpuMs;
  const deadline = performance.now() + 20 * ms;
  while (readThread(tid).cpuMs - start < ms && performance.now() < deadline) {
    for (let i = 0; i < 1e5; i++);
  }
  parentPort.postMessage("done");
});
parentPort.postMessage({ tid: currentThreadId() });
`,
      );
      writeFileSync(
        join(dir, "web_worker.mjs"),
        `import { currentThreadId } from ${JSON.stringify(LIB)};
self.postMessage({ tid: currentThreadId() });
`,
      );
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    async function start(name: string): Promise<{ worker: Worker; tid: number }> {
      const worker = new Worker(new URL(pathToFileURL(join(dir, "worker.mjs")).href), { name });
      const msg = await new Promise<{ tid: number }>((resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
      });
      assert.ok(typeof msg.tid === "number", "worker reports its tid");
      return { worker, tid: msg.tid };
    }

    async function run(worker: Worker, ms: number): Promise<void> {
      worker.postMessage(ms);
      await new Promise((r) => worker.once("message", r));
    }

    it("attributes a worker's CPU time to the tid it reports from /proc/thread-self", async () => {
      const { worker, tid } = await start("bh-cpu");
      try {
        assert.notEqual(tid, currentThreadId());
        const sampler = new ThreadCpuSampler(tid);
        const mainBefore = readThread(currentThreadId()!)!.cpuMs;
        await run(worker, 200);
        const r = sampler.sample();
        assert.ok(r !== null);
        assert.ok(r.deltaMs >= 200, `worker delta ${r.deltaMs} ms`);
        // The main thread slept meanwhile: the burn is not attributed to it.
        assert.ok(readThread(currentThreadId()!)!.cpuMs - mainBefore < 150);
      } finally {
        await worker.terminate();
      }
      await waitFor("thread exit", () => readThread(tid) === null);
      assert.equal(new ThreadCpuSampler(tid).sample(), null);
    });

    it(
      "finds a Node/Bun worker by its `name` option (comm)",
      { skip: isDeno && "Deno ignores `name`: threads are worker-N" },
      async () => {
        const { worker, tid } = await start("bh-named-7");
        try {
          assert.deepEqual(findThreads("bh-named-7").map((t) => t.tid), [tid]);
        } finally {
          await worker.terminate();
        }
      },
    );

    it(
      "finds a Deno worker as the new worker-N thread after its ready message",
      { skip: !isDeno && "Deno-only naming" },
      async () => {
        const before = listThreads();
        const { worker, tid } = await start("ignored");
        try {
          const found = findNewThreads(before, { name: /^worker-\d+$/ });
          assert.deepEqual(found.map((t) => t.tid), [tid]);
          assert.equal(findThreads("ignored").length, 0);
        } finally {
          await worker.terminate();
        }
      },
    );

    it(
      "gets null from currentThreadId() in a Deno worker with restricted permissions",
      { skip: !isDeno && "Deno-only permission model" },
      async () => {
        // Deno requires "all" read access for /proc/thread-self, even with read: [that path].
        const WebWorker = (globalThis as unknown as { Worker: new (u: URL, o: object) => Worker })
          .Worker;
        const url = pathToFileURL(join(dir, "web_worker.mjs"));
        const w = new WebWorker(url, {
          type: "module",
          deno: { permissions: { read: [dir, "/proc/thread-self"] } },
        }) as unknown as {
          onmessage: (e: { data: { tid: number | null } }) => void;
          terminate(): void;
        };
        try {
          const msg = await new Promise<{ tid: number | null }>((
            r,
          ) => (w.onmessage = (e) => r(e.data)));
          assert.equal(msg.tid, null);
        } finally {
          w.terminate();
        }
      },
    );

    it(
      "Bun starts helper threads per worker (not attributed to it)",
      { skip: !isBun && "Bun-only behaviour" },
      async () => {
        const before = listThreads();
        const { worker, tid } = await start("bh-bun");
        try {
          const fresh = findNewThreads(before);
          assert.ok(fresh.some((t) => t.tid === tid));
          assert.ok(fresh.length >= 1);
        } finally {
          await worker.terminate();
        }
      },
    );
  });
});

describe("sampleProcess()", { skip: !linux && "procfs is Linux-only" }, () => {
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) {
      c.kill("SIGKILL"); // no-op for one already reaped
      await exited(c);
    }
  });

  async function spawnSleeper(script: string): Promise<ChildProcess> {
    const child = spawn("sh", ["-c", script], { stdio: "ignore" });
    exits.set(child, new Promise((r) => child.once("exit", r)));
    children.push(child);
    await waitFor("exec sleep", () => commOf(child.pid!) === "sleep");
    return child;
  }

  it("samples a live child holding extra fds", async () => {
    const child = await spawnSleeper(
      "exec 3</dev/null 4</dev/null 5</dev/null 6</dev/null 7</dev/null; exec sleep 30",
    );
    const s = sampleProcess(child.pid!);
    assert.ok(s !== null);
    assert.equal(s.pid, child.pid);
    assert.ok(s.fdCount >= 8, `fdCount ${s.fdCount}`); // 0-2 + 3-7
    assert.equal(s.threads, 1);
    assert.ok(s.rssBytes > 0 && s.rssBytes < 64 * 1024 * 1024, `rss ${s.rssBytes}`);
    assert.ok(s.peakRssBytes >= s.rssBytes);
    assert.ok("RSD".includes(s.state), s.state);
    assert.ok(s.cpuMs >= 0 && s.cpuMs < 1000);
    assert.equal(
      s.connectionCount,
      s.sockets.tcp + s.sockets.udp + s.sockets.tcp6 + s.sockets.udp6,
    );
    assert.equal(s.tcpConnections, undefined);
  });

  it("returns null once the process is gone", async () => {
    const child = await spawnSleeper("exec sleep 30");
    child.kill("SIGKILL");
    await exited(child);
    assert.equal(sampleProcess(child.pid!), null);
    assert.equal(sampleProcess(2 ** 22 + 12345), null);
  });

  it("returns null for a zombie", async () => {
    // sh forks "sleep 0" and execs into "sleep 30", which never reaps it.
    const parent = await spawnSleeper("sleep 0 & exec sleep 30");
    let zombie = 0;
    await waitFor("zombie child", () => {
      const kids = readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, "utf8").trim();
      zombie = Number(kids.split(" ")[0]);
      return zombie > 0 && readFileSync(`/proc/${zombie}/stat`, "utf8").includes(") Z ");
    });
    assert.equal(sampleProcess(zombie), null);
    assert.ok(sampleProcess(parent.pid!) !== null);
  });

  it("counts this process's own TCP connections with { tcp: true }", async () => {
    const server: Server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const client: Socket = connect(port, "127.0.0.1");
    try {
      await new Promise((r) => client.once("connect", r));
      await sleep(20);
      const s = sampleProcess("self", { tcp: true });
      assert.ok(s !== null);
      // Both ends live in this process; the listener is excluded.
      assert.ok((s.tcpConnections ?? 0) >= 2, `tcpConnections ${s.tcpConnections}`);
      assert.ok(s.connectionCount >= 3, `sockstat ${JSON.stringify(s.sockets)}`);
    } finally {
      client.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it("rejects a malformed pid", () => {
    assert.throws(() => sampleProcess(-1), RangeError);
    assert.throws(() => sampleProcess(1.5), RangeError);
  });
});
