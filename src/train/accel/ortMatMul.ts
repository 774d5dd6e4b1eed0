/**
 * tfjs `wasm` kernels for BatchMatMul and _FusedMatMul that run the product on
 * onnxruntime's native CPU kernels (MLAS sgemm), synchronously.
 *
 * Why: in wasm training runs, matrix products take >95% of the time at a few
 * GFLOP/s (the stock kernel is much slower still when an operand is
 * transposed, which every backward pass does); ORT's sgemm does 100+ GFLOP/s
 * on the same cores.
 *
 * How: the kernel allocates the tfjs output on the wasm heap
 * (`backend.makeOutput`), wraps views of the input and output heap regions as
 * ORT tensors (no copy: the addon borrows their memory) and calls the native
 * session's synchronous `run` with the output pre-allocated, so ORT writes the
 * result straight into the tfjs tensor. Gradients of matMul / fused matMul are
 * matMuls too, so forward and backward both come here. Products below
 * `minFlops` go to the stock kernel, where the ~10-30 µs ORT call overhead
 * would dominate.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { FUSED_ACTIVATIONS, IO, buildMatMulModel, matMulModelKey, type FusedActivation, type MatMulModelSpec } from "./matMulModel.js";
import { DEFAULT_BINDING_MODULE, createNativeSession, loadOrtBinding, type NativeSession, type NativeTensor, type SessionConfig } from "./ortBinding.js";

export interface OrtMatMulOptions {
  /** ORT intra-op threads per product (default 2; the calling thread is one of them). */
  threads?: number;
  /** Products with fewer FLOPs (2·batch·M·N·K) use the stock wasm kernel (default DEFAULT_MIN_FLOPS). */
  minFlops?: number;
  /**
   * The same threshold for products with a transposed operand, where the stock
   * kernel is ~10x slower (default min(minFlops, DEFAULT_MIN_FLOPS_TRANSPOSED)).
   */
  minFlopsTransposed?: number;
  /** Let ORT worker threads spin between parallel sections (default false; see SessionConfig). */
  allowSpinning?: boolean;
  /**
   * Borrow the wasm heap directly (default true). false copies inputs out of
   * and the result into the heap; that path is used automatically when the
   * heap is a SharedArrayBuffer (threaded wasm build), which the addon cannot
   * borrow.
   */
  zeroCopy?: boolean;
  /** Module that exports the native binding (for tests of the fallback). */
  bindingModule?: string;
}

export interface OrtMatMulStatus {
  enabled: boolean;
  reason?: string;
}

export interface OrtMatMulStats {
  /** Products run by ORT, their FLOPs and wall time inside `run`. */
  ortCalls: number;
  ortFlops: number;
  ortMs: number;
  /** Products handed to the stock kernel (small, unsupported or non-float32). */
  stockCalls: number;
}

/**
 * Crossovers measured with bench/accel-matmul.ts (square products, 2 ORT
 * threads, 2-core VM): an ORT call costs ~15-25 µs, so without transposes the
 * stock kernel (XNNPACK) wins up to n≈64 (5.2e5 FLOPs: 38 vs 37 µs); with a
 * transposed operand it is ~10x slower and ORT wins from n≈24 (2.8e4 FLOPs).
 */
export const DEFAULT_MIN_FLOPS = 1 << 19;
export const DEFAULT_MIN_FLOPS_TRANSPOSED = 1 << 15;

const KERNEL_NAMES = ["BatchMatMul", "_FusedMatMul"] as const;
type KernelName = (typeof KERNEL_NAMES)[number];

interface State {
  config: SessionConfig;
  minFlops: number;
  minFlopsTransposed: number;
  zeroCopy: boolean;
  sessions: Map<string, NativeSession>;
}

let state: State | null = null;
/** The stock wasm kernel configs, captured the first time we replace them. */
const stockKernels = new Map<KernelName, tf.KernelConfig>();
const stats: OrtMatMulStats = { ortCalls: 0, ortFlops: 0, ortMs: 0, stockCalls: 0 };

// ---------------------------------------------------------------------------
// Shape planning

function prod(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

function sameDims(x: readonly number[], y: readonly number[]): boolean {
  return x.length === y.length && x.every((d, i) => d === y[i]);
}

/** numpy broadcast of two shapes, or null if incompatible. */
export function broadcastShapes(x: readonly number[], y: readonly number[]): number[] | null {
  const n = Math.max(x.length, y.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const dx = x[x.length - n + i] ?? 1;
    const dy = y[y.length - n + i] ?? 1;
    if (dx !== dy && dx !== 1 && dy !== 1) return null;
    out[i] = dx === 1 ? dy : dx;
  }
  return out;
}

export interface ProductPlan {
  /** Rank of the a/b/y tensors as ORT sees them. */
  rank: number;
  aDims: number[];
  bDims: number[];
  /** Output dims as ORT sees them (same element order as outShape). */
  outDims: number[];
  /** Output shape tfjs expects. */
  outShape: number[];
  m: number;
  n: number;
  flops: number;
}

/**
 * Maps a tfjs product to ORT dims without moving data: batch dims collapse to
 * one (tfjs tensors are dense row-major), and with an unbatched, untransposed
 * b the batch folds into M so ORT runs one large GEMM instead of many small
 * ones. Returns null for what we leave to the stock kernel (rank < 2,
 * mismatched inner dims - the stock kernel throws the canonical error -,
 * incompatible batch dims, empty outputs).
 */
export function planProduct(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
  allowFoldBatchIntoM: boolean,
): ProductPlan | null {
  const rA = aShape.length;
  const rB = bShape.length;
  if (rA < 2 || rB < 2) return null;
  const k = transposeA ? aShape[rA - 2] : aShape[rA - 1];
  const kB = transposeB ? bShape[rB - 1] : bShape[rB - 2];
  const m = transposeA ? aShape[rA - 1] : aShape[rA - 2];
  const n = transposeB ? bShape[rB - 2] : bShape[rB - 1];
  if (k !== kB) return null;
  const batchDimsA = aShape.slice(0, -2);
  const batchDimsB = bShape.slice(0, -2);
  const outBatch = broadcastShapes(batchDimsA, batchDimsB);
  if (outBatch === null) return null;
  const outShape = [...outBatch, m, n];
  const batch = prod(outBatch);
  if (batch * m * n === 0 || k === 0) return null;
  const flops = 2 * batch * m * n * k;
  const a2 = aShape.slice(-2);
  const b2 = bShape.slice(-2);
  const bA = prod(batchDimsA);
  const bB = prod(batchDimsB);

  if (bB === 1 && !transposeA && allowFoldBatchIntoM) {
    return { rank: 3, aDims: [1, bA * m, k], bDims: [1, ...b2], outDims: [1, bA * m, n], outShape, m, n, flops };
  }
  if ((bA === batch || bA === 1) && (bB === batch || bB === 1)) {
    // Each side is either the full batch (its batch dims equal the output's up
    // to leading 1s) or a single matrix broadcast over it.
    return { rank: 3, aDims: [bA, ...a2], bDims: [bB, ...b2], outDims: [batch, m, n], outShape, m, n, flops };
  }
  // Genuine multi-axis broadcast, e.g. [2,1,M,K]×[1,3,K,N]: keep every axis.
  const pad = (dims: number[]): number[] => [...new Array<number>(outBatch.length - dims.length).fill(1), ...dims];
  const rank = outShape.length;
  return { rank, aDims: [...pad(batchDimsA), ...a2], bDims: [...pad(batchDimsB), ...b2], outDims: outShape, outShape, m, n, flops };
}

/**
 * ORT dims for a bias / PRelu slope so that ORT's broadcast against the ORT
 * output matches tfjs' broadcast against the tfjs output, or null (→ stock).
 * Row vectors ([N], [1,N], [1,1,N], scalars) broadcast over the last axis only
 * and survive any batch folding; other shapes need the unfolded output.
 */
export function epilogueOperandDims(shape: readonly number[], plan: ProductPlan): number[] | null {
  if (shape.length === 0) return [];
  const last = shape[shape.length - 1];
  if (shape.slice(0, -1).every((d) => d === 1)) return last === plan.n || last === 1 ? [last] : null;
  if (!sameDims(plan.outDims, plan.outShape)) return null;
  const bc = broadcastShapes(plan.outDims, shape);
  return bc !== null && sameDims(bc, plan.outDims) ? [...shape] : null;
}

// ---------------------------------------------------------------------------
// Running a product on ORT

function sessionFor(st: State, spec: MatMulModelSpec): NativeSession {
  const key = matMulModelKey(spec);
  let s = st.sessions.get(key);
  if (s === undefined) {
    s = createNativeSession(buildMatMulModel(spec), st.config);
    st.sessions.set(key, s);
  }
  return s;
}

function tensor(data: Float32Array, dims: number[]): NativeTensor {
  return { type: "float32", data, dims, location: "cpu" };
}

interface Operand {
  info: tf.TensorInfo;
  dims: number[];
}

function runOnOrt(
  st: State,
  backend: BackendWasm,
  spec: MatMulModelSpec,
  plan: ProductPlan,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  extra: { bias?: Operand; slope?: Operand },
): tf.TensorInfo {
  const session = sessionFor(st, spec);
  // Allocate first: _malloc may grow wasm memory, which detaches earlier views.
  const out = backend.makeOutput(plan.outShape, "float32");
  try {
    const zeroCopy = st.zeroCopy && heapOf(backend) instanceof ArrayBuffer;
    const view = (info: tf.TensorInfo): Float32Array => {
      const v = backend.typedArrayFromHeap(info) as Float32Array;
      return zeroCopy ? v : v.slice();
    };
    const feeds: Record<string, NativeTensor> = {
      [IO.a]: tensor(view(a), plan.aDims),
      [IO.b]: tensor(view(b), plan.bDims),
    };
    if (extra.bias !== undefined) feeds[IO.bias] = tensor(view(extra.bias.info), extra.bias.dims);
    if (extra.slope !== undefined) feeds[IO.slope] = tensor(view(extra.slope.info), extra.slope.dims);
    const t0 = performance.now();
    if (zeroCopy) {
      session.run(feeds, { [IO.y]: tensor(backend.typedArrayFromHeap(out) as Float32Array, plan.outDims) });
    } else {
      const res = session.run(feeds, { [IO.y]: null })[IO.y] as { data: Float32Array } | undefined;
      if (res === undefined) throw new Error("ORT returned no output");
      (backend.typedArrayFromHeap(out) as Float32Array).set(res.data);
    }
    stats.ortMs += performance.now() - t0;
    stats.ortCalls++;
    stats.ortFlops += plan.flops;
    return out;
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  }
}

/** The Emscripten heap (its typings are not shipped with tfjs-backend-wasm). */
function heapOf(backend: BackendWasm): ArrayBufferLike | undefined {
  return (backend.wasm as unknown as { HEAPU8?: Uint8Array } | undefined)?.HEAPU8?.buffer;
}

function isWasmBackend(backend: unknown): backend is BackendWasm {
  const b = backend as Partial<BackendWasm> | null;
  return typeof b?.makeOutput === "function" && typeof b.typedArrayFromHeap === "function" && heapOf(b as BackendWasm) !== undefined;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

function threshold(st: State, transposeA: boolean, transposeB: boolean): number {
  return transposeA || transposeB ? st.minFlopsTransposed : st.minFlops;
}

function delegate(name: KernelName, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  stats.stockCalls++;
  const stock = stockKernels.get(name);
  if (stock === undefined) throw new Error(`stock wasm kernel ${name} missing`);
  return stock.kernelFunc(args);
}

function batchMatMulKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const st = state;
  const { a, b } = args.inputs;
  const attrs = args.attrs ?? {};
  const transposeA = attrs.transposeA === true;
  const transposeB = attrs.transposeB === true;
  if (st === null || a === undefined || b === undefined || a.dtype !== "float32" || b.dtype !== "float32" || !isWasmBackend(args.backend)) {
    return delegate("BatchMatMul", args);
  }
  const plan = planProduct(a.shape, b.shape, transposeA, transposeB, true);
  if (plan === null || plan.flops < threshold(st, transposeA, transposeB)) return delegate("BatchMatMul", args);
  const spec: MatMulModelSpec = { rank: plan.rank, transposeA, transposeB, bias: false, activation: "linear" };
  return runOnOrt(st, args.backend, spec, plan, a, b, {});
}

function fusedMatMulKernel(args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const st = state;
  const { a, b, bias, preluActivationWeights } = args.inputs;
  const attrs = args.attrs ?? {};
  const transposeA = attrs.transposeA === true;
  const transposeB = attrs.transposeB === true;
  const activation = (attrs.activation ?? "linear") as FusedActivation;
  const leakyreluAlpha = typeof attrs.leakyreluAlpha === "number" ? attrs.leakyreluAlpha : 0.2;
  const f32 = (t: tf.TensorInfo | undefined): boolean => t === undefined || t.dtype === "float32";
  if (
    st === null ||
    a === undefined ||
    b === undefined ||
    !f32(a) ||
    !f32(b) ||
    !f32(bias) ||
    !f32(preluActivationWeights) ||
    !FUSED_ACTIVATIONS.includes(activation) ||
    (activation === "prelu") !== (preluActivationWeights !== undefined) ||
    !isWasmBackend(args.backend)
  ) {
    return delegate("_FusedMatMul", args);
  }
  // Folding the batch into M is only safe when the epilogue operands are row vectors.
  const rowLike = (t: tf.TensorInfo | undefined): boolean => t === undefined || t.shape.slice(0, -1).every((d) => d === 1);
  const plan = planProduct(a.shape, b.shape, transposeA, transposeB, rowLike(bias) && rowLike(preluActivationWeights));
  if (plan === null || plan.flops < threshold(st, transposeA, transposeB)) return delegate("_FusedMatMul", args);
  const extra: { bias?: Operand; slope?: Operand } = {};
  for (const [key, info] of [
    ["bias", bias],
    ["slope", preluActivationWeights],
  ] as const) {
    if (info === undefined) continue;
    const dims = epilogueOperandDims(info.shape, plan);
    if (dims === null) return delegate("_FusedMatMul", args);
    extra[key] = { info, dims };
  }
  const spec: MatMulModelSpec = { rank: plan.rank, transposeA, transposeB, bias: bias !== undefined, activation, leakyreluAlpha };
  return runOnOrt(st, args.backend, spec, plan, a, b, extra);
}

const KERNEL_FUNCS: Record<KernelName, tf.KernelFunc> = {
  BatchMatMul: batchMatMulKernel,
  _FusedMatMul: fusedMatMulKernel,
};

// ---------------------------------------------------------------------------
// Public API

function disposeSessions(st: State): void {
  for (const s of st.sessions.values()) s.dispose();
  st.sessions.clear();
}

/** Known-answer check of a fresh session, so a broken ORT install is caught at enable time. */
function smokeTest(config: SessionConfig): string | null {
  try {
    const s = createNativeSession(buildMatMulModel({ rank: 3, transposeA: false, transposeB: true, bias: false, activation: "linear" }), config);
    try {
      const y = new Float32Array(4);
      // [[1,2],[3,4]] · [[5,6],[7,8]]ᵀ = [[17,23],[39,53]]
      s.run(
        { [IO.a]: tensor(Float32Array.of(1, 2, 3, 4), [1, 2, 2]), [IO.b]: tensor(Float32Array.of(5, 6, 7, 8), [1, 2, 2]) },
        { [IO.y]: tensor(y, [1, 2, 2]) },
      );
      const want = [17, 23, 39, 53];
      return want.every((v, i) => y[i] === v) ? null : `ORT smoke test gave [${Array.from(y).join(", ")}], want [${want.join(", ")}]`;
    } finally {
      s.dispose();
    }
  } catch (e) {
    return `ORT smoke test failed: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/**
 * Replaces the wasm BatchMatMul and _FusedMatMul kernels with ORT-backed ones.
 * Never throws for environment problems: returns enabled false and why, and
 * leaves the stock kernels in place. Calling it again updates the options.
 */
export function enableOrtMatMul(options: OrtMatMulOptions = {}): OrtMatMulStatus {
  const threads = options.threads ?? 2;
  const minFlops = options.minFlops ?? DEFAULT_MIN_FLOPS;
  if (!Number.isInteger(threads) || threads < 1) return { enabled: false, reason: `threads must be an integer ≥ 1, got ${threads}` };
  const minFlopsTransposed = options.minFlopsTransposed ?? Math.min(minFlops, DEFAULT_MIN_FLOPS_TRANSPOSED);
  if (!(minFlops >= 0)) return { enabled: false, reason: `minFlops must be ≥ 0, got ${minFlops}` };
  if (!(minFlopsTransposed >= 0)) return { enabled: false, reason: `minFlopsTransposed must be ≥ 0, got ${minFlopsTransposed}` };
  const binding = loadOrtBinding(options.bindingModule ?? DEFAULT_BINDING_MODULE);
  if (!binding.ok) return { enabled: false, reason: binding.reason };
  for (const name of KERNEL_NAMES) {
    if (!stockKernels.has(name)) {
      const k = tf.getKernel(name, "wasm");
      if (k === undefined) return { enabled: false, reason: `no wasm kernel ${name} registered (import "@tensorflow/tfjs-backend-wasm")` };
      stockKernels.set(name, k);
    }
  }
  const config: SessionConfig = { intraOpThreads: threads, allowSpinning: options.allowSpinning ?? false, bindingModule: options.bindingModule };
  const smoke = smokeTest(config);
  if (smoke !== null) return { enabled: false, reason: smoke };

  if (state !== null) {
    const same =
      state.config.intraOpThreads === config.intraOpThreads &&
      state.config.allowSpinning === config.allowSpinning &&
      state.config.bindingModule === config.bindingModule;
    if (!same) disposeSessions(state);
    state.config = config;
    state.minFlops = minFlops;
    state.minFlopsTransposed = minFlopsTransposed;
    state.zeroCopy = options.zeroCopy ?? true;
    return { enabled: true };
  }
  state = { config, minFlops, minFlopsTransposed, zeroCopy: options.zeroCopy ?? true, sessions: new Map() };
  for (const name of KERNEL_NAMES) {
    const stock = stockKernels.get(name) as tf.KernelConfig;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc: KERNEL_FUNCS[name],
      // The stock kernelFunc needs its own setup (cwrap) if the backend is (re)initialized later.
      setupFunc: stock.setupFunc,
      disposeFunc: stock.disposeFunc,
    });
  }
  return { enabled: true };
}

/** Restores the stock wasm kernels and releases the ORT sessions. No-op when not enabled. */
export function disableOrtMatMul(): void {
  if (state === null) return;
  for (const name of KERNEL_NAMES) {
    const stock = stockKernels.get(name);
    if (stock === undefined) continue;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(stock);
  }
  disposeSessions(state);
  state = null;
}

/** Whether the ORT kernels are currently registered. */
export function isOrtMatMulEnabled(): boolean {
  return state !== null;
}

/** Current settings (null when disabled). */
export function ortMatMulConfig(): {
  threads: number;
  minFlops: number;
  minFlopsTransposed: number;
  allowSpinning: boolean;
  zeroCopy: boolean;
  sessions: number;
} | null {
  if (state === null) return null;
  return {
    threads: state.config.intraOpThreads,
    minFlops: state.minFlops,
    minFlopsTransposed: state.minFlopsTransposed,
    allowSpinning: state.config.allowSpinning,
    zeroCopy: state.zeroCopy,
    sessions: state.sessions.size,
  };
}

/** Counters since the last reset (kept across enable/disable). */
export function ortMatMulStats(): OrtMatMulStats {
  return { ...stats };
}

export function resetOrtMatMulStats(): void {
  stats.ortCalls = 0;
  stats.ortFlops = 0;
  stats.ortMs = 0;
  stats.stockCalls = 0;
}
