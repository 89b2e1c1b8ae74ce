// Raw baseline: a worker that echoes every message on the port it was given.
import { parentPort, workerData } from "node:worker_threads";

const port = (workerData as { port: MessagePort }).port;
port.addEventListener("message", (e: MessageEvent) => {
  const [, id, , payload] = e.data as [number, number, string, unknown];
  port.postMessage([id, 1, payload]);
});
port.start();
parentPort?.postMessage("ready");
