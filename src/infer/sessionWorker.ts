/**
 * Worker-thread side of InferenceService: holds one onnxruntime session per
 * loaded model version and runs jobs on them. onnxruntime-node's native run is
 * synchronous, so it blocks this thread, not the server's event loop.
 *
 * Messages are handled strictly one after another (a promise chain): ORT's
 * async wrappers yield between receiving a message and running, and an
 * "unload" must never overtake a "run" posted before it.
 *
 * The thread ends itself on "shutdown", after the run in progress: Node's
 * worker.terminate() while the addon is inside a run aborts the whole process
 * (the addon throws a C++ Napi::Error into a terminated environment).
 */
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { checkSessionContract, ModelBundleError, readVerifiedOnnx } from "./modelBundle.js";
import type { FromWorker, ToWorker, WireOutput, WorkerInit } from "./protocol.js";

if (!parentPort) throw new Error("sessionWorker must run in a worker thread");
const port = parentPort;
const { settings } = workerData as WorkerInit;
const sessions = new Map<number, ort.InferenceSession>();

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

async function load(m: Extract<ToWorker, { type: "load" }>): Promise<void> {
  const started = performance.now();
  try {
    const bytes = await readVerifiedOnnx(m.onnxPath, { sha256: m.sha256, bytes: m.bytes });
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: settings.intraOpThreads,
      // One sequential graph: parallelism comes from intra-op threads inside the big matmuls.
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      executionProviders: settings.executionProviders,
      // The binding flattens `extra` into session config entries ("session.intra_op.allow_spinning").
      extra: { session: { intra_op: { allow_spinning: settings.allowSpinning ? "1" : "0" } } },
    } as ort.InferenceSession.SessionOptions);
    try {
      checkSessionContract(m.onnxPath, m, session);
    } catch (err) {
      await session.release();
      throw err;
    }
    await sessions.get(m.version)?.release();
    sessions.set(m.version, session);
    post({ type: "loaded", version: m.version, loadMs: performance.now() - started });
  } catch (err) {
    post({ type: "loadFailed", version: m.version, message: err instanceof Error ? err.message : String(err), problem: err instanceof ModelBundleError ? err.problem : undefined });
  }
}

async function run(m: Extract<ToWorker, { type: "run" }>): Promise<void> {
  try {
    const session = sessions.get(m.version);
    if (!session) throw new Error(`model version ${m.version} is not loaded in this worker`);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(m.feeds)) {
      feeds[name] = t.type === "int32" ? new ort.Tensor("int64", BigInt64Array.from(t.data as Int32Array, (v) => BigInt(v)), t.dims) : new ort.Tensor("float32", t.data as Float32Array, t.dims);
    }
    const started = performance.now();
    const out = await session.run(feeds);
    const runMs = performance.now() - started;
    const outputs: Record<string, WireOutput> = {};
    const transfer: ArrayBuffer[] = [];
    for (const name of session.outputNames) {
      // A fresh copy: the tensor's memory belongs to the addon and may not be transferable.
      const data = Float32Array.from(out[name].data as Float32Array);
      outputs[name] = { data, dims: out[name].dims.map(Number) };
      transfer.push(data.buffer);
      out[name].dispose();
    }
    post({ type: "result", job: m.job, outputs, runMs }, transfer);
  } catch (err) {
    post({ type: "runFailed", job: m.job, message: err instanceof Error ? err.message : String(err) });
  }
}

async function handle(m: Exclude<ToWorker, { type: "shutdown" }>): Promise<void> {
  if (m.type === "load") return load(m);
  if (m.type === "run") return run(m);
  const s = sessions.get(m.version);
  sessions.delete(m.version);
  await s?.release();
}

let chain: Promise<void> = Promise.resolve();
let shuttingDown = false;
port.on("message", (m: ToWorker) => {
  if (m.type === "shutdown") {
    // Runs still queued here are dropped: the service has already answered their calls.
    shuttingDown = true;
    chain = chain.then(async () => {
      for (const s of sessions.values()) await s.release();
      sessions.clear();
      // Exiting from JS, between native calls: unlike worker.terminate() during a run, this is always safe.
      process.exit(0);
    });
    return;
  }
  chain = chain.then(() => (shuttingDown ? undefined : handle(m)));
});
