/**
 * One monitor pass over 100 live child processes with sampleProcess() (each sampled on its own)
 * and sampleProcesses() (sockstat read once per network namespace), against a raw baseline
 * (one readFileSync of /proc/<pid>/stat per process) measured in the same run, and the cost of
 * reading /proc/<pid>/net/tcp that sampleProcess() avoids by default.
 *
 * Run: `node bench/monitor.bench.ts`, `bun bench/monitor.bench.ts` or
 * `deno run -A bench/monitor.bench.ts`.
 * Target: < 5 ms per pass of 100 processes.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { platform, versions } from "node:process";
import { sampleProcess, sampleProcesses } from "../lib/thread_cpu.ts";

const CHILDREN = 100;
const PASSES = 30;
const TCP_SAMPLES = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median and minimum ms of PASSES timed passes (the VM is shared: the minimum is the floor). */
function timePasses(pass: () => void): { med: number; min: number } {
  pass(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < PASSES; i++) {
    const t0 = performance.now();
    pass();
    times.push(performance.now() - t0);
  }
  return { med: median(times), min: Math.min(...times) };
}

const fmt = (t: { med: number; min: number }) =>
  `${t.med.toFixed(2)} ms/pass (min ${t.min.toFixed(2)})`;

async function main(): Promise<void> {
  if (platform !== "linux") {
    console.log("monitor.bench: procfs is Linux-only; nothing to measure on", platform);
    return;
  }
  const runtime = "deno" in versions
    ? `deno ${versions.deno}`
    : "bun" in versions
    ? `bun ${versions.bun}`
    : `node ${versions.node}`;
  const children: ChildProcess[] = [];
  const exits: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < CHILDREN; i++) {
      const c = spawn("sleep", ["30"], { stdio: "ignore" });
      children.push(c);
      exits.push(new Promise((r) => c.once("exit", r)));
    }
    const pids = children.map((c) => c.pid!);
    // Wait until every child has exec'd sleep (spawn returns before exec in some runtimes).
    for (const pid of pids) {
      for (let i = 0; i < 200; i++) {
        try {
          if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "sleep") break;
        } catch { /* not yet visible */ }
        await new Promise((r) => setTimeout(r, 5));
      }
    }

    let missing = 0;
    // Raw floor: one open/read/close of /proc/<pid>/stat per process into a reused buffer.
    const buf = new Uint8Array(4096);
    const raw = timePasses(() => {
      for (const pid of pids) {
        const fd = openSync(`/proc/${pid}/stat`, "r");
        readSync(fd, buf, 0, buf.length, null);
        closeSync(fd);
      }
    });
    const single = timePasses(() => {
      missing = 0;
      for (const pid of pids) if (sampleProcess(pid) === null) missing++;
    });

    const batch = timePasses(() => {
      missing = 0;
      for (const s of sampleProcesses(pids).values()) if (s === null) missing++;
    });

    const tcpPids = pids.slice(0, TCP_SAMPLES);
    const tcpReads: number[] = [];
    const tcpSamples: number[] = [];
    for (const pid of tcpPids) {
      let t0 = performance.now();
      readFileSync(`/proc/${pid}/net/tcp`, "latin1");
      tcpReads.push(performance.now() - t0);
      t0 = performance.now();
      sampleProcess(pid, { tcp: true });
      tcpSamples.push(performance.now() - t0);
    }

    const perProcUs = (single.med / CHILDREN) * 1000;
    const tcpReadMs = median(tcpReads);
    const target = (t: { med: number }) => (t.med < 5 ? "met" : "MISSED");
    console.log(`monitor.bench (${runtime}), ${CHILDREN} children, ${PASSES} passes`);
    console.log(`  raw floor (open+read+close stat): ${fmt(raw)}`);
    console.log(
      `  sampleProcess() each:   ${fmt(single)}, ${perProcUs.toFixed(1)} µs/process, ` +
        `${(single.med / raw.med).toFixed(1)}x raw; target < 5 ms ${target(single)}`,
    );
    console.log(
      `  sampleProcesses():      ${fmt(batch)}, sockstat once per netns, ` +
        `${(batch.med / raw.med).toFixed(1)}x raw; target < 5 ms ${target(batch)}`,
    );
    if (missing > 0) console.log(`  (${missing} children were gone during a pass)`);
    console.log(
      `  read /proc/<pid>/net/tcp: ${tcpReadMs.toFixed(2)} ms/read (median of ${TCP_SAMPLES}), ` +
        `${(tcpReadMs * 1000 / perProcUs).toFixed(0)}x a whole sampleProcess()`,
    );
    console.log(
      `  sampleProcess({ tcp: true }): ${median(tcpSamples).toFixed(2)} ms/process ` +
        `(readlink every fd + read tcp and tcp6)`,
    );
  } finally {
    for (const c of children) c.kill("SIGKILL");
    await Promise.all(exits);
  }
}

await main();
