/** Worker-thread entry of the YouTube-8M import pipeline (see yt8mParse.ts). */
import { parentPort, workerData } from "node:worker_threads";
import { MAX_MESSAGES_IN_FLIGHT, runParseWorker, type WorkerInput } from "./yt8mParse.js";

if (!parentPort) throw new Error("yt8mParseWorker must run in a worker thread");
const port = parentPort;
let credits = MAX_MESSAGES_IN_FLIGHT;
let waiter: (() => void) | undefined;
port.on("message", () => {
  // One credit back per chunk the main thread took.
  if (waiter) {
    const w = waiter;
    waiter = undefined;
    w();
  } else credits++;
});
const acquireCredit = () =>
  new Promise<void>((resolve) => {
    if (credits > 0) {
      credits--;
      resolve();
    } else waiter = resolve;
  });

runParseWorker(workerData as WorkerInput, (m, transfer) => port.postMessage(m, transfer), acquireCredit)
  .catch((err: unknown) => port.postMessage({ kind: "fatal", message: err instanceof Error ? err.message : String(err) }))
  .finally(() => port.close());
