/**
 * Micro- and end-to-end benchmark of the ORT-backed matMul kernels
 * (src/train/accel) against the stock tfjs wasm kernels.
 *
 *   node --import tsx bench/accel-matmul.ts [--section shapes,crossover,e2e,profile]
 *        [--threads 2] [--reps 5] [--e2e-steps 4]
 *
 * All figures are medians over repetitions (the dev box is a shared 2-core VM).
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { disableOrtMatMul, enableOrtMatMul, ortMatMulStats, resetOrtMatMulStats, type OrtMatMulOptions } from "../src/train/accel/index.js";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const SECTIONS = new Set(arg("section", "shapes,crossover,e2e,profile").split(","));
const THREADS = Number(arg("threads", "2"));
const REPS = Number(arg("reps", "5"));
const E2E_STEPS = Number(arg("e2e-steps", "4"));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function use(options: OrtMatMulOptions | null): void {
  disableOrtMatMul();
  if (options !== null) {
    const st = enableOrtMatMul(options);
    if (!st.enabled) throw new Error(`ORT matMul not enabled: ${st.reason}`);
  }
}

/** Median ms of one call of fn (after one warm-up), at least `reps` calls and ~minMs total. */
function timeIt(fn: () => void, reps: number, minMs = 0): number {
  fn();
  const ts: number[] = [];
  const start = performance.now();
  while (ts.length < reps || performance.now() - start < minMs) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

interface Shape {
  what: string;
  a: number[];
  b: number[];
  tA: boolean;
  tB: boolean;
}

function flopsOf(s: Shape): number {
  const m = s.tA ? s.a[s.a.length - 1] : s.a[s.a.length - 2];
  const k = s.tA ? s.a[s.a.length - 2] : s.a[s.a.length - 1];
  const n = s.tB ? s.b[s.b.length - 2] : s.b[s.b.length - 1];
  const batch = s.a.length > 2 ? s.a.slice(0, -2).reduce((x, y) => x * y, 1) : 1;
  return 2 * batch * m * n * k;
}

function timeProduct(s: Shape, options: OrtMatMulOptions | null, reps: number, minMs = 0): number {
  use(options);
  const a = tf.randomUniform(s.a, -1, 1, "float32", 1);
  const b = tf.randomUniform(s.b, -1, 1, "float32", 2);
  const ms = timeIt(() => tf.matMul(a, b, s.tA, s.tB).dispose(), reps, minMs);
  tf.dispose([a, b]);
  return ms;
}

// Benchmark config: batch 32 videos × 32 frames = 1024 rows; 1024-d rgb features;
// NeXtVLAD λ=2 → expansion 1024→2048; G=8 groups, K=32 clusters → G·K = 256 logits.
const SHAPES: Shape[] = [
  { what: "expansion fwd   X[1024x1024]·W[1024x2048]", a: [1024, 1024], b: [1024, 2048], tA: false, tB: false },
  { what: "expansion dX    dY[1024x2048]·Wᵀ", a: [1024, 2048], b: [1024, 2048], tA: false, tB: true },
  { what: "expansion dW    Xᵀ·dY[1024x2048]", a: [1024, 1024], b: [1024, 2048], tA: true, tB: false },
  { what: "assign fwd      X[1024x2048]·W[2048x256]", a: [1024, 2048], b: [2048, 256], tA: false, tB: false },
  { what: "assign dX       dY[1024x256]·Wᵀ", a: [1024, 256], b: [2048, 256], tA: false, tB: true },
  { what: "assign dW       Xᵀ·dY[1024x256]", a: [1024, 2048], b: [1024, 256], tA: true, tB: false },
  { what: "vlad aggregate  Aᵀ[32x256x32]·X[32x256x256]", a: [32, 256, 32], b: [32, 256, 256], tA: true, tB: false },
];

function sectionShapes(): void {
  console.log(`\n== GFLOP/s per product (median; ORT threads=${THREADS}) ==`);
  console.log("| product | GFLOP | stock wasm | ORT | ORT 1 thread | ORT copy path | speed-up |");
  console.log("|---|---|---|---|---|---|---|");
  for (const s of SHAPES) {
    const gf = flopsOf(s) / 1e9;
    // The stock transposed kernels take seconds per call: 3 reps.
    const stock = timeProduct(s, null, 3);
    const ort = timeProduct(s, { threads: THREADS }, REPS, 300);
    const ort1 = timeProduct(s, { threads: 1 }, REPS, 300);
    const copy = timeProduct(s, { threads: THREADS, zeroCopy: false }, REPS, 300);
    const g = (ms: number): string => `${(gf / (ms / 1e3)).toFixed(1)} (${ms.toFixed(1)} ms)`;
    console.log(`| ${s.what} | ${gf.toFixed(2)} | ${g(stock)} | ${g(ort)} | ${g(ort1)} | ${g(copy)} | ${(stock / ort).toFixed(1)}x |`);
  }
  disableOrtMatMul();
}

function sectionCrossover(): void {
  console.log("\n== crossover: µs per call, square n×n·n×n (median) ==");
  console.log("| n | FLOPs | NN stock | NN ORT | NT stock | NT ORT | TN stock | TN ORT |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const n of [8, 16, 24, 32, 48, 64, 96, 128]) {
    const cells: string[] = [];
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
    ] as const) {
      const s: Shape = { what: "", a: [n, n], b: [n, n], tA, tB };
      const stock = timeProduct(s, null, 50, 200);
      const ort = timeProduct(s, { threads: THREADS, minFlops: 0 }, 50, 200);
      cells.push(`${(stock * 1e3).toFixed(0)}`, `${(ort * 1e3).toFixed(0)}${ort < stock ? " ✓" : ""}`);
    }
    console.log(`| ${n} | ${(2 * n ** 3).toExponential(1)} | ${cells.join(" | ")} |`);
  }
  disableOrtMatMul();
}

/** Dense-heavy model on benchmark-sized rows: 1024 rows (32 videos × 32 frames). */
function denseModel(): tf.Sequential {
  const m = tf.sequential();
  const init = (seed: number): ReturnType<typeof tf.initializers.glorotUniform> => tf.initializers.glorotUniform({ seed });
  m.add(tf.layers.dense({ inputShape: [1024], units: 2048, activation: "relu", kernelInitializer: init(1) }));
  m.add(tf.layers.dense({ units: 2048, activation: "relu", kernelInitializer: init(2) }));
  m.add(tf.layers.dense({ units: 1024, activation: "relu", kernelInitializer: init(3) }));
  m.add(tf.layers.dense({ units: 100, activation: "sigmoid", kernelInitializer: init(4) }));
  m.compile({ optimizer: tf.train.adam(1e-3), loss: "binaryCrossentropy" });
  return m;
}

const ROWS = 1024;
const ROWS_PER_VIDEO = 32;

async function stepTimes(options: OrtMatMulOptions | null, steps: number): Promise<number[]> {
  use(options);
  const m = denseModel();
  const x = tf.randomUniform([ROWS, 1024], -1, 1, "float32", 7);
  const y = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([ROWS, 100], 0, 1, "float32", 8), 0.95), "float32"));
  await m.trainOnBatch(x, y); // warm-up: session creation, Adam slots
  const ts: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await m.trainOnBatch(x, y);
    ts.push(performance.now() - t0);
  }
  m.dispose();
  tf.dispose([x, y]);
  disableOrtMatMul();
  return ts;
}

async function sectionE2E(): Promise<void> {
  console.log("\n== end-to-end: Dense 1024→2048→2048→1024→100, 1024 rows/step, Adam (median step) ==");
  console.log("| kernels | ms/step | rows/s | videos/s (32 rows each) |");
  console.log("|---|---|---|---|");
  const row = (name: string, ts: number[]): void => {
    const ms = median(ts);
    console.log(`| ${name} | ${ms.toFixed(0)} | ${((ROWS * 1e3) / ms).toFixed(0)} | ${((ROWS / ROWS_PER_VIDEO) * 1e3 / ms).toFixed(1)} |`);
  };
  row("stock wasm", await stepTimes(null, Math.min(E2E_STEPS, 3)));
  row(`ORT threads=${THREADS}`, await stepTimes({ threads: THREADS }, E2E_STEPS * 2));
  row(`ORT threads=${THREADS}, spinning`, await stepTimes({ threads: THREADS, allowSpinning: true }, E2E_STEPS * 2));
  row("ORT threads=1", await stepTimes({ threads: 1 }, E2E_STEPS * 2));
}

async function sectionProfile(): Promise<void> {
  console.log(`\n== profile of one training step with ORT on (threads=${THREADS}) ==`);
  use({ threads: THREADS });
  const m = denseModel();
  const x = tf.randomUniform([ROWS, 1024], -1, 1, "float32", 7);
  const y = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([ROWS, 100], 0, 1, "float32", 8), 0.95), "float32"));
  await m.trainOnBatch(x, y);
  const wall: number[] = [];
  const ortShare: number[] = [];
  for (let i = 0; i < E2E_STEPS; i++) {
    resetOrtMatMulStats();
    const t0 = performance.now();
    await m.trainOnBatch(x, y);
    const ms = performance.now() - t0;
    wall.push(ms);
    ortShare.push(ortMatMulStats().ortMs / ms);
  }
  const st = ortMatMulStats();
  console.log(
    `step ${median(wall).toFixed(0)} ms; inside ORT run(): ${(median(ortShare) * 100).toFixed(0)}% ` +
      `(${st.ortCalls} products, ${(st.ortFlops / 1e9).toFixed(1)} GFLOP → ${(st.ortFlops / 1e6 / st.ortMs).toFixed(0)} GFLOP/s inside run(); ${st.stockCalls} small products on stock)`,
  );
  // Per-kernel wall time (tf.profile times each kernel call synchronously on wasm).
  const info = await tf.profile(async () => {
    await m.trainOnBatch(x, y);
  });
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls++;
    byKernel.set(k.name, e);
    total += ms;
  }
  console.log(`kernels: ${info.kernels.length} calls, ${total.toFixed(0)} ms kernel time (profiled step)`);
  console.log("| kernel | calls | ms | share |");
  console.log("|---|---|---|---|");
  for (const [name, e] of [...byKernel.entries()].sort((p, q) => q[1].ms - p[1].ms).slice(0, 15)) {
    console.log(`| ${name} | ${e.calls} | ${e.ms.toFixed(1)} | ${((e.ms / total) * 100).toFixed(1)}% |`);
  }
  m.dispose();
  tf.dispose([x, y]);
  disableOrtMatMul();
}

async function main(): Promise<void> {
  await tf.setBackend("wasm");
  await tf.ready();
  console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, node ${process.version}`);
  if (SECTIONS.has("shapes")) sectionShapes();
  if (SECTIONS.has("crossover")) sectionCrossover();
  if (SECTIONS.has("e2e")) await sectionE2E();
  if (SECTIONS.has("profile")) await sectionProfile();
}

await main();
