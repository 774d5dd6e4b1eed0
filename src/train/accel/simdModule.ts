/**
 * A small WebAssembly module, assembled here byte by byte, that works directly
 * on the tfjs wasm backend's heap (it imports the backend's
 * `WebAssembly.Memory`, so heap growth is shared): fused loops with 128-bit
 * SIMD (f32x4) for what tfjs would run as a chain of single-op passes.
 *
 * Every function performs the same IEEE float32 operations, in the same order
 * per element, as the tfjs op chain it replaces, so the results are bit-for-bit
 * the stock ones. No toolchain is needed: the module is ~1 KB of bytes built
 * by the tiny assembler below, and `instantiateSimd` returns null (callers
 * then keep the stock path) where WebAssembly SIMD or the memory is missing.
 *
 * Exports (pointers are byte offsets into the heap, n element counts):
 *   adam_none / adam_l2 / adam_w (p, m, v, g, pOut, mOut, vOut, n,
 *       scale, b1, ob1, b2, ob2, bc1, bc2, eps, wd, lr)
 *     one Adam step (see wasmKernels.ts: adamUpdateInto for the formula);
 *     l2 adds wd·p to the gradient (Adam), w adds it to the update (AdamW).
 *   sum_rows (x, out, rows, cols)
 *     out[c] = Σ_r x[r·cols + c], accumulated from r = 0 up.
 *   sum_squares (x, n) → f32
 *     Σ_i x[i]², accumulated from i = 0 up (tf.sum(tf.square(x)) over all axes).
 */

// ---------------------------------------------------------------------------
// Encoding helpers

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function str(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

const T = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;

/** Instruction emitters (only what the functions below use). */
const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  i32Add: [0x6a],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32GeU: [0x4f],
  f32Load: [0x2a, 2, 0],
  f32Store: [0x38, 2, 0],
  f32Add: [0x92],
  f32Sub: [0x93],
  f32Mul: [0x94],
  f32Div: [0x95],
  f32Sqrt: [0x91],
  f32Zero: [0x43, 0, 0, 0, 0],
  v128Zero: [0xfd, ...uleb(0x0c), ...new Array<number>(16).fill(0)],
  v128Load: [0xfd, ...uleb(0x00), 0, 0],
  v128Store: [0xfd, ...uleb(0x0b), 0, 0],
  f32x4Splat: [0xfd, ...uleb(0x13)],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Sub: [0xfd, ...uleb(0xe5)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
  f32x4Div: [0xfd, ...uleb(0xe7)],
  f32x4Sqrt: [0xfd, ...uleb(0xe3)],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  end: [0x0b],
};

interface Func {
  name: string;
  params: number[];
  results?: number[];
  locals: number[];
  body: number[];
}

/**
 * `for (; i < limit; i += step) body` with i, limit in locals (i is set by
 * the caller; step null: the body advances i itself).
 */
function forLoop(i: number, limit: number, step: number | null, body: number[]): number[] {
  return [
    ...op.block,
    ...op.loop,
    ...op.get(i),
    ...op.get(limit),
    ...op.i32GeU,
    ...op.brIf(1),
    ...body,
    ...(step === null ? [] : [...op.get(i), ...op.i32(step), ...op.i32Add, ...op.set(i)]),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}

// ---------------------------------------------------------------------------
// Adam

type AdamVariant = "none" | "l2" | "w";

/**
 * Params: 0 p, 1 m, 2 v, 3 g, 4 pOut, 5 mOut, 6 vOut, 7 n (i32);
 * 8 scale, 9 b1, 10 ob1, 11 b2, 12 ob2, 13 bc1, 14 bc2, 15 eps, 16 wd, 17 lr (f32).
 * Locals: 18 i (byte offset), 19 vecEnd, 20 end (i32); 21.. splatted constants
 * (v128, same order as the f32 params); scalar temporaries after them.
 */
function adamFunc(variant: AdamVariant): Func {
  const [P, M, V, G, PO, MO, VO, N] = [0, 1, 2, 3, 4, 5, 6, 7];
  const C0 = 8; // first f32 param
  const [I, VEC_END, END] = [18, 19, 20];
  const VC0 = 21; // first splatted constant
  const NCONST = 10;
  const [GI, MI, VI, U, PI] = [VC0 + NCONST, VC0 + NCONST + 1, VC0 + NCONST + 2, VC0 + NCONST + 3, VC0 + NCONST + 4]; // v128 temps
  const [gs, ms, vs, us, ps] = [PI + 1, PI + 2, PI + 3, PI + 4, PI + 5]; // f32 temps
  const [SCALE, B1, OB1, B2, OB2, BC1, BC2, EPS, WD, LR] = Array.from({ length: NCONST }, (_, k) => k);

  /** The element step, vector or scalar flavour. */
  const step = (simd: boolean): number[] => {
    const load = simd ? op.v128Load : op.f32Load;
    const store = simd ? op.v128Store : op.f32Store;
    const add = simd ? op.f32x4Add : op.f32Add;
    const sub = simd ? op.f32x4Sub : op.f32Sub;
    const mul = simd ? op.f32x4Mul : op.f32Mul;
    const div = simd ? op.f32x4Div : op.f32Div;
    const sqrt = simd ? op.f32x4Sqrt : op.f32Sqrt;
    const k = (c: number) => (simd ? op.get(VC0 + c) : op.get(C0 + c));
    const [g, mm, vv, u, p] = simd ? [GI, MI, VI, U, PI] : [gs, ms, vs, us, ps];
    const at = (ptr: number) => [...op.get(ptr), ...op.get(I), ...op.i32Add];
    const code: number[] = [];
    // p (needed for decay and the final update)
    code.push(...at(P), ...load, ...op.set(p));
    // g = g·scale (+ p·wd)
    code.push(...at(G), ...load, ...k(SCALE), ...mul);
    if (variant === "l2") code.push(...op.get(p), ...k(WD), ...mul, ...add);
    code.push(...op.set(g));
    // m = m·b1 + g·ob1
    code.push(...at(M), ...load, ...k(B1), ...mul, ...op.get(g), ...k(OB1), ...mul, ...add, ...op.set(mm));
    // v = v·b2 + (g·g)·ob2
    code.push(...at(V), ...load, ...k(B2), ...mul, ...op.get(g), ...op.get(g), ...mul, ...k(OB2), ...mul, ...add, ...op.set(vv));
    code.push(...at(MO), ...op.get(mm), ...store);
    code.push(...at(VO), ...op.get(vv), ...store);
    // u = (m / bc1) / (sqrt(v / bc2) + eps) (+ p·wd)
    code.push(...op.get(mm), ...k(BC1), ...div, ...op.get(vv), ...k(BC2), ...div, ...sqrt, ...k(EPS), ...add, ...div);
    if (variant === "w") code.push(...op.get(p), ...k(WD), ...mul, ...add);
    code.push(...op.set(u));
    // p − u·lr
    code.push(...at(PO), ...op.get(p), ...op.get(u), ...k(LR), ...mul, ...sub, ...store);
    return code;
  };

  const body: number[] = [];
  for (let c = 0; c < NCONST; c++) body.push(...op.get(C0 + c), ...op.f32x4Splat, ...op.set(VC0 + c));
  // end = n·4 bytes, vecEnd = (n & ~3)·4
  body.push(...op.get(N), ...op.i32(4), ...op.i32Mul, ...op.set(END));
  body.push(...op.get(N), ...op.i32(-4), ...op.i32And, ...op.i32(4), ...op.i32Mul, ...op.set(VEC_END));
  body.push(...op.i32(0), ...op.set(I));
  body.push(...forLoop(I, VEC_END, 16, step(true)));
  body.push(...forLoop(I, END, 4, step(false)));
  return {
    name: `adam_${variant}`,
    params: [...new Array<number>(8).fill(T.i32), ...new Array<number>(NCONST).fill(T.f32)],
    locals: [T.i32, T.i32, T.i32, ...new Array<number>(NCONST + 5).fill(T.v128), ...new Array<number>(5).fill(T.f32)],
    body,
  };
}

// ---------------------------------------------------------------------------
// Sum over rows

/**
 * Params: 0 x, 1 out, 2 rows, 3 cols. Locals: 4 rowEnd (byte offset of the
 * end of x), 5 rowStart, 6 j (byte offset in the row), 7 colBytes,
 * 8 vecBytes (i32). out is zeroed, then each row is added in order.
 */
function sumRowsFunc(): Func {
  const [X, OUT, ROWS, COLS] = [0, 1, 2, 3];
  const [XEND, ROW, J, COLB, VECB] = [4, 5, 6, 7, 8];
  const outAt = [...op.get(OUT), ...op.get(J), ...op.i32Add];
  const xAt = [...op.get(X), ...op.get(ROW), ...op.i32Add, ...op.get(J), ...op.i32Add];
  const rowBody = (simd: boolean) => {
    const [load, store, add] = simd ? [op.v128Load, op.v128Store, op.f32x4Add] : [op.f32Load, op.f32Store, op.f32Add];
    return [...outAt, ...outAt, ...load, ...xAt, ...load, ...add, ...store];
  };
  const zero = (simd: boolean) => (simd ? [...outAt, ...op.v128Zero, ...op.v128Store] : [...outAt, ...op.f32Zero, ...op.f32Store]);
  const body: number[] = [
    ...op.get(COLS), ...op.i32(4), ...op.i32Mul, ...op.set(COLB),
    ...op.get(COLS), ...op.i32(-4), ...op.i32And, ...op.i32(4), ...op.i32Mul, ...op.set(VECB),
    ...op.get(ROWS), ...op.get(COLB), ...op.i32Mul, ...op.set(XEND),
    // zero out
    ...op.i32(0), ...op.set(J),
    ...forLoop(J, VECB, 16, zero(true)),
    ...forLoop(J, COLB, 4, zero(false)),
    // rows
    ...op.i32(0), ...op.set(ROW),
    ...forLoop(ROW, XEND, null, [
      ...op.i32(0), ...op.set(J),
      ...forLoop(J, VECB, 16, rowBody(true)),
      ...forLoop(J, COLB, 4, rowBody(false)),
      // next row
      ...op.get(ROW), ...op.get(COLB), ...op.i32Add, ...op.set(ROW),
    ]),
  ];
  return { name: "sum_rows", params: [T.i32, T.i32, T.i32, T.i32], locals: [T.i32, T.i32, T.i32, T.i32, T.i32], body };
}

// ---------------------------------------------------------------------------
// Sum of squares

/**
 * Params: 0 x, 1 n. Locals: 2 i (byte offset), 3 end (i32), 4 acc (f32).
 * Sequential, like the stock full reduction, so the sum is the stock one.
 */
function sumSquaresFunc(): Func {
  const [X, N, I, END, ACC] = [0, 1, 2, 3, 4];
  const body = [
    ...op.get(N), ...op.i32(4), ...op.i32Mul, ...op.set(END),
    ...op.i32(0), ...op.set(I),
    ...op.f32Zero, ...op.set(ACC),
    ...forLoop(I, END, 4, [
      ...op.get(ACC),
      ...op.get(X), ...op.get(I), ...op.i32Add, ...op.f32Load,
      ...op.get(X), ...op.get(I), ...op.i32Add, ...op.f32Load,
      ...op.f32Mul, ...op.f32Add, ...op.set(ACC),
    ]),
    ...op.get(ACC),
  ];
  return { name: "sum_squares", params: [T.i32, T.i32], results: [T.f32], locals: [T.i32, T.i32, T.f32], body };
}

// ---------------------------------------------------------------------------
// Module

function buildModule(funcs: Func[]): Uint8Array<ArrayBuffer> {
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec((f.results ?? []).map((t) => [t]))]);
  const imports = vec([[...str("env"), ...str("memory"), 0x02, 0x00, 0x00]]);
  const functions = vec(funcs.map((_, i) => uleb(i)));
  const exports = vec(funcs.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]));
  const codes = funcs.map((f) => {
    // Locals as runs of the same type.
    const runs: number[][] = [];
    for (let i = 0; i < f.locals.length; ) {
      let j = i;
      while (j < f.locals.length && f.locals[j] === f.locals[i]) j++;
      runs.push([...uleb(j - i), f.locals[i]]);
      i = j;
    }
    const fn = [...vec(runs), ...f.body, ...op.end];
    return [...uleb(fn.length), ...fn];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, imports),
    ...section(3, functions),
    ...section(7, exports),
    ...section(10, vec(codes)),
  ]);
}

export interface SimdExports {
  adam_none(...args: number[]): void;
  adam_l2(...args: number[]): void;
  adam_w(...args: number[]): void;
  sum_rows(x: number, out: number, rows: number, cols: number): void;
  sum_squares(x: number, n: number): number;
}

let cachedBytes: Uint8Array<ArrayBuffer> | null = null;

/** The module's bytes (for tests). */
export function simdModuleBytes(): Uint8Array<ArrayBuffer> {
  cachedBytes ??= buildModule([adamFunc("none"), adamFunc("l2"), adamFunc("w"), sumRowsFunc(), sumSquaresFunc()]);
  return cachedBytes;
}

/** Instantiates the module over `memory`; null with a reason when this runtime cannot. */
export function instantiateSimd(memory: WebAssembly.Memory): { exports: SimdExports } | { reason: string } {
  try {
    const module = new WebAssembly.Module(simdModuleBytes());
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    return { exports: instance.exports as unknown as SimdExports };
  } catch (e) {
    return { reason: `WebAssembly SIMD module failed to load: ${e instanceof Error ? e.message : String(e)}` };
  }
}
