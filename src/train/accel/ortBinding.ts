/**
 * Synchronous access to onnxruntime-node's native session.
 *
 * The public `InferenceSession.run` of onnxruntime-node returns a Promise, but
 * it only defers (setImmediate) a call to the native addon's `run`, which is
 * synchronous (onnxruntime/js/node/src/inference_session_wrap.cc). A tfjs
 * kernel must return synchronously, so we load the addon wrapper directly:
 *
 *   require("onnxruntime-node/dist/binding.js") -> { binding, initOrt }
 *   initOrt()                                   // once: creates the Ort::Env
 *   const s = new binding.InferenceSession()
 *   s.loadModel(arrayBuffer, byteOffset, byteLength, sessionOptions)
 *   s.run(feeds, fetches) -> { [outputName]: Tensor }   (blocks until done)
 *
 * Feeds are plain objects `{ type, data, dims, location: "cpu" }`; the addon
 * wraps `data`'s memory in an OrtValue without copying. A non-null fetch is a
 * pre-allocated output: ORT writes the graph output straight into its memory.
 * (The addon still returns a fresh copy of every fetched output, which we drop;
 * that memcpy is the one copy left on this path.)
 */
import { createRequire } from "node:module";

/** The tensor shape the native binding reads (tensor_helper.cc: NapiValueToOrtValue). */
export interface NativeTensor {
  type: "float32";
  data: Float32Array;
  dims: readonly number[];
  location: "cpu";
}

export interface NativeValueMetadata {
  name: string;
  isTensor: boolean;
  symbolicDimensions: string[];
  shape: number[];
  type: number;
}

export interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  readonly inputMetadata: NativeValueMetadata[];
  readonly outputMetadata: NativeValueMetadata[];
  run(feeds: Record<string, NativeTensor>, fetches: Record<string, NativeTensor | null>): Record<string, unknown>;
  dispose(): void;
}

interface BindingModule {
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
}

export interface SessionConfig {
  /** ORT intra-op threads (the calling thread counts as one). */
  intraOpThreads: number;
  /**
   * Let idle ORT worker threads spin-wait between parallel sections. Off by
   * default: the JS thread (and the single-threaded wasm kernels) run between
   * our calls, and spinning workers would steal their core.
   */
  allowSpinning: boolean;
  /** Module that exports `{ binding, initOrt }` (default DEFAULT_BINDING_MODULE). */
  bindingModule?: string;
}

export const DEFAULT_BINDING_MODULE = "onnxruntime-node/dist/binding.js";

type LoadResult = { ok: true; module: BindingModule } | { ok: false; reason: string };
const loadResults = new Map<string, LoadResult>();

/** Loads (once per module id) and initializes the native addon. Returns an error message instead of throwing. */
export function loadOrtBinding(moduleId: string = DEFAULT_BINDING_MODULE): LoadResult {
  let result = loadResults.get(moduleId);
  if (result !== undefined) return result;
  try {
    const require = createRequire(import.meta.url);
    const mod = require(moduleId) as Partial<BindingModule>;
    if (typeof mod.binding?.InferenceSession !== "function" || typeof mod.initOrt !== "function") {
      throw new Error(`${moduleId} does not export { binding.InferenceSession, initOrt }`);
    }
    mod.initOrt();
    result = { ok: true, module: mod as BindingModule };
  } catch (e) {
    result = { ok: false, reason: `onnxruntime-node native binding not loadable: ${e instanceof Error ? e.message : String(e)}` };
  }
  loadResults.set(moduleId, result);
  return result;
}

/** Creates a native session from serialized ONNX bytes (synchronous). */
export function createNativeSession(model: Uint8Array, config: SessionConfig): NativeSession {
  const b = loadOrtBinding(config.bindingModule);
  if (!b.ok) throw new Error(b.reason);
  const session = new b.module.binding.InferenceSession();
  session.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
    intraOpNumThreads: config.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    // The binding flattens nested keys of `extra` with "." into session config entries.
    extra: { session: { intra_op: { allow_spinning: config.allowSpinning ? "1" : "0" } } },
  });
  return session;
}
