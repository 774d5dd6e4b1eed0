import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { ParamStore, inferenceContext, trainingContext, type ForwardContext } from "../src/model/core.js";
import { TokenEmbedding, loadWordVectors } from "../src/model/encoders/embedding.js";
import { gatherRows } from "../src/model/layers.js";
import { TextCnn } from "../src/model/encoders/textcnn.js";
import { BiLstm } from "../src/model/encoders/bilstm.js";
import { TextEncoderConfig, TitleEncoder, buildTextEncoder } from "../src/model/encoders/text.js";
import { allFinite, close } from "./helpers/tensors.js";

const E = 6;

/** Prefix mask [B, L] from per-row lengths. */
function prefixMask(lengths: number[], l: number): tf.Tensor2D {
  return tf.tensor2d(lengths.map((n) => Array.from({ length: l }, (_, t) => (t < n ? 1 : 0))), [lengths.length, l]);
}

/** x with its padded positions overwritten by random values, plus `extra` random padded steps appended. */
function repad(x: tf.Tensor3D, mask: tf.Tensor2D, extra: number, seed: number): { x: tf.Tensor3D; mask: tf.Tensor2D } {
  const [b, l, e] = x.shape;
  const m3 = mask.reshape([b, l, 1]);
  const noisy = tf.add(tf.mul(x, m3), tf.mul(tf.sub(1, m3), tf.randomNormal([b, l, e], 0, 3, "float32", seed)));
  return {
    x: tf.concat([noisy, tf.randomNormal([b, extra, e], 0, 3, "float32", seed + 1)], 1) as tf.Tensor3D,
    mask: tf.concat([mask, tf.zeros([b, extra])], 1) as tf.Tensor2D,
  };
}

/** Runs fn with a fresh store and always disposes it: tfjs variable names are engine-global. */
async function withStore<T>(seed: number, fn: (store: ParamStore) => T | Promise<T>): Promise<T> {
  const store = new ParamStore(seed);
  try {
    return await fn(store);
  } finally {
    store.dispose();
  }
}

function assertZero(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) assert.ok(values[i] === 0, `${what}[${i}] = ${values[i]}, expected 0`);
}

before(async () => {
  await tf.setBackend("cpu");
});

describe("TokenEmbedding", () => {
  it("looks up [B, L, dim] rows, with pad positions exactly zero", async () => {
    await withStore(1, (store) => {
      const emb = new TokenEmbedding(store.scope("emb"), { vocabSize: 10, dim: 4 });
      const ids = tf.tensor2d([[3, 1, 0], [0, 0, 0]], [2, 3], "int32");
      const out = emb.lookup(ids);
      assert.deepEqual(out.shape, [2, 3, 4]);
      const table = emb.table.arraySync() as number[][];
      const got = out.arraySync() as number[][][];
      close(got[0][0], table[3], 0, "row 3");
      close(got[0][1], table[1], 0, "row 1 (unknown)");
      assertZero([...got[0][2], ...got[1].flat()], "pad rows");
      assert.throws(() => emb.lookup(tf.tensor2d([[1]], [1, 1], "float32")), /int32/);
      assert.throws(() => emb.lookup(tf.tensor2d([[10]], [1, 1], "int32")), /outside/);
    });
  });

  it("has the same gradient as tf.gather (duplicates summed), without UnsortedSegmentSum", () => {
    const table = tf.variable(tf.randomNormal([5, 3], 0, 1, "float32", 3));
    const ids = tf.tensor1d([4, 1, 1, 0, 4, 4], "int32");
    const w = tf.randomNormal([6, 3], 0, 1, "float32", 4);
    const ours = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t as tf.Tensor2D, ids), w)))(table);
    const ref = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), w)))(table);
    close(ours.dataSync(), ref.dataSync(), 1e-6, "gradient");
    assert.ok(Math.abs(ours.dataSync()[0]) > 0);
  });
});

describe("loadWordVectors", () => {
  const dir = mkdtempSync(join(tmpdir(), "vidrecall-wv-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads word2vec text with a header, fills known words and counts them", async () => {
    const path = join(dir, "w2v.txt");
    writeFileSync(path, "4 3\ncat 1 2 3 \nzebra 9 9 9\ndog -1 0.5 2e-1\ncat 7 7 7\n\n");
    const vocab = ["<pad>", "<unk>", "cat", "dog", "bird"];
    const wv = await loadWordVectors(path, vocab, 3);
    assert.equal(wv.foundCount, 2);
    assert.equal(wv.linesRead, 4);
    assert.deepEqual([...wv.found], [0, 0, 1, 1, 0]);
    close(wv.values.subarray(6, 12), [1, 2, 3, -1, 0.5, 0.2], 1e-7, "cat, dog (first occurrence wins)");

    await withStore(2, (store) => {
      const emb = new TokenEmbedding(store.scope("emb"), { vocabSize: 6, dim: 3 });
      const before = emb.table.arraySync() as number[][];
      emb.initFromWordVectors(wv);
      const afterInit = emb.table.arraySync() as number[][];
      close(afterInit[2], [1, 2, 3], 1e-7, "cat row");
      close(afterInit[3], [-1, 0.5, 0.2], 1e-7, "dog row");
      for (const id of [0, 1, 4, 5]) close(afterInit[id], before[id], 0, `row ${id} untouched`);
    });
  });

  it("reads GloVe text (no header) with a word → id map, CRLF line ends", async () => {
    const path = join(dir, "glove.txt");
    writeFileSync(path, "the 0.1 0.2\r\nof 0.3 0.4\r\nnew\u00a0york 0.5 0.6\r\n");
    const wv = await loadWordVectors(path, new Map([["of", 7], ["new\u00a0york", 2]]), 2);
    assert.equal(wv.rows, 8);
    assert.equal(wv.foundCount, 2);
    close(wv.values.subarray(14, 16), [0.3, 0.4], 1e-7, "of");
    close(wv.values.subarray(4, 6), [0.5, 0.6], 1e-7, "a word with a no-break space");
  });

  it("names the file and line of a row with the wrong number of values", async () => {
    const path = join(dir, "bad.txt");
    writeFileSync(path, "2 3\na 1 2 3\nb 1 2\n");
    await assert.rejects(loadWordVectors(path, ["a", "b"], 3), (e: Error) => e.message.includes(`${path}:3`) && /2 values/.test(e.message));
    const nan = join(dir, "nan.txt");
    writeFileSync(nan, "a 1 x 3\n");
    await assert.rejects(loadWordVectors(nan, ["a"], 3), (e: Error) => e.message.includes(`${nan}:1`));
    const header = join(dir, "header.txt");
    writeFileSync(header, "2 5\n");
    await assert.rejects(loadWordVectors(header, ["a"], 3), (e: Error) => e.message.includes(`${header}:1`));
  });
});

/** Plain-loop TextCNN for one width, from the block's own variables. */
function naiveTextCnn(x: number[][][], lengths: number[], kernel: number[][], bias: number[], w: number): number[][] {
  const f = bias.length;
  return x.map((seq, b) => {
    const n = lengths[b];
    if (n === 0) return new Array(f).fill(0);
    const starts = n >= w ? Array.from({ length: n - w + 1 }, (_, j) => j) : [0];
    return Array.from({ length: f }, (_, o) => {
      let best = -Infinity;
      for (const j of starts) {
        let z = bias[o];
        for (let k = 0; k < w; k++) {
          const pos = j + k;
          if (pos >= n) continue; // zero padding of a short title
          for (let e = 0; e < seq[pos].length; e++) z += seq[pos][e] * kernel[k * seq[pos].length + e][o];
        }
        best = Math.max(best, z);
      }
      return Math.max(best, 0);
    });
  });
}

describe("TextCnn", () => {
  it("outputs [B, widths·F] and matches a plain-loop convolution with masked max", async () => {
    await withStore(3, (store) => {
      const scope = store.scope("cnn");
      const cnn = new TextCnn(scope, E, { widths: [2, 3], filters: 5 });
      assert.equal(cnn.outputDim, 10);
      const lengths = [7, 3, 2, 1, 0];
      const x = tf.randomNormal([5, 7, E], 0, 1, "float32", 5) as tf.Tensor3D;
      const mask = prefixMask(lengths, 7);
      const out = cnn.apply(x, mask, inferenceContext());
      assert.deepEqual(out.shape, [5, 10]);
      const xa = x.arraySync();
      const got = out.arraySync();
      [2, 3].forEach((w, i) => {
        const kernel = store.variable(`cnn/conv_w${w}/kernel`).arraySync() as number[][];
        const bias = store.variable(`cnn/conv_w${w}/bias`).arraySync() as number[];
        const want = naiveTextCnn(xa, lengths, kernel, bias, w);
        want.forEach((row, b) => close(got[b].slice(i * 5, i * 5 + 5), row, 1e-5, `width ${w} row ${b}`));
      });
      // Empty title: exactly zero; every output finite.
      assertZero(got[4], "empty title");
      allFinite(out, "TextCnn output");
    });
  });

  it("ignores padding: random values at padded positions and appended padding change nothing", async () => {
    await withStore(4, (store) => {
      const cnn = new TextCnn(store.scope("cnn"), E, { widths: [2, 3, 4, 5], filters: 8 });
      const lengths = [6, 4, 1, 0];
      const x = tf.randomNormal([4, 6, E], 0, 1, "float32", 6) as tf.Tensor3D;
      const mask = prefixMask(lengths, 6);
      const base = cnn.apply(x, mask, inferenceContext()).dataSync();
      const padded = repad(x, mask, 5, 60);
      close(cnn.apply(padded.x, padded.mask, inferenceContext()).dataSync(), base, 1e-5, "re-padded");
      // A batch shorter than the widest filter (L = 2 < 5) is still defined.
      const short = cnn.apply(tf.slice(x, [0, 0, 0], [4, 2, E]), tf.slice(mask, [0, 0], [4, 2]), inferenceContext());
      allFinite(short, "short batch");
    });
  });

  it("trains on the wasm backend (no conv-backprop kernel), with the same gradients as on cpu", async () => {
    // Runs one SGD set-up per backend; returns the first-step gradients and the loss curve.
    const run = (): { grads: Map<string, Float32Array>; losses: number[] } => {
      const store = new ParamStore(11);
      try {
        const emb = new TokenEmbedding(store.scope("emb"), { vocabSize: 20, dim: E });
        const cnn = new TextCnn(store.scope("cnn"), E, { widths: [2, 3, 4, 5], filters: 4 });
        const readout = store.scope("readout").get("w", [cnn.outputDim, 1], "glorotUniform");
        const ids = tf.tensor2d([[3, 4, 5, 6, 7, 0], [8, 9, 0, 0, 0, 0], [10, 11, 12, 13, 14, 15], [0, 0, 0, 0, 0, 0]], [4, 6], "int32");
        const mask = tf.cast(tf.notEqual(ids, 0), "float32") as tf.Tensor2D;
        const target = tf.tensor2d([[1], [-1], [2], [0]]);
        const lossFn = (): tf.Scalar => {
          const h = cnn.apply(emb.lookup(ids), mask, inferenceContext());
          return tf.mean(tf.square(tf.sub(tf.matMul(h, readout as tf.Tensor2D), target))) as tf.Scalar;
        };
        const vars = store.trainableVariables();
        const { grads, value } = tf.variableGrads(lossFn, vars);
        // Variable names carry a per-store suffix ("name@3"): compare by parameter name.
        const firstGrads = new Map(Object.entries(grads).map(([k, g]) => [k.replace(/@\d+$/, ""), g.dataSync() as Float32Array]));
        const losses = [value.dataSync()[0]];
        const opt = tf.train.sgd(0.05);
        opt.applyGradients(grads);
        for (let step = 0; step < 3; step++) {
          const l = opt.minimize(lossFn, true, vars)!;
          losses.push(l.dataSync()[0]);
        }
        opt.dispose();
        return { grads: firstGrads, losses };
      } finally {
        store.dispose();
      }
    };

    const ok = await tf.setBackend("wasm");
    assert.equal(ok, true, "the wasm backend failed to initialise");
    assert.equal(tf.getBackend(), "wasm");
    let wasm: ReturnType<typeof run>;
    try {
      wasm = run();
    } finally {
      await tf.setBackend("cpu");
    }
    const cpu = run();
    for (const l of wasm.losses) assert.ok(Number.isFinite(l));
    assert.ok(wasm.losses[3] < wasm.losses[0], `loss did not go down on wasm: ${wasm.losses.join(", ")}`);
    assert.equal(wasm.grads.size, 10);
    for (const [name, g] of wasm.grads) {
      assert.ok(g.some((v) => v !== 0), `${name}: zero gradient on wasm`);
      close(g, cpu.grads.get(name)!, 1e-4, `${name} wasm vs cpu`);
    }
  });
});

/** Runs `lstm` forward (its own code path) on each row's real tokens, reversed. */
function reversedRuns(bilstm: BiLstm, x: tf.Tensor3D, lengths: number[]): (number[][] | null)[] {
  return lengths.map((n, b) => {
    if (n === 0) return null;
    const seq = tf.reverse(tf.slice(x, [b, 0, 0], [1, n, x.shape[2]]), 1) as tf.Tensor3D;
    return (bilstm.backward.run(seq, tf.ones([1, n]), false).outputs.arraySync() as number[][][])[0];
  });
}

describe("BiLstm", () => {
  it("computes the LSTM cell as written (i, f, g, o; forget bias)", async () => {
    await withStore(5, (store) => {
      const bilstm = new BiLstm(store.scope("lstm"), 1, { hidden: 1, attentionDim: 2, forgetBias: 1 });
      const cell = bilstm.forward;
      cell.kernel.assign(tf.tensor2d([[0.5, -0.3, 0.8, 0.2], [0.1, 0.4, -0.6, 0.7]]));
      cell.bias.assign(tf.tensor1d([0.1, 0, -0.2, 0.3]));
      const { h, c } = cell.step(tf.tensor2d([[2]]), tf.tensor2d([[0.5]]), tf.tensor2d([[-1]]));
      const sig = (v: number) => 1 / (1 + Math.exp(-v));
      const i = sig(2 * 0.5 + 0.5 * 0.1 + 0.1);
      const f = sig(2 * -0.3 + 0.5 * 0.4 + 0 + 1);
      const g = Math.tanh(2 * 0.8 + 0.5 * -0.6 - 0.2);
      const o = sig(2 * 0.2 + 0.5 * 0.7 + 0.3);
      const cWant = f * -1 + i * g;
      close(c.dataSync(), [cWant], 1e-6, "c");
      close(h.dataSync(), [o * Math.tanh(cWant)], 1e-6, "h");
    });
  });

  it("backward direction equals the LSTM run on each sequence reversed within its own length", async () => {
    await withStore(6, (store) => {
      const bilstm = new BiLstm(store.scope("lstm"), E, { hidden: 4, attentionDim: 3 });
      const lengths = [5, 2, 0, 1];
      const x = tf.randomNormal([4, 6, E], 0, 1, "float32", 7) as tf.Tensor3D;
      const mask = prefixMask(lengths, 6);
      const outs = bilstm.sequenceOutputs(x, mask).arraySync() as number[][][];
      const runs = reversedRuns(bilstm, x, lengths);
      lengths.forEach((n, b) => {
        for (let t = 0; t < 6; t++) {
          const bw = outs[b][t].slice(4);
          if (t < n) close(bw, runs[b]![n - 1 - t], 1e-5, `row ${b} step ${t}`);
          else close(bw, [0, 0, 0, 0], 0, `row ${b} padded step ${t}`);
        }
      });
      // And the forward direction equals the forward LSTM on the unpadded prefix.
      const fwd1 = bilstm.forward.run(tf.slice(x, [1, 0, 0], [1, 2, E]), tf.ones([1, 2]), false).outputs.arraySync() as number[][][];
      close(outs[1][1].slice(0, 4), fwd1[0][1], 1e-6, "forward row 1");
    });
  });

  it("ignores padding and pools an empty title to zero", async () => {
    await withStore(7, (store) => {
      const bilstm = new BiLstm(store.scope("lstm"), E, { hidden: 4, attentionDim: 3 });
      assert.equal(bilstm.outputDim, 8);
      const lengths = [6, 3, 1, 0];
      const x = tf.randomNormal([4, 6, E], 0, 1, "float32", 8) as tf.Tensor3D;
      const mask = prefixMask(lengths, 6);
      const out = bilstm.apply(x, mask, inferenceContext());
      assert.deepEqual(out.shape, [4, 8]);
      allFinite(out, "BiLstm output");
      const base = out.dataSync();
      const padded = repad(x, mask, 4, 80);
      close(bilstm.apply(padded.x, padded.mask, inferenceContext()).dataSync(), base, 1e-5, "re-padded");
      assertZero((out.arraySync() as number[][])[3], "empty title");
      assert.ok((out.arraySync() as number[][])[2].some((v) => v !== 0));
    });
  });
});

describe("title encoder", () => {
  it("parses the three variants with defaults and sizes the outputs", async () => {
    const cnn = TextEncoderConfig.parse({ type: "textcnn" });
    assert.equal(cnn.type === "textcnn" && cnn.textcnn.filters, 100);
    assert.deepEqual(cnn.type === "textcnn" && cnn.textcnn.widths, [2, 3, 4, 5]);
    assert.equal(cnn.hidden, 1024);
    const both = TextEncoderConfig.parse({ type: "textcnn+bilstm", hidden: 16, bilstm: { hidden: 8 } });
    assert.equal(both.type === "textcnn+bilstm" && both.bilstm.attentionDim, 128);
    assert.throws(() => TextEncoderConfig.parse({ type: "transformer" }));
    await withStore(8, (store) => {
      const enc = buildTextEncoder({ type: "textcnn+bilstm", hidden: 16, textcnn: { filters: 3 }, bilstm: { hidden: 4, attentionDim: 4 } }, store.scope("title"), E) as TitleEncoder;
      assert.equal(enc.outputDim, 16);
      assert.equal(enc.branches.reduce((n, b) => n + b.outputDim, 0), 12 + 8);
      assert.equal(buildTextEncoder({ type: "bilstm", hidden: 5 }, store.scope("t2"), E).outputDim, 5);
    });
  });

  const cfg: Parameters<typeof buildTextEncoder>[0] = {
    type: "textcnn+bilstm",
    hidden: 12,
    dropout: 0.1,
    textcnn: { widths: [2, 3], filters: 4 },
    bilstm: { hidden: 4, attentionDim: 4 },
  };

  it("gives finite and non-zero gradients for every trainable variable, embedding included", async () => {
    await withStore(9, (store) => {
      const emb = new TokenEmbedding(store.scope("emb"), { vocabSize: 30, dim: E });
      const enc = buildTextEncoder(cfg, store.scope("title"), E);
      const ids = tf.tensor2d([[5, 6, 7, 8, 0], [9, 10, 0, 0, 0], [11, 0, 0, 0, 0], [0, 0, 0, 0, 0], [12, 13, 14, 15, 16]], [5, 5], "int32");
      const mask = tf.cast(tf.notEqual(ids, 0), "float32") as tf.Tensor2D;
      const r = tf.randomNormal([5, 12], 0, 1, "float32", 10);
      const ctx = trainingContext(3);
      const vars = store.trainableVariables();
      const { grads, value } = tf.variableGrads(() => tf.sum(tf.mul(enc.apply(emb.lookup(ids), mask, ctx), r)) as tf.Scalar, vars);
      assert.ok(Number.isFinite(value.dataSync()[0]));
      assert.equal(Object.keys(grads).length, vars.length);
      for (const [name, g] of Object.entries(grads)) {
        allFinite(g, name);
        assert.ok(g.dataSync().some((v) => v !== 0), `${name}: all-zero gradient`);
      }
      // BN statistics are queued, not applied.
      assert.equal(ctx.statUpdates!.length, 2);
      close(store.variable("title/bn/moving_mean").dataSync(), new Array(12).fill(0), 0, "moving mean untouched");
    });
  });

  it("outputs zero for empty titles and keeps them out of the BN batch statistics", async () => {
    await withStore(10, (store) => {
      const enc = buildTextEncoder({ ...cfg, dropout: 0 }, store.scope("title"), E);
      const x = tf.randomNormal([3, 4, E], 0, 1, "float32", 11) as tf.Tensor3D;
      const mask = prefixMask([4, 2, 0], 4);
      const ctx: ForwardContext = trainingContext(1);
      const withEmpty = enc.apply(x, mask, ctx).arraySync() as number[][];
      const without = enc.apply(tf.slice(x, [0, 0, 0], [2, 4, E]), tf.slice(mask, [0, 0], [2, 4]), trainingContext(1)).arraySync() as number[][];
      close(withEmpty[0], without[0], 1e-5, "row 0");
      close(withEmpty[1], without[1], 1e-5, "row 1");
      assertZero(withEmpty[2], "empty title (training)");
      const inf = enc.apply(x, mask, inferenceContext());
      allFinite(inf, "inference output");
      assertZero((inf.arraySync() as number[][])[2], "empty title (inference)");
    });
  });

  it("the whole title branch (embedding, TextCNN + Bi-LSTM, dropout, Dense, BN) trains on wasm", async () => {
    const ok = await tf.setBackend("wasm");
    assert.equal(ok, true, "the wasm backend failed to initialise");
    try {
      await withStore(12, (store) => {
        const emb = new TokenEmbedding(store.scope("emb"), { vocabSize: 30, dim: E });
        const enc = buildTextEncoder(cfg, store.scope("title"), E);
        const ids = tf.tensor2d([[5, 6, 7, 0], [9, 10, 0, 0], [0, 0, 0, 0], [12, 13, 14, 15]], [4, 4], "int32");
        const mask = tf.cast(tf.notEqual(ids, 0), "float32") as tf.Tensor2D;
        const r = tf.randomNormal([4, 12], 0, 1, "float32", 12);
        const opt = tf.train.adam(0.01);
        const vars = store.trainableVariables();
        for (let step = 0; step < 2; step++) {
          const ctx = trainingContext(step);
          const { grads, value } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(enc.apply(emb.lookup(ids), mask, ctx), r))) as tf.Scalar, vars);
          assert.ok(Number.isFinite(value.dataSync()[0]));
          for (const [name, g] of Object.entries(grads)) allFinite(g, name);
          opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
        }
        opt.dispose();
      });
    } finally {
      await tf.setBackend("cpu");
    }
  });
});
