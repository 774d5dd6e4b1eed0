/**
 * ORT-backed BatchMatMul / _FusedMatMul wasm kernels against the stock wasm kernels.
 *
 * Error measure throughout: rel(x, ref) = max|x − ref| / max(1, max|ref|), i.e.
 * the worst absolute difference scaled by the reference's magnitude (absolute
 * for values ≤ 1). Products are ≤ 1e-5, the training loss curve ≤ 1e-4 per step.
 *
 * Every assert.ok carries a message: without one, node's assert rebuilds it by
 * re-parsing the (tsx-compiled, single-line) source, which can take minutes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import {
  DEFAULT_MIN_FLOPS,
  DEFAULT_MIN_FLOPS_TRANSPOSED,
  disableOrtMatMul,
  enableOrtMatMul,
  isOrtMatMulEnabled,
  ortMatMulConfig,
  ortMatMulStats,
  resetOrtMatMulStats,
  type OrtMatMulOptions,
} from "../src/train/accel/index.js";
import { broadcastShapes, planProduct } from "../src/train/accel/ortMatMul.js";
import { buildMatMulModel } from "../src/train/accel/matMulModel.js";
import { onnxType } from "../src/train/accel/onnxSchema.js";

function rel(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(x.length, ref.length, "length");
  let maxDiff = 0;
  let maxRef = 1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(x[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = d; // NaN propagates as a failure
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxDiff / maxRef;
}

function assertClose(x: tf.Tensor, ref: tf.Tensor, tol: number, what: string): void {
  assert.deepEqual(x.shape, ref.shape, `${what}: shape`);
  const e = rel(x.dataSync(), ref.dataSync());
  assert.ok(e <= tol, `${what}: rel error ${e} > ${tol}`);
}

let seed = 1;
function rand(shape: number[]): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, "float32", seed++);
}

/** Runs fn with the stock kernels, then with ORT (options), returns both results (kept). */
function both<T extends tf.Tensor | tf.Tensor[]>(fn: () => T, options: OrtMatMulOptions): { stock: T; ort: T } {
  disableOrtMatMul();
  const stock = tf.tidy(fn);
  const st = enableOrtMatMul(options);
  assert.ok(st.enabled, `enable failed: ${st.reason}`);
  try {
    return { stock, ort: tf.tidy(fn) };
  } finally {
    disableOrtMatMul();
  }
}

const FORCE: OrtMatMulOptions = { minFlops: 0 };
const TRANSPOSES: Array<[boolean, boolean]> = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

/** Operand shape for logical (batch..., rows×cols) given a transpose flag. */
function operand(batch: number[], rows: number, cols: number, transposed: boolean): number[] {
  return transposed ? [...batch, cols, rows] : [...batch, rows, cols];
}

before(async () => {
  await tf.setBackend("wasm");
  await tf.ready();
});

after(() => disableOrtMatMul());

describe("ONNX model building", () => {
  it("encodes a MatMul graph that decodes back with the expected nodes and opset", () => {
    const bytes = buildMatMulModel({ rank: 3, transposeA: true, transposeB: false, bias: true, activation: "leakyrelu", leakyreluAlpha: 0.1 });
    const ModelProto = onnxType("ModelProto");
    const m = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false }) as {
      ir_version: number;
      opset_import: Array<{ version: number }>;
      graph: { node: Array<{ op_type: string; attribute?: Array<{ name: string; f?: number; ints?: number[] }> }>; input: Array<{ name: string }> };
    };
    assert.equal(m.ir_version, 8);
    assert.equal(m.opset_import[0].version, 17);
    assert.deepEqual(
      m.graph.node.map((n) => n.op_type),
      ["Transpose", "MatMul", "Add", "LeakyRelu"],
    );
    assert.deepEqual(m.graph.node[0].attribute?.[0].ints, [0, 2, 1]);
    assert.ok(Math.abs((m.graph.node[3].attribute?.[0].f ?? 0) - 0.1) < 1e-7, "LeakyRelu alpha attribute");
    assert.deepEqual(
      m.graph.input.map((i) => i.name),
      ["a", "b", "bias"],
    );
  });

  it("plans batch folding and broadcasting", () => {
    assert.deepEqual(broadcastShapes([2, 1], [1, 3]), [2, 3]);
    assert.equal(broadcastShapes([2], [3]), null);
    // [B,M,K]×[K,N] folds into one [B·M,K] GEMM.
    const p = planProduct([4, 5, 6], [6, 7], false, false, true);
    assert.deepEqual([p?.aDims, p?.bDims, p?.outDims, p?.outShape], [[1, 20, 6], [1, 6, 7], [1, 20, 7], [4, 5, 7]]);
    // …but not with a transposed a.
    const q = planProduct([4, 6, 5], [6, 7], true, false, true);
    assert.deepEqual([q?.aDims, q?.bDims, q?.outDims], [[4, 6, 5], [1, 6, 7], [4, 5, 7]]);
    const r = planProduct([2, 1, 5, 6], [1, 3, 6, 7], false, false, true);
    assert.deepEqual([r?.rank, r?.aDims, r?.bDims, r?.outDims], [4, [2, 1, 5, 6], [1, 3, 6, 7], [2, 3, 5, 7]]);
    assert.equal(planProduct([5, 6], [7, 8], false, false, true), null, "inner mismatch → stock");
    assert.equal(planProduct([0, 6], [6, 8], false, false, true), null, "empty → stock");
  });
});

describe("enable / disable", () => {
  it("falls back cleanly when the binding cannot be loaded, leaving the stock kernels", () => {
    disableOrtMatMul();
    const stock = tf.getKernel("BatchMatMul", "wasm").kernelFunc;
    const st = enableOrtMatMul({ bindingModule: "/nonexistent/onnxruntime_binding.js" });
    assert.equal(st.enabled, false);
    assert.match(st.reason ?? "", /not loadable/);
    assert.equal(isOrtMatMulEnabled(), false);
    assert.equal(tf.getKernel("BatchMatMul", "wasm").kernelFunc, stock);
  });

  it("rejects bad options without enabling", () => {
    assert.equal(enableOrtMatMul({ threads: 0 }).enabled, false);
    assert.equal(enableOrtMatMul({ minFlops: -1 }).enabled, false);
    assert.equal(isOrtMatMulEnabled(), false);
  });

  it("replaces both kernels and disable restores the stock ones", () => {
    disableOrtMatMul();
    const stockBmm = tf.getKernel("BatchMatMul", "wasm");
    const stockFused = tf.getKernel("_FusedMatMul", "wasm");
    assert.deepEqual(enableOrtMatMul({ threads: 1 }), { enabled: true });
    assert.equal(isOrtMatMulEnabled(), true);
    assert.equal(ortMatMulConfig()?.threads, 1);
    assert.equal(ortMatMulConfig()?.minFlops, DEFAULT_MIN_FLOPS);
    assert.equal(ortMatMulConfig()?.minFlopsTransposed, DEFAULT_MIN_FLOPS_TRANSPOSED);
    assert.notEqual(tf.getKernel("BatchMatMul", "wasm").kernelFunc, stockBmm.kernelFunc);
    assert.notEqual(tf.getKernel("_FusedMatMul", "wasm").kernelFunc, stockFused.kernelFunc);
    // Enabling twice updates options instead of capturing our own kernel as "stock".
    assert.deepEqual(enableOrtMatMul({ threads: 2, minFlops: 123 }), { enabled: true });
    assert.equal(ortMatMulConfig()?.minFlops, 123);
    assert.equal(ortMatMulConfig()?.minFlopsTransposed, 123, "defaults to min(minFlops, DEFAULT_MIN_FLOPS_TRANSPOSED)");
    disableOrtMatMul();
    assert.equal(isOrtMatMulEnabled(), false);
    assert.equal(ortMatMulConfig(), null);
    assert.equal(tf.getKernel("BatchMatMul", "wasm").kernelFunc, stockBmm.kernelFunc);
    assert.equal(tf.getKernel("_FusedMatMul", "wasm").kernelFunc, stockFused.kernelFunc);
    // And the restored kernel still computes.
    const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    assert.deepEqual(Array.from(y.dataSync()), [11]);
    y.dispose();
  });
});

describe("BatchMatMul on ORT vs stock wasm", () => {
  it("rank-2, odd sizes, all transpose combinations", () => {
    resetOrtMatMulStats();
    let cases = 0;
    for (const [m, k, n] of [
      [17, 129, 3],
      [129, 17, 1],
      [1, 3, 129],
      [3, 1, 17],
      [129, 129, 17],
      [1, 1, 1],
    ]) {
      for (const [tA, tB] of TRANSPOSES) {
        const a = rand(operand([], m, k, tA));
        const b = rand(operand([], k, n, tB));
        const { stock, ort } = both(() => tf.matMul(a, b, tA, tB), FORCE);
        assertClose(ort, stock, 1e-5, `[${m}x${k}]·[${k}x${n}] tA=${tA} tB=${tB}`);
        tf.dispose([a, b, stock, ort]);
        cases++;
      }
    }
    assert.equal(ortMatMulStats().ortCalls, cases, "every product went through ORT");
  });

  it("rank-3 batches and broadcast batch dims, all transpose combinations", () => {
    resetOrtMatMulStats();
    let cases = 0;
    const B = 5;
    for (const [m, k, n] of [
      [17, 3, 129],
      [3, 129, 17],
    ]) {
      for (const [batchA, batchB] of [
        [[B], [B]],
        [[1], [B]],
        [[B], [1]],
        [[B], []],
        [[], [B]],
        [[2, 1], [1, 3]],
        [[2, 3], [3]],
      ]) {
        for (const [tA, tB] of TRANSPOSES) {
          const a = rand(operand(batchA, m, k, tA));
          const b = rand(operand(batchB, k, n, tB));
          const { stock, ort } = both(() => tf.matMul(a, b, tA, tB), FORCE);
          const what = `${JSON.stringify(a.shape)}·${JSON.stringify(b.shape)} tA=${tA} tB=${tB}`;
          assert.deepEqual(ort.shape, [...(broadcastShapes(batchA, batchB) ?? []), m, n], what);
          if (batchA.length <= 1 && batchB.length <= 1) {
            assertClose(ort, stock, 1e-5, what);
          } else {
            // The stock kernel only collapses batch dims (no multi-axis broadcast); check
            // those against a per-slice reference instead.
            const ref = tf.tidy(() => {
              const a4 = a.broadcastTo([2, 3, ...a.shape.slice(-2)]);
              const b4 = b.broadcastTo([2, 3, ...b.shape.slice(-2)]);
              return tf.matMul(a4, b4, tA, tB);
            });
            assertClose(ort, ref, 1e-5, what);
            ref.dispose();
          }
          tf.dispose([a, b, stock, ort]);
          cases++;
        }
      }
    }
    assert.equal(ortMatMulStats().ortCalls, cases);
  });

  it("above and below the default crossovers", () => {
    resetOrtMatMulStats();
    // 2·8³ = 1e3 FLOPs → stock; 2·48³ = 2.2e5 → stock only without transposes
    // (DEFAULT_MIN_FLOPS 5.2e5, DEFAULT_MIN_FLOPS_TRANSPOSED 3.3e4); 2.5e6 and 3.1e7 → ORT.
    for (const [m, k, n, expectOrtNN, expectOrtT] of [
      [8, 8, 8, false, false],
      [48, 48, 48, false, true],
      [96, 160, 80, true, true],
      [256, 320, 192, true, true],
    ] as const) {
      for (const [tA, tB] of TRANSPOSES) {
        const expectOrt = tA || tB ? expectOrtT : expectOrtNN;
        const a = rand(operand([], m, k, tA));
        const b = rand(operand([], k, n, tB));
        const before = ortMatMulStats();
        const { stock, ort } = both(() => tf.matMul(a, b, tA, tB), {});
        const afterStats = ortMatMulStats();
        assert.equal(afterStats.ortCalls - before.ortCalls, expectOrt ? 1 : 0, `${m}x${k}x${n} tA=${tA} tB=${tB} via ORT?`);
        assertClose(ort, stock, 1e-5, `[${m}x${k}]·[${k}x${n}] tA=${tA} tB=${tB}`);
        tf.dispose([a, b, stock, ort]);
      }
    }
  });

  it("copying path (zeroCopy off, as used for a shared wasm heap) gives the same results", () => {
    for (const [tA, tB] of TRANSPOSES) {
      const a = rand(operand([3], 33, 65, tA));
      const b = rand(operand([], 65, 17, tB));
      const { stock, ort } = both(() => tf.matMul(a, b, tA, tB), { minFlops: 0, zeroCopy: false });
      assertClose(ort, stock, 1e-5, `copy path tA=${tA} tB=${tB}`);
      tf.dispose([a, b, stock, ort]);
    }
  });
});

describe("_FusedMatMul on ORT vs stock", () => {
  type Act = "linear" | "relu" | "relu6" | "elu" | "leakyrelu" | "sigmoid" | "prelu";
  const ACTS: Act[] = ["linear", "relu", "relu6", "elu", "leakyrelu", "sigmoid", "prelu"];

  function reference(y: tf.Tensor, act: Act, alpha: tf.Tensor | undefined, leak: number): tf.Tensor {
    switch (act) {
      case "linear":
        return y;
      case "relu":
        return tf.relu(y);
      case "relu6":
        return tf.relu6(y);
      case "elu":
        return tf.elu(y);
      case "leakyrelu":
        return tf.leakyRelu(y, leak);
      case "sigmoid":
        return tf.sigmoid(y);
      case "prelu":
        // max(y,0) + α·min(y,0): the stock wasm Prelu kernel does not broadcast α of rank > 1.
        return tf.add(tf.relu(y), tf.mul(alpha as tf.Tensor, tf.minimum(y, 0)));
    }
  }

  // Reference: the unfused product + epilogue on the stock kernels. (The stock wasm
  // _FusedMatMul itself is wrong whenever a bias meets a transposed operand in
  // tfjs-backend-wasm 4.22, so it can only be a reference without transposes.)
  it("every activation, with and without rank-1 bias, all transposes", () => {
    resetOrtMatMulStats();
    let cases = 0;
    const [m, k, n] = [33, 65, 17];
    for (const act of ACTS) {
      for (const withBias of [false, true]) {
        for (const [tA, tB] of TRANSPOSES) {
          const a = rand(operand([], m, k, tA)) as tf.Tensor2D;
          const b = rand(operand([], k, n, tB)) as tf.Tensor2D;
          const bias = withBias ? rand([n]) : undefined;
          const alpha = act === "prelu" ? rand([n]) : undefined;
          const what = `${act} bias=${withBias} tA=${tA} tB=${tB}`;
          const fused = (): tf.Tensor =>
            tf.fused.matMul({ a, b, transposeA: tA, transposeB: tB, bias, activation: act, preluActivationWeights: alpha, leakyreluAlpha: 0.13 });
          disableOrtMatMul();
          const ref = tf.tidy(() => {
            const y = tf.matMul(a, b, tA, tB);
            return reference(bias ? tf.add(y, bias) : y, act, alpha, 0.13);
          });
          const { stock, ort } = both(fused, FORCE);
          assertClose(ort, ref, 1e-5, what);
          if (!tA && !tB) assertClose(ort, stock, 1e-5, `${what} (vs stock fused)`);
          tf.dispose([a, b, ref, stock, ort, ...(bias ? [bias] : []), ...(alpha ? [alpha] : [])]);
          cases++;
        }
      }
    }
    assert.equal(ortMatMulStats().ortCalls, cases, "every fused product went through ORT");
    assert.equal(ortMatMulStats().stockCalls, 0);
  });

  it("batched a with shared b, row and full-matrix biases, prelu weights (vs unfused stock ops)", () => {
    const [B, m, k, n] = [4, 9, 31, 13];
    for (const [biasShape, alphaShape] of [
      [[n], [n]],
      [[1, n], [1, 1, n]],
      [[m, n], [m, n]],
      [[B, m, n], [B, 1, n]],
      [[], [1]],
    ]) {
      for (const [tA, tB] of TRANSPOSES) {
        const a = rand(operand([B], m, k, tA));
        const b = rand(operand([], k, n, tB));
        const bias = rand(biasShape);
        const alpha = rand(alphaShape);
        const what = `bias ${JSON.stringify(biasShape)} prelu ${JSON.stringify(alphaShape)} tA=${tA} tB=${tB}`;
        for (const act of ["relu", "prelu"] as const) {
          disableOrtMatMul();
          const ref = tf.tidy(() => reference(tf.add(tf.matMul(a, b, tA, tB), bias), act, alpha, 0.2));
          assert.ok(enableOrtMatMul(FORCE).enabled, "enable");
          resetOrtMatMulStats();
          const ort = tf.fused.matMul({ a, b, transposeA: tA, transposeB: tB, bias, activation: act, preluActivationWeights: act === "prelu" ? alpha : undefined });
          assert.equal(ortMatMulStats().ortCalls, 1, `${what}: via ORT`);
          disableOrtMatMul();
          assertClose(ort, ref, 1e-5, `${act} ${what}`);
          tf.dispose([ref, ort]);
        }
        tf.dispose([a, b, bias, alpha]);
      }
    }
  });
});

/** Deterministic 2-layer MLP parameters. */
function mlpParams(dIn: number, dHidden: number, dOut: number): tf.Variable[] {
  const v = (init: tf.Tensor): tf.Variable => {
    const variable = tf.variable(init);
    init.dispose();
    return variable;
  };
  return [
    v(tf.randomNormal([dIn, dHidden], 0, 1 / Math.sqrt(dIn), "float32", 11)),
    v(tf.randomNormal([dHidden], 0, 0.1, "float32", 12)),
    v(tf.randomNormal([dHidden, dOut], 0, 1 / Math.sqrt(dHidden), "float32", 13)),
    v(tf.randomNormal([dOut], 0, 0.1, "float32", 14)),
  ];
}

function mlpLoss(x: tf.Tensor2D, y: tf.Tensor2D, [w1, b1, w2, b2]: tf.Tensor[]): tf.Scalar {
  const h = tf.fused.matMul({ a: x, b: w1 as tf.Tensor2D, bias: b1, activation: "relu" });
  const logits = tf.add(tf.matMul(h, w2 as tf.Tensor2D), b2);
  return tf.losses.sigmoidCrossEntropy(y, logits) as tf.Scalar;
}

describe("training through the ORT kernels", () => {
  const [N, D, H, C] = [96, 130, 257, 17];
  let x: tf.Tensor2D;
  let y: tf.Tensor2D;
  before(() => {
    x = tf.randomUniform([N, D], -1, 1, "float32", 21) as tf.Tensor2D;
    y = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([N, C], 0, 1, "float32", 22), 0.7), "float32")) as tf.Tensor2D;
  });
  after(() => tf.dispose([x, y]));

  it("MLP weight gradients match the stock backend; backward products run on ORT", () => {
    const params = mlpParams(D, H, C);
    const g = (): tf.Tensor[] => {
      const { grads } = tf.variableGrads(() => mlpLoss(x, y, params), params);
      return params.map((p) => grads[p.name]);
    };
    disableOrtMatMul();
    const stock = g();
    assert.ok(enableOrtMatMul(FORCE).enabled, "enable");
    resetOrtMatMulStats();
    const ort = g();
    const st = ortMatMulStats();
    disableOrtMatMul();
    // 2 forward products; backward: dW2, dh (transposed operands) and dW1 (tfjs prunes dx, x is no variable).
    assert.equal(st.ortCalls, 5, `ORT products in forward+backward: ${JSON.stringify(st)}`);
    assert.equal(st.stockCalls, 0);
    ["dW1", "db1", "dW2", "db2"].forEach((name, i) => assertClose(ort[i], stock[i], 1e-5, name));
    tf.dispose([...stock, ...ort, ...params]);
  });

  function train(options: OrtMatMulOptions | null, steps: number): { losses: number[]; tensors: number[] } {
    disableOrtMatMul();
    if (options !== null) assert.ok(enableOrtMatMul(options).enabled, "enable");
    const base = tf.memory().numTensors;
    const params = mlpParams(D, H, C);
    const opt = tf.train.adam(0.01);
    const losses: number[] = [];
    const tensors: number[] = [];
    for (let i = 0; i < steps; i++) {
      const loss = opt.minimize(() => mlpLoss(x, y, params), true, params) as tf.Scalar;
      losses.push(loss.dataSync()[0]);
      loss.dispose();
      tensors.push(tf.memory().numTensors - base);
    }
    opt.dispose();
    tf.dispose(params);
    disableOrtMatMul();
    assert.equal(tf.memory().numTensors, base, "a training run leaves no tensors behind");
    return { losses, tensors };
  }

  it("20 Adam steps give the stock loss curve (≤1e-4 rel per step) with a flat tensor count", () => {
    const stock = train(null, 20);
    resetOrtMatMulStats();
    const ort = train(FORCE, 20);
    assert.equal(ortMatMulStats().ortCalls, 20 * 5, "training products ran on ORT");
    assert.ok(stock.losses[19] < stock.losses[0] * 0.9, `loss should go down: ${stock.losses[0]} → ${stock.losses[19]}`);
    for (let i = 0; i < 20; i++) {
      const e = Math.abs(ort.losses[i] - stock.losses[i]) / Math.max(1, Math.abs(stock.losses[i]));
      assert.ok(e <= 1e-4, `step ${i}: ORT loss ${ort.losses[i]} vs stock ${stock.losses[i]} (rel ${e})`);
    }
    // Adam creates its slots in step 1; from then on nothing may accumulate.
    const steady = ort.tensors.slice(1);
    assert.ok(
      steady.every((t) => t === steady[0]),
      `numTensors per step: ${ort.tensors.join(",")}`,
    );
    assert.deepEqual(ort.tensors, stock.tensors);
  });

  it("tfjs-layers Dense model trains identically (Dense uses fused matMul)", async () => {
    const build = (): tf.Sequential => {
      const m = tf.sequential();
      m.add(tf.layers.dense({ inputShape: [D], units: H, activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }));
      m.add(tf.layers.dense({ units: C, kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }));
      m.compile({ optimizer: tf.train.adam(0.01), loss: "meanSquaredError" });
      return m;
    };
    const run = async (options: OrtMatMulOptions | null): Promise<number[]> => {
      disableOrtMatMul();
      if (options !== null) assert.ok(enableOrtMatMul(options).enabled, "enable");
      const m = build();
      const losses: number[] = [];
      for (let i = 0; i < 5; i++) losses.push((await m.trainOnBatch(x, y)) as number);
      m.dispose();
      disableOrtMatMul();
      return losses;
    };
    const stock = await run(null);
    resetOrtMatMulStats();
    const ort = await run(FORCE);
    assert.equal(ortMatMulStats().ortCalls, 5 * 5, "5 steps × (2 forward + 3 backward) products on ORT");
    ort.forEach((l, i) => assert.ok(Math.abs(l - stock[i]) / Math.max(1, stock[i]) <= 1e-4, `step ${i}: ${l} vs ${stock[i]}`));
  });
});
