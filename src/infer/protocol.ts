/** Messages between InferenceService (main thread) and its session workers (sessionWorker.ts). */

/** onnxruntime session settings a worker applies to every model it loads. */
export interface SessionSettings {
  /** ORT intra-op threads per session (the worker's own thread counts as one). */
  intraOpThreads: number;
  /** Let idle ORT pool threads spin between parallel sections (burns CPU the main thread may need). */
  allowSpinning: boolean;
  /** onnxruntime execution providers in order of preference, e.g. ["cuda", "cpu"]. */
  executionProviders: string[];
}

/** One input tensor as sent to a worker (title ids go as int32 and become int64 there). */
export interface WireTensor {
  type: "float32" | "int32";
  data: Float32Array | Int32Array;
  dims: number[];
}

export interface WireOutput {
  data: Float32Array;
  dims: number[];
}

export type ToWorker =
  /** Load model `version` from `onnxPath`, which must hash to `sha256` (checked in the worker, off the main thread). */
  | { type: "load"; version: number; onnxPath: string; sha256: string; bytes: number; inputs: string[]; outputs: string[] }
  | { type: "unload"; version: number }
  /** Finish the run in progress, drop queued ones, release the sessions and exit the thread. */
  | { type: "shutdown" }
  | { type: "run"; job: number; version: number; feeds: Record<string, WireTensor> };

export type FromWorker =
  | { type: "loaded"; version: number; loadMs: number }
  | { type: "loadFailed"; version: number; message: string; problem?: string }
  | { type: "result"; job: number; outputs: Record<string, WireOutput>; runMs: number }
  | { type: "runFailed"; job: number; message: string };

export interface WorkerInit {
  settings: SessionSettings;
}
