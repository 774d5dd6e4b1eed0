/**
 * Faster tfjs `wasm` kernels for the element-wise work that remains once the
 * matrix products run on onnxruntime (ortMatMul.ts), working in place on the
 * wasm heap. Each one gives bit-for-bit the stock result (same float32
 * operations in the same order), so switching them on changes speed only:
 *
 * - `Tile` (JavaScript): the stock C++ kernel computes a multi-index per
 *   element (~50 ns each); `tf.where`/broadcasts in the NeXtVLAD forward and
 *   batch-norm gradients tile [1024,1] → [1024,1024] and the like, ~150 ms
 *   per benchmark step. Here: contiguous block copies, then doubling
 *   `copyWithin`.
 * - `Sum` over leading axes (bias gradients, [N,C] → [C]; SIMD module): the
 *   stock kernel transposes first. Here: rows added in float32 in the stock
 *   order, four columns at a time.
 * - `Identity`: the stock kernel copies; tensors are immutable (no kernel
 *   writes into an input), so the output shares the input's memory with a
 *   reference count, as the stock `Reshape` and tfjs' cpu backend do.
 *   Gradients call it hundreds of times per step.
 * - `VidrecallAdamUpdate` (SIMD module): a kernel of our own (there is no
 *   stock one) doing one parameter's whole Adam/AdamW update in one pass
 *   instead of ~15 tensor ops and their intermediates; optimizer.ts uses it
 *   when the current backend has it (see ADAM_UPDATE_KERNEL).
 * - `VidrecallSumSquares` (SIMD module): Σx² of a gradient for the global
 *   norm, one pass instead of Square then Sum.
 *
 * The SIMD module (simdModule.ts) shares the backend's WebAssembly.Memory.
 * Where it cannot load, only Tile is replaced.
 */
import * as tf from "@tensorflow/tfjs";
import { util } from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { instantiateSimd, type SimdExports } from "./simdModule.js";

/** Name of the fused Adam kernel (registered for the wasm backend while these kernels are on). */
export const ADAM_UPDATE_KERNEL = "VidrecallAdamUpdate";
/** Name of the Σx² kernel (scalar float32 result; the same as tf.sum(tf.square(x))). */
export const SUM_SQUARES_KERNEL = "VidrecallSumSquares";

/** Attributes of ADAM_UPDATE_KERNEL; every number is used as the float32 scalar the op chain would use. */
export interface AdamUpdateAttrs {
  /** Gradient multiplier (clipping). */
  scale: number;
  learningRate: number;
  beta1: number;
  beta2: number;
  /** 1 − β₁ᵗ and 1 − β₂ᵗ. */
  biasCorrection1: number;
  biasCorrection2: number;
  epsilon: number;
  weightDecay: number;
  /** "adam": L2 term added to the gradient; "adamw": decoupled decay added to the update; "none". */
  decay: "none" | "adam" | "adamw";
}

const REPLACED = ["Tile", "Sum", "Identity"] as const;
type ReplacedName = (typeof REPLACED)[number];

const stockKernels = new Map<ReplacedName, tf.KernelConfig>();
let enabled = false;
/** The SIMD module per backend memory (a re-initialised backend has a new one); null: cannot load. */
const simdByMemory = new WeakMap<WebAssembly.Memory, SimdExports | null>();
let simdReason: string | undefined;

type KernelArgs = Parameters<tf.KernelFunc>[0];
type HeapArray = Float32Array | Int32Array | Uint8Array;

export interface WasmKernelStats {
  /** Calls handled here, per kernel, and calls handed back to the stock kernel. */
  calls: Record<string, number>;
  stockCalls: Record<string, number>;
}
const stats: WasmKernelStats = { calls: {}, stockCalls: {} };

function count(table: Record<string, number>, name: string): void {
  table[name] = (table[name] ?? 0) + 1;
}

function isWasmBackend(backend: unknown): backend is BackendWasm {
  const b = backend as Partial<BackendWasm> | null;
  return typeof b?.makeOutput === "function" && typeof b.typedArrayFromHeap === "function";
}

/** The Emscripten module's exported memory (not in tfjs-backend-wasm's typings). */
function memoryOf(backend: BackendWasm): WebAssembly.Memory | undefined {
  const m = (backend.wasm as unknown as { asm?: { memory?: unknown } } | undefined)?.asm?.memory;
  return m instanceof WebAssembly.Memory ? m : undefined;
}

/** The SIMD module over this backend's heap, or null (with simdReason set). */
function simdFor(backend: BackendWasm): SimdExports | null {
  const memory = memoryOf(backend);
  if (memory === undefined) {
    simdReason = "the wasm backend does not expose its WebAssembly.Memory";
    return null;
  }
  let s = simdByMemory.get(memory);
  if (s === undefined) {
    const r = instantiateSimd(memory);
    s = "exports" in r ? r.exports : null;
    if (!("exports" in r)) simdReason = r.reason;
    simdByMemory.set(memory, s);
  }
  return s;
}

/** Byte offset of a tensor's data in the heap. */
function offsetOf(backend: BackendWasm, t: tf.TensorInfo): number {
  const off = (backend.dataIdMap.get(t.dataId) as { memoryOffset?: number | null } | undefined)?.memoryOffset;
  if (typeof off !== "number") throw new Error("tensor data is not on the wasm heap");
  return off;
}

function delegate(name: ReplacedName, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  count(stats.stockCalls, name);
  const stock = stockKernels.get(name);
  if (stock === undefined) throw new Error(`stock wasm kernel ${name} missing`);
  return stock.kernelFunc(args);
}

// ---------------------------------------------------------------------------
// Tile

/**
 * Drops size-1 axes that are not repeated and merges an axis into the one
 * before it when it is not repeated (its block is then contiguous in both
 * input and output). The result tiles the same memory the same way.
 */
export function simplifyTile(shape: readonly number[], reps: readonly number[]): { shape: number[]; reps: number[] } {
  const s: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1 && reps[i] === 1) continue;
    if (reps[i] === 1 && s.length > 0) {
      s[s.length - 1] *= shape[i];
      continue;
    }
    s.push(shape[i]);
    r.push(reps[i]);
  }
  if (s.length === 0) return { shape: [1], reps: [1] };
  return { shape: s, reps: r };
}

/** Writes tile(src, reps) (row-major, `shape` the source shape) into dst. */
export function tileInto(src: HeapArray, shape: readonly number[], reps: readonly number[], dst: HeapArray): void {
  const rank = shape.length;
  const inStride = new Array<number>(rank);
  const outStride = new Array<number>(rank);
  let si = 1;
  let so = 1;
  for (let d = rank - 1; d >= 0; d--) {
    inStride[d] = si;
    outStride[d] = so;
    si *= shape[d];
    so *= shape[d] * reps[d];
  }
  const fill = (d: number, inOff: number, outOff: number): void => {
    const n = shape[d];
    let block: number;
    if (d === rank - 1) {
      if (n === 1) {
        dst.fill(src[inOff], outOff, outOff + reps[d]);
        return;
      }
      dst.set(src.subarray(inOff, inOff + n), outOff);
      block = n;
    } else {
      for (let i = 0; i < n; i++) fill(d + 1, inOff + i * inStride[d], outOff + i * outStride[d]);
      block = n * outStride[d];
    }
    // Replicate the first copy reps−1 times, doubling the copied span each time.
    const total = block * reps[d];
    for (let done = block; done < total; ) {
      const len = Math.min(done, total - done);
      dst.copyWithin(outOff + done, outOff, outOff + len);
      done += len;
    }
  };
  fill(0, 0, 0);
}

function tileKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs;
  const reps = (args.attrs?.reps ?? []) as number[];
  const backend = args.backend;
  if (!enabled || x === undefined || !isWasmBackend(backend) || !["float32", "int32", "bool"].includes(x.dtype) || reps.length !== x.shape.length) {
    return delegate("Tile", args);
  }
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (outShape.every((d) => d > 0)) {
    // Views after makeOutput: a malloc may grow (and so detach) the heap.
    const src = backend.typedArrayFromHeap(x) as HeapArray;
    const dst = backend.typedArrayFromHeap(out) as HeapArray;
    const t = simplifyTile(x.shape, reps);
    tileInto(src, t.shape, t.reps, dst);
  }
  count(stats.calls, "Tile");
  return out;
}

// ---------------------------------------------------------------------------
// Identity

function identityKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs;
  const backend = args.backend;
  if (!enabled || x === undefined || !isWasmBackend(backend) || !["float32", "int32", "bool"].includes(x.dtype)) return delegate("Identity", args);
  backend.incRef(x.dataId);
  count(stats.calls, "Identity");
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

// ---------------------------------------------------------------------------
// Sum over leading axes

/**
 * For a float32 sum whose reduced axes are, ignoring size-1 axes, a leading
 * block: the input seen as [rows, cols] summed over rows. null otherwise
 * (including when the reduced axes are already innermost: the stock kernel
 * needs no transpose then).
 */
export function leadingReduction(shape: readonly number[], axes: readonly number[]): { rows: number; cols: number } | null {
  const reduced = new Set(axes.map((a) => (a < 0 ? a + shape.length : a)));
  let rows = 1;
  let cols = 1;
  let inKept = false;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    if (reduced.has(i)) {
      if (inKept) return null;
      rows *= shape[i];
    } else {
      inKept = true;
      cols *= shape[i];
    }
  }
  if (rows === 1 || cols === 1) return null;
  return { rows, cols };
}

function sumKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs;
  const backend = args.backend;
  if (!enabled || x === undefined || x.dtype !== "float32" || !isWasmBackend(backend)) return delegate("Sum", args);
  const simd = simdFor(backend);
  if (simd === null) return delegate("Sum", args);
  const rank = x.shape.length;
  const axisAttr = args.attrs?.axis as number | number[] | null | undefined;
  const axes = axisAttr === null || axisAttr === undefined ? x.shape.map((_, i) => i) : Array.isArray(axisAttr) ? axisAttr : [axisAttr];
  if (axes.some((a) => !Number.isInteger(a) || a < -rank || a >= rank)) return delegate("Sum", args);
  const plan = leadingReduction(x.shape, axes);
  if (plan === null) return delegate("Sum", args);
  const reduced = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const outShape = args.attrs?.keepDims === true ? x.shape.map((d, i) => (reduced.has(i) ? 1 : d)) : x.shape.filter((_, i) => !reduced.has(i));
  const out = backend.makeOutput(outShape, "float32");
  simd.sum_rows(offsetOf(backend, x), offsetOf(backend, out), plan.rows, plan.cols);
  count(stats.calls, "Sum");
  return out;
}

// ---------------------------------------------------------------------------
// Adam

function adamKernel(args: KernelArgs): tf.TensorInfo[] {
  const { p, m, v, g } = args.inputs;
  const backend = args.backend;
  if (!isWasmBackend(backend)) throw new Error(`${ADAM_UPDATE_KERNEL} runs on the wasm backend only`);
  for (const [name, t] of [
    ["p", p],
    ["m", m],
    ["v", v],
    ["g", g],
  ] as const) {
    if (t === undefined || t.dtype !== "float32") throw new Error(`${ADAM_UPDATE_KERNEL}: input ${name} must be a float32 tensor`);
    if (t.shape.length !== p!.shape.length || t.shape.some((d, i) => d !== p!.shape[i])) {
      throw new Error(`${ADAM_UPDATE_KERNEL}: input ${name} has shape [${t.shape}], p has [${p!.shape}]`);
    }
  }
  const simd = simdFor(backend);
  if (simd === null) throw new Error(`${ADAM_UPDATE_KERNEL}: ${simdReason}`);
  const a = args.attrs as unknown as AdamUpdateAttrs;
  const run = a.decay === "none" ? simd.adam_none : a.decay === "adam" ? simd.adam_l2 : a.decay === "adamw" ? simd.adam_w : null;
  if (run === null) throw new Error(`${ADAM_UPDATE_KERNEL}: unknown decay ${String(a.decay)}`);
  const outs = [backend.makeOutput(p!.shape, "float32"), backend.makeOutput(p!.shape, "float32"), backend.makeOutput(p!.shape, "float32")];
  const at = (t: tf.TensorInfo): number => offsetOf(backend, t);
  // The f32 parameters are rounded to float32 by the call, as tfjs rounds scalar operands.
  run(at(p!), at(m!), at(v!), at(g!), at(outs[0]), at(outs[1]), at(outs[2]), util.sizeFromShape(p!.shape),
    a.scale, a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.biasCorrection1, a.biasCorrection2, a.epsilon, a.weightDecay, a.learningRate);
  count(stats.calls, ADAM_UPDATE_KERNEL);
  return outs;
}

function sumSquaresKernel(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs;
  const backend = args.backend;
  if (!isWasmBackend(backend)) throw new Error(`${SUM_SQUARES_KERNEL} runs on the wasm backend only`);
  if (x === undefined || x.dtype !== "float32") throw new Error(`${SUM_SQUARES_KERNEL}: x must be a float32 tensor`);
  const simd = simdFor(backend);
  if (simd === null) throw new Error(`${SUM_SQUARES_KERNEL}: ${simdReason}`);
  const n = util.sizeFromShape(x.shape);
  const value = n === 0 ? 0 : simd.sum_squares(offsetOf(backend, x), n);
  const out = backend.makeOutput([], "float32");
  (backend.typedArrayFromHeap(out) as Float32Array)[0] = value;
  count(stats.calls, SUM_SQUARES_KERNEL);
  return out;
}

/** Our own kernels (no stock counterpart), registered only with the SIMD module. */
const OWN_KERNELS: Array<[string, tf.KernelFunc]> = [
  [ADAM_UPDATE_KERNEL, adamKernel as tf.KernelFunc],
  [SUM_SQUARES_KERNEL, sumSquaresKernel as tf.KernelFunc],
];

// ---------------------------------------------------------------------------
// Public API

const KERNEL_FUNCS: Record<ReplacedName, tf.KernelFunc> = { Tile: tileKernel, Sum: sumKernel, Identity: identityKernel };

/**
 * Registers the kernels above for the wasm backend (the stock Tile, Sum and
 * Identity stay reachable for what these do not handle; call after the wasm backend is
 * initialised). Returns enabled false and why when the wasm backend's kernels
 * are not registered, and simd false and why when only Tile is replaced.
 * Idempotent.
 */
export function enableWasmKernels(): { enabled: boolean; simd: boolean; reason?: string } {
  const backend = tf.findBackend("wasm");
  const simd = isWasmBackend(backend) && simdFor(backend) !== null;
  if (enabled) return { enabled: true, simd, reason: simd ? undefined : simdReason };
  for (const name of REPLACED) {
    if (!stockKernels.has(name)) {
      const k = tf.getKernel(name, "wasm");
      if (k === undefined) return { enabled: false, simd: false, reason: `no wasm kernel ${name} registered (import "@tensorflow/tfjs-backend-wasm")` };
      stockKernels.set(name, k);
    }
  }
  for (const name of REPLACED) {
    const stock = stockKernels.get(name) as tf.KernelConfig;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: KERNEL_FUNCS[name], setupFunc: stock.setupFunc, disposeFunc: stock.disposeFunc });
  }
  if (simd) {
    for (const [kernelName, kernelFunc] of OWN_KERNELS) {
      if (tf.getKernel(kernelName, "wasm") === undefined) tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc });
    }
  }
  enabled = true;
  return { enabled: true, simd, reason: simd ? undefined : simdReason };
}

/** Restores the stock Tile, Sum and Identity and removes our own kernels. No-op when not enabled. */
export function disableWasmKernels(): void {
  if (!enabled) return;
  for (const name of REPLACED) {
    const stock = stockKernels.get(name);
    if (stock === undefined) continue;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(stock);
  }
  for (const [kernelName] of OWN_KERNELS) if (tf.getKernel(kernelName, "wasm") !== undefined) tf.unregisterKernel(kernelName, "wasm");
  enabled = false;
}

export function isWasmKernelsEnabled(): boolean {
  return enabled;
}

/** Counters since the last reset (kept across enable/disable). */
export function wasmKernelStats(): WasmKernelStats {
  return { calls: { ...stats.calls }, stockCalls: { ...stats.stockCalls } };
}

export function resetWasmKernelStats(): void {
  stats.calls = {};
  stats.stockCalls = {};
}
