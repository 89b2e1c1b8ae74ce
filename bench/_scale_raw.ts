// Raw baselines of bench/scale.bench.ts: a `node:worker_threads` worker echoing over a
// MessageChannel (bench/_echo_worker.ts), and a child process of the same runtime echoing over its
// stdin/stdout (bench/_scale_echo_child.ts). Both answer one `ping` at a time. A start ends after
// the first echo, as `host.load` ends after a round trip (init): a worker's first message pays for
// lazy set-up (tens of ms on Node) that would otherwise land in the ping-all figure.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

/** One started raw baseline. */
export interface Raw {
  /** Sends one message and resolves with the echo. */
  ping(): Promise<unknown>;
  /** Stops the worker or kills the child; resolves once it is gone. */
  close(): Promise<void>;
}

const echoWorkerUrl = new URL("./_echo_worker.ts", import.meta.url);
const echoChild = fileURLToPath(new URL("./_scale_echo_child.ts", import.meta.url));

/** Starts a raw worker; resolves after its first message ("ready"). */
export async function startRawWorker(): Promise<Raw> {
  const { port1, port2 } = new MessageChannel();
  const w = new Worker(echoWorkerUrl, {
    workerData: { port: port2 },
    transferList: [port2 as never],
  });
  try {
    await new Promise((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
      w.once(
        "exit",
        (code) => reject(new Error(`Cannot start raw worker: it exited with ${code}`)),
      );
    });
  } catch (e) {
    port1.close();
    await w.terminate();
    throw e;
  }
  let waiter: ((v: unknown) => void) | undefined;
  port1.addEventListener("message", (e: MessageEvent) => {
    const resolve = waiter;
    waiter = undefined;
    resolve?.((e.data as unknown[])[2]);
  });
  port1.start();
  let id = 0;
  const raw: Raw = {
    ping: () =>
      new Promise((resolve) => {
        waiter = resolve;
        port1.postMessage([0, ++id, "echo", ["ping"]]);
      }),
    close: async () => {
      port1.close();
      await w.terminate();
    },
  };
  await raw.ping();
  return raw;
}

/** Starts a raw child of the current runtime; resolves after it wrote "ready". */
export async function startRawChild(): Promise<Raw> {
  const args = process.versions.deno ? ["run", "-A", "--no-check", echoChild] : [echoChild];
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  let waiter: ((v: unknown) => void) | undefined;
  let onReady: (() => void) | undefined;
  child.stdout.on("data", (chunk: Uint8Array) => {
    if (onReady !== undefined) {
      const ready = onReady;
      onReady = undefined;
      ready();
      return;
    }
    const resolve = waiter;
    waiter = undefined;
    resolve?.(String(chunk));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      onReady = resolve;
      child.once("error", reject);
      child.once(
        "exit",
        (code, signal) =>
          reject(new Error(`Cannot start raw child: it exited with ${code ?? signal}`)),
      );
    });
  } catch (e) {
    child.kill("SIGKILL");
    await exited;
    throw e;
  }
  const raw: Raw = {
    ping: () =>
      new Promise((resolve) => {
        waiter = resolve;
        child.stdin.write("ping\n");
      }),
    close: async () => {
      child.stdin.end();
      child.kill("SIGKILL");
      await exited;
    },
  };
  await raw.ping();
  return raw;
}
