/**
 * The fused/JavaScript wasm kernels (src/train/accel/wasmKernels.ts, the SIMD
 * module) against the stock wasm kernels and the optimizer's op chain. They
 * promise bit-for-bit equal results, so most comparisons here are exact
 * (which is stricter than the 1e-5).
 *
 * Every assert carries a message (see accel.test.ts for why).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import seedrandom from "seedrandom";
import {
  ADAM_UPDATE_KERNEL,
  disableOrtMatMul,
  disableWasmKernels,
  enableOrtMatMul,
  enableWasmKernels,
  isWasmKernelsEnabled,
  resetWasmKernelStats,
  SUM_SQUARES_KERNEL,
  wasmKernelStats,
} from "../src/train/accel/index.js";
import { leadingReduction, simplifyTile } from "../src/train/accel/wasmKernels.js";
import { simdModuleBytes } from "../src/train/accel/simdModule.js";
import { parseModelConfig, TrainingConfig, type ModelConfigInput } from "../src/model/config.js";
import { batchToInputs, batchToLabels, disposeInputs, VideoModel } from "../src/model/model.js";
import { syntheticBatch } from "../src/bench/trainBench.js";
import { AdamOptimizer } from "../src/train/optimizer.js";
import { trainStep } from "../src/train/trainer.js";
import { selectBackend } from "../src/train/backend.js";

const rng = seedrandom.alea("wasm-kernels");
const randInt = (lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

/** Index of the first differing element (NaN equals NaN), or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

function assertIdentical(x: tf.Tensor, ref: tf.Tensor, what: string): void {
  assert.deepEqual(x.shape, ref.shape, `${what}: shape`);
  assert.equal(x.dtype, ref.dtype, `${what}: dtype`);
  const a = x.dataSync() as ArrayLike<number>;
  const b = ref.dataSync() as ArrayLike<number>;
  const i = firstDiff(a, b);
  assert.equal(i, -1, `${what}: element ${i} is ${a[i]}, stock ${b[i]}`);
}

/** fn with the stock kernels, then with ours; both results kept. */
function both<T extends tf.Tensor | tf.Tensor[]>(fn: () => T): { stock: T; ours: T } {
  disableWasmKernels();
  const stock = tf.tidy(fn);
  const st = enableWasmKernels();
  assert.ok(st.enabled && st.simd, `enable failed: ${st.reason}`);
  try {
    return { stock, ours: tf.tidy(fn) };
  } finally {
    disableWasmKernels();
  }
}

before(async () => {
  await tf.setBackend("wasm");
  await tf.ready();
});

after(() => {
  disableWasmKernels();
  disableOrtMatMul();
});

describe("SIMD module", () => {
  it("is a valid WebAssembly module exporting the kernels", () => {
    const m = new WebAssembly.Module(simdModuleBytes());
    assert.deepEqual(
      WebAssembly.Module.exports(m).map((e) => e.name),
      ["adam_none", "adam_l2", "adam_w", "sum_rows", "sum_squares"],
      "exports",
    );
    assert.deepEqual(WebAssembly.Module.imports(m), [{ module: "env", name: "memory", kind: "memory" }], "imports the heap only");
  });
});

describe("enable / disable", () => {
  it("replaces Tile, Sum and Identity, adds the Adam kernel, and disable restores the stock ones", () => {
    disableWasmKernels();
    const tile = tf.getKernel("Tile", "wasm").kernelFunc;
    const sum = tf.getKernel("Sum", "wasm").kernelFunc;
    const identity = tf.getKernel("Identity", "wasm").kernelFunc;
    assert.equal(tf.getKernel(ADAM_UPDATE_KERNEL, "wasm"), undefined, "no Adam kernel while off");
    const st = enableWasmKernels();
    assert.ok(st.enabled && st.simd, `enabled: ${JSON.stringify(st)}`);
    assert.ok(isWasmKernelsEnabled(), "enabled flag");
    assert.notEqual(tf.getKernel("Tile", "wasm").kernelFunc, tile, "Tile replaced");
    assert.notEqual(tf.getKernel("Sum", "wasm").kernelFunc, sum, "Sum replaced");
    assert.notEqual(tf.getKernel("Identity", "wasm").kernelFunc, identity, "Identity replaced");
    assert.ok(tf.getKernel(ADAM_UPDATE_KERNEL, "wasm") !== undefined, "Adam kernel registered");
    assert.ok(tf.getKernel(SUM_SQUARES_KERNEL, "wasm") !== undefined, "Σx² kernel registered");
    assert.ok(enableWasmKernels().enabled, "enabling twice is fine");
    disableWasmKernels();
    assert.equal(tf.getKernel("Tile", "wasm").kernelFunc, tile, "Tile restored");
    assert.equal(tf.getKernel("Sum", "wasm").kernelFunc, sum, "Sum restored");
    assert.equal(tf.getKernel("Identity", "wasm").kernelFunc, identity, "Identity restored");
    assert.equal(tf.getKernel(ADAM_UPDATE_KERNEL, "wasm"), undefined, "Adam kernel removed");
    assert.equal(tf.getKernel(SUM_SQUARES_KERNEL, "wasm"), undefined, "Σx² kernel removed");
    assert.ok(!isWasmKernelsEnabled(), "disabled flag");
    disableWasmKernels();
  });

  it("selectBackend: wasm-ort turns everything on, wasm turns everything off", async () => {
    const on = await selectBackend("wasm-ort");
    assert.equal(on.name, "wasm-ort", "backend name");
    assert.ok(isWasmKernelsEnabled(), "wasm kernels on with wasm-ort");
    const off = await selectBackend("wasm");
    assert.equal(off.name, "wasm", "backend name");
    assert.ok(!isWasmKernelsEnabled(), "wasm kernels off with --backend wasm");
    assert.equal(tf.getKernel(ADAM_UPDATE_KERNEL, "wasm"), undefined, "no Adam kernel with --backend wasm");
  });
});

describe("Tile vs stock", () => {
  it("simplifies shapes without changing the layout", () => {
    assert.deepEqual(simplifyTile([1024, 1], [1, 1024]), { shape: [1024, 1], reps: [1, 1024] }, "column broadcast");
    assert.deepEqual(simplifyTile([1, 1, 1, 256], [1, 1, 1024, 1]), { shape: [256], reps: [1024] }, "row broadcast");
    assert.deepEqual(simplifyTile([3, 4, 5], [2, 1, 1]), { shape: [60], reps: [2] }, "trailing axes merged");
    assert.deepEqual(simplifyTile([1, 1], [1, 1]), { shape: [1], reps: [1] }, "nothing to tile");
  });

  it("random shapes and repeats, float32 / int32 / bool, exactly", () => {
    resetWasmKernelStats();
    let cases = 0;
    for (let trial = 0; trial < 60; trial++) {
      const rank = randInt(0, 5);
      const shape = Array.from({ length: rank }, () => (rng() < 0.35 ? 1 : randInt(1, 7)));
      const reps = Array.from({ length: rank }, () => (rng() < 0.4 ? 1 : randInt(1, 5)));
      for (const dtype of ["float32", "int32", "bool"] as const) {
        const make = (): tf.Tensor => {
          const x = tf.randomUniform(shape, -5, 5, "float32", trial);
          return dtype === "float32" ? x : dtype === "int32" ? tf.cast(x, "int32") : tf.greater(x, 0);
        };
        const { stock, ours } = both(() => tf.tile(make(), reps));
        assertIdentical(ours, stock, `tile ${dtype} [${shape}] × [${reps}]`);
        tf.dispose([stock, ours]);
        cases++;
      }
    }
    // The large cases of the benchmark model, and a zero-size one.
    for (const [shape, reps] of [
      [[1024, 1], [1, 1024]],
      [[1, 1], [1024, 1024]],
      [[1, 1, 1, 8192], [1, 1, 32, 1]],
      [[3, 1, 5], [2, 7, 3]],
      [[0, 4], [3, 2]],
    ] as Array<[number[], number[]]>) {
      const { stock, ours } = both(() => tf.tile(tf.randomUniform(shape, -1, 1, "float32", 9), reps));
      assertIdentical(ours, stock, `tile [${shape}] × [${reps}]`);
      tf.dispose([stock, ours]);
      cases++;
    }
    assert.equal(wasmKernelStats().calls.Tile, cases, `every tile ran here: ${JSON.stringify(wasmKernelStats())}`);
  });

  it("tf.where with broadcast condition and scalar (the NeXtVLAD input mask), and its gradient", () => {
    const { stock, ours } = both(() => {
      const x = tf.randomUniform([37, 19], -1, 1, "float32", 3);
      const mask = tf.greater(tf.randomUniform([37, 1], 0, 1, "float32", 4), 0.3);
      const f = (v: tf.Tensor): tf.Tensor => tf.sum(tf.mul(tf.where(mask, v, 0), tf.range(0, 19)));
      return [tf.where(mask, x, 0), tf.grad(f)(x)];
    });
    assertIdentical(ours[0], stock[0], "where");
    assertIdentical(ours[1], stock[1], "where gradient");
    tf.dispose([...stock, ...ours]);
  });
});

describe("Identity", () => {
  it("shares the input's memory, and each side outlives the other's disposal", () => {
    assert.ok(enableWasmKernels().enabled, "enable");
    try {
      for (const dtype of ["float32", "int32", "bool"] as const) {
        const x = tf.tidy(() => tf.cast(tf.randomUniform([13, 7], -3, 3, "float32", 8), dtype));
        const want = Array.from(x.dataSync());
        resetWasmKernelStats();
        const y = tf.clone(x);
        assert.equal(wasmKernelStats().calls.Identity, 1, `${dtype}: ran here`);
        assert.equal(y.dataId, x.dataId, `${dtype}: no copy`);
        const z = tf.clone(y);
        x.dispose();
        assert.deepEqual(Array.from(y.dataSync()), want, `${dtype}: clone survives the input's disposal`);
        y.dispose();
        assert.deepEqual(Array.from(z.dataSync()), want, `${dtype}: clone of a clone survives both`);
        z.dispose();
      }
    } finally {
      disableWasmKernels();
    }
  });
});

describe("Sum vs stock", () => {
  it("recognises leading reductions only", () => {
    assert.deepEqual(leadingReduction([1024, 2048], [0]), { rows: 1024, cols: 2048 }, "bias gradient");
    assert.deepEqual(leadingReduction([1, 1, 1024, 256], [0, 1, 2]), { rows: 1024, cols: 256 }, "rank-4 bias gradient");
    assert.deepEqual(leadingReduction([4, 5, 6], [-3, 1]), { rows: 20, cols: 6 }, "negative axes");
    assert.equal(leadingReduction([4, 5], [1]), null, "innermost: stock has no transpose");
    assert.equal(leadingReduction([4, 5, 6], [0, 2]), null, "not a leading block");
    assert.equal(leadingReduction([4, 5], [0, 1]), null, "full reduction");
  });

  it("random shapes and axes (keepDims on and off), exactly; other reductions go to the stock kernel", () => {
    resetWasmKernelStats();
    let leading = 0;
    for (let trial = 0; trial < 80; trial++) {
      const rank = randInt(1, 4);
      const shape = Array.from({ length: rank }, () => (rng() < 0.25 ? 1 : randInt(1, 70)));
      const axes = [...Array(rank).keys()].filter(() => rng() < 0.5).map((a) => (rng() < 0.3 ? a - rank : a));
      const keepDims = rng() < 0.5;
      if (axes.length === 0) continue;
      if (leadingReduction(shape, axes) !== null) leading++;
      const { stock, ours } = both(() => tf.sum(tf.randomUniform(shape, -3, 3, "float32", trial), axes, keepDims));
      assertIdentical(ours, stock, `sum [${shape}] over [${axes}] keepDims ${keepDims}`);
      tf.dispose([stock, ours]);
    }
    for (const [shape, axes] of [
      [[1024, 2048], [0]],
      [[1, 1, 1024, 255], [0, 1, 2]],
      [[33, 7, 9], [0, 1]],
    ] as Array<[number[], number[]]>) {
      const { stock, ours } = both(() => tf.sum(tf.randomUniform(shape, -3, 3, "float32", 5), axes));
      assertIdentical(ours, stock, `sum [${shape}] over [${axes}]`);
      tf.dispose([stock, ours]);
      leading++;
    }
    const { stock, ours } = both(() => tf.sum(tf.cast(tf.randomUniform([30, 4], -9, 9, "float32", 6), "int32"), 0));
    assertIdentical(ours, stock, "int32 sum (stock kernel)");
    tf.dispose([stock, ours]);
    const s = wasmKernelStats();
    assert.equal(s.calls.Sum, leading, `leading reductions ran here: ${JSON.stringify(s)}`);
    assert.ok((s.stockCalls.Sum ?? 0) > 0, "the others ran on the stock kernel");
  });
});

describe("Σx² kernel vs tf.sum(tf.square(x))", () => {
  it("random sizes and ranks, exactly", () => {
    assert.ok(enableWasmKernels().simd, "SIMD kernels");
    try {
      for (const shape of [[], [1], [5], [4, 3], [1023, 17], [2, 3, 4, 5], [300001]]) {
        const x = tf.randomUniform(shape, -4, 4, "float32", shape.length + 11);
        const ours = tf.engine().runKernel(SUM_SQUARES_KERNEL, { x }, {}) as tf.Tensor;
        const stock = tf.tidy(() => tf.sum(tf.square(x)));
        assertIdentical(ours, stock, `Σx² [${shape}]`);
        tf.dispose([x, ours, stock]);
      }
      // (The stock Sum of an empty tensor returns uninitialised memory.)
      const x0 = tf.zeros([0, 3]);
      const empty = tf.engine().runKernel(SUM_SQUARES_KERNEL, { x: x0 }, {}) as tf.Tensor;
      assert.equal(empty.dataSync()[0], 0, "empty: 0");
      tf.dispose([x0, empty]);
    } finally {
      disableWasmKernels();
    }
  });
});

describe("Adam update kernel vs the optimizer's op chain", () => {
  const shapes = [[1], [3], [4], [7, 5], [64, 33], [4099]];

  function run(training: Record<string, unknown>, fused: boolean, steps: number): { params: Float32Array[]; norms: number[]; tensors: number[] } {
    disableWasmKernels();
    if (fused) assert.ok(enableWasmKernels().simd, "SIMD kernels");
    const base = tf.memory().numTensors;
    const config = TrainingConfig.parse({ learningRate: 1e-2, warmupSteps: 0, decay: "none", clipNorm: 0, ...training });
    const names = shapes.map((_, i) => (i % 2 === 0 ? `layer${i}/kernel` : `layer${i}/bias`));
    const params = new Map(names.map((n, i) => [n, tf.tidy(() => tf.variable(tf.randomUniform(shapes[i], -1, 1, "float32", 100 + i), true, `adam_test_${n}`))]));
    const opt = new AdamOptimizer(config, steps, steps);
    const norms: number[] = [];
    const tensors: number[] = [];
    for (let step = 0; step < steps; step++) {
      const grads = new Map(names.map((n, i) => [n, tf.randomUniform(shapes[i], -2, 2, "float32", 1000 * step + i)] as const));
      norms.push(opt.apply(params, grads));
      tf.dispose([...grads.values()]);
      tensors.push(tf.memory().numTensors - base);
    }
    const out = names.map((n) => params.get(n)!.dataSync() as Float32Array);
    opt.dispose();
    tf.dispose([...params.values()]);
    disableWasmKernels();
    assert.equal(tf.memory().numTensors, base, "nothing left behind");
    return { params: out, norms, tensors };
  }

  for (const training of [
    { optimizer: "adam" as const },
    { optimizer: "adam" as const, weightDecay: 0.05, clipNorm: 1 },
    { optimizer: "adamw" as const, weightDecay: 0.05 },
  ]) {
    it(`${JSON.stringify(training)}: 5 steps give bit-identical parameters, flat tensor count`, () => {
      resetWasmKernelStats();
      const fused = run(training, true, 5);
      assert.equal(wasmKernelStats().calls[ADAM_UPDATE_KERNEL], 5 * shapes.length, "updates ran in the kernel");
      assert.equal(wasmKernelStats().calls[SUM_SQUARES_KERNEL], 5 * shapes.length, "the norm ran in the Σx² kernel");
      const chain = run(training, false, 5);
      assert.deepEqual(fused.norms, chain.norms, "gradient norms");
      fused.params.forEach((p, i) => {
        const d = firstDiff(p, chain.params[i]);
        assert.equal(d, -1, `param ${i} [${shapes[i]}] element ${d}: ${p[d]} vs ${chain.params[i][d]}`);
      });
      // Moments are created in step 1; from then on nothing may accumulate.
      assert.ok(fused.tensors.slice(1).every((t) => t === fused.tensors[1]), `numTensors per step ${fused.tensors.join(",")}`);
      assert.deepEqual(fused.tensors, chain.tensors, "same tensor counts as the op chain");
    });
  }

  it("rejects mismatched shapes", () => {
    enableWasmKernels();
    try {
      assert.throws(
        () => tf.engine().runKernel(ADAM_UPDATE_KERNEL, { p: tf.zeros([3]), m: tf.zeros([3]), v: tf.zeros([4]), g: tf.zeros([3]) }, {}),
        /input v has shape \[4\]/,
        "shape check",
      );
    } finally {
      disableWasmKernels();
    }
  });
});

describe("training the NeXtVLAD model with the accelerated kernels", () => {
  const config: ModelConfigInput = {
    input: { features: { rgb: { frames: 8, dim: 48 }, audio: { frames: 8, dim: 12 } }, modalities: ["rgb", "audio"], useTitle: false, sampling: "pad" },
    encoders: {
      rgb: { type: "nextvlad", expansion: 2, groups: 4, clusters: 8, hidden: 32, dropout: 0.5 },
      audio: { type: "nextvlad", expansion: 2, groups: 2, clusters: 4, hidden: 32, dropout: 0.5 },
    },
    fusion: { type: "concat_se", embeddingDim: 32, dropout: 0.2, modalityDropout: 0 },
    heads: { mode: "tags" },
    training: { batchSize: 16, learningRate: 3e-3, warmupSteps: 0, decay: "none", clipNorm: 0 },
  };

  function losses(accelerate: boolean, steps: number): { losses: number[]; tensors: number[] } {
    disableOrtMatMul();
    disableWasmKernels();
    if (accelerate) {
      // minFlops 0: every product on ORT, so the curve covers them too.
      assert.ok(enableOrtMatMul({ minFlops: 0 }).enabled, "ORT");
      assert.ok(enableWasmKernels().simd, "wasm kernels");
    }
    const c = parseModelConfig(config);
    const base = tf.memory().numTensors;
    const model = new VideoModel(c, { categories: ["a"], tags: Array.from({ length: 10 }, (_, i) => `t${i}`) }, 2);
    const opt = new AdamOptimizer(c.training, steps, steps);
    const batch = syntheticBatch(c, 16, 10, 3);
    const out: number[] = [];
    const tensors: number[] = [];
    for (let i = 0; i < steps; i++) {
      const inputs = batchToInputs(batch, model);
      const labels = batchToLabels(batch);
      try {
        out.push(trainStep(model, opt, inputs, labels, i + 1).loss);
      } finally {
        disposeInputs(inputs, labels);
      }
      tensors.push(tf.memory().numTensors - base);
    }
    opt.dispose();
    model.dispose();
    disableOrtMatMul();
    disableWasmKernels();
    assert.equal(tf.memory().numTensors, base, "a training run leaves no tensors behind");
    return { losses: out, tensors };
  }

  it("15 steps follow the stock backend's loss curve (≤1e-4 rel per step) with a flat tensor count", () => {
    const stock = losses(false, 15);
    resetWasmKernelStats();
    const ours = losses(true, 15);
    const s = wasmKernelStats();
    assert.ok((s.calls.Tile ?? 0) > 0 && (s.calls.Sum ?? 0) > 0 && (s.calls[ADAM_UPDATE_KERNEL] ?? 0) > 0, `kernels used: ${JSON.stringify(s)}`);
    assert.ok(stock.losses[14] < stock.losses[0], `loss should go down: ${stock.losses[0]} → ${stock.losses[14]}`);
    for (let i = 0; i < 15; i++) {
      const e = Math.abs(ours.losses[i] - stock.losses[i]) / Math.max(1, Math.abs(stock.losses[i]));
      assert.ok(e <= 1e-4, `step ${i}: ${ours.losses[i]} vs stock ${stock.losses[i]} (rel ${e})`);
    }
    const steady = ours.tensors.slice(1);
    assert.ok(
      steady.every((t) => t === steady[0]),
      `numTensors per step: ${ours.tensors.join(",")}`,
    );
  });
});
