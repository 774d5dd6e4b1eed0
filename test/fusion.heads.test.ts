import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { ParamStore, inferenceContext, trainingContext } from "../src/model/core.js";
import { FusionConfig, GateFusion, buildFusion, dropModalities, l2Normalize, parseFusionConfig, type FusionConfigInput } from "../src/model/fusion.js";
import {
  CategoryHead,
  MultiTaskLoss,
  MoeTagHead,
  MultiTaskLossConfig,
  TagHead,
  buildTagHead,
  growCategoryHead,
  growTagHead,
  snapshotWeights,
} from "../src/model/heads.js";
import { parseModelConfig } from "../src/model/config.js";
import { VideoModel } from "../src/model/model.js";
import { allFinite, close } from "./helpers/tensors.js";

/** Runs fn with a fresh store and always disposes it: tfjs variable names are engine-global. */
async function withStore<T>(seed: number, fn: (store: ParamStore) => T | Promise<T>): Promise<T> {
  const store = new ParamStore(seed);
  try {
    return await fn(store);
  } finally {
    store.dispose();
  }
}

const DIMS = [5, 3, 4];
const B = 6;

function inputs(seed: number): tf.Tensor2D[] {
  return DIMS.map((d, i) => tf.randomNormal([B, d], 0, 1, "float32", seed + i) as tf.Tensor2D);
}

/** Rows 1 and 4 miss modality 1; row 3 misses modalities 0 and 2. */
function presence(): tf.Tensor1D[] {
  return [tf.tensor1d([1, 1, 1, 0, 1, 1]), tf.tensor1d([1, 0, 1, 1, 0, 1]), tf.tensor1d([1, 1, 1, 0, 1, 1])];
}

before(async () => {
  await tf.setBackend("cpu");
});

describe("fusion config", () => {
  it("defaults to concat_se with a 256-d embedding and accepts gate", () => {
    const c = parseFusionConfig();
    assert.equal(c.type, "concat_se");
    assert.equal(c.embeddingDim, 256);
    assert.equal(c.type === "concat_se" && c.seReduction, 8);
    assert.equal(c.modalityDropout, 0);
    assert.equal(parseFusionConfig({ type: "gate", embeddingDim: 8 }).type, "gate");
    assert.throws(() => FusionConfig.parse({ type: "attention" }));
    assert.throws(() => parseFusionConfig({ modalityDropout: 1 }));
  });
});

const variants: FusionConfigInput[] = [
  { type: "concat_se", embeddingDim: 8, seReduction: 2, dropout: 0.3, modalityDropout: 0.3 },
  { type: "gate", embeddingDim: 8, dropout: 0.3, modalityDropout: 0.3 },
];

for (const cfg of variants) {
  const type = "type" in cfg ? cfg.type : "concat_se";
  describe(`fusion ${type}`, () => {
    it("outputs [B, embeddingDim], finite", async () => {
      await withStore(1, (store) => {
        const fusion = buildFusion(cfg, store.scope("fusion"), DIMS);
        const out = fusion.apply(inputs(1), presence(), inferenceContext());
        assert.deepEqual(out.shape, [B, 8]);
        allFinite(out, "fused");
        assert.throws(() => fusion.apply(inputs(1).slice(0, 2), presence().slice(0, 2), inferenceContext()), /3 modalities/);
      });
    });

    it("does not depend on a missing modality's vector values (inference and training)", async () => {
      await withStore(2, (store) => {
        const fusion = buildFusion(cfg, store.scope("fusion"), DIMS);
        const a = inputs(10);
        // Replace modality 1 in the rows where it is missing (1 and 4) and modalities 0, 2 in row 3.
        const missing = presence().map((p) => tf.sub(1, p).reshape([B, 1]));
        const b = a.map((v, i) => tf.add(tf.mul(v, tf.sub(1, missing[i])), tf.mul(missing[i], tf.randomNormal(v.shape, 5, 10, "float32", 99 + i))) as tf.Tensor2D);
        assert.ok(tf.any(tf.notEqual(a[1], b[1])).dataSync()[0], "the perturbation changed nothing");
        close(fusion.apply(b, presence(), inferenceContext()).dataSync(), fusion.apply(a, presence(), inferenceContext()).dataSync(), 1e-6, "inference");
        // Same seed → same dropout and modality-dropout draws, so any difference would come from the missing vectors.
        close(fusion.apply(b, presence(), trainingContext(5)).dataSync(), fusion.apply(a, presence(), trainingContext(5)).dataSync(), 1e-5, "training");
      });
    });

    it("knows a modality is missing: absent ≠ present with a zero vector", async () => {
      await withStore(3, (store) => {
        const fusion = buildFusion(cfg, store.scope("fusion"), DIMS);
        const zeroed = inputs(20).map((v, i) => (i === 1 ? tf.zerosLike(v) : v));
        const absent = fusion.apply(zeroed, presence(), inferenceContext()).arraySync() as number[][];
        const allPresent = presence().map((p, i) => (i === 1 ? tf.onesLike(p) : p));
        const present = fusion.apply(zeroed, allPresent, inferenceContext()).arraySync() as number[][];
        const diff = absent[1].reduce((s, v, k) => s + Math.abs(v - present[1][k]), 0);
        assert.ok(diff > 1e-4, `row 1 output is the same whether modality 1 is absent or a zero vector (Σ|Δ| ${diff})`);
        close(absent[0], present[0], 1e-6, "row 0 (modality 1 present in both)");
      });
    });

    it("modality dropout is training-only and deterministic per seed", async () => {
      await withStore(4, (store) => {
        const fusion = buildFusion(cfg, store.scope("fusion"), DIMS);
        const noDrop = buildFusion({ ...cfg, modalityDropout: 0, dropout: 0 }, store.scope("fusion"), DIMS);
        const x = inputs(30);
        close(fusion.apply(x, presence(), inferenceContext()).dataSync(), noDrop.apply(x, presence(), inferenceContext()).dataSync(), 0, "inference ignores dropout");
        const s1 = fusion.apply(x, presence(), trainingContext(7)).dataSync();
        close(fusion.apply(x, presence(), trainingContext(7)).dataSync(), s1, 0, "same seed");
        const s2 = fusion.apply(x, presence(), trainingContext(8)).dataSync();
        assert.ok(s1.some((v, i) => v !== s2[i]), "different seeds gave the same training output");
      });
    });

    it("gives finite, non-zero gradients for every trainable variable", async () => {
      await withStore(5, (store) => {
        const fusion = buildFusion(cfg, store.scope("fusion"), DIMS);
        const x = inputs(40);
        const r = tf.randomNormal([B, 8], 0, 1, "float32", 41);
        const vars = store.trainableVariables();
        const { grads } = tf.variableGrads(() => tf.sum(tf.mul(l2Normalize(fusion.apply(x, presence(), trainingContext(1))), r)) as tf.Scalar, vars);
        assert.equal(Object.keys(grads).length, vars.length);
        for (const [name, g] of Object.entries(grads)) {
          allFinite(g, name);
          assert.ok(g.dataSync().some((v) => v !== 0), `${name}: all-zero gradient`);
        }
      });
    });
  });
}

describe("gate fusion weights", () => {
  it("are zero for missing modalities and sum to 1 over the present ones", async () => {
    await withStore(13, (store) => {
      const fusion = buildFusion({ type: "gate", embeddingDim: 8 }, store.scope("fusion"), DIMS);
      assert.ok(fusion instanceof GateFusion);
      const w = fusion.gateWeights(inputs(70), presence(), inferenceContext()).arraySync() as number[][];
      const p = presence().map((t) => t.arraySync() as number[]);
      w.forEach((row, b) => {
        row.forEach((v, i) => (p[i][b] === 0 ? assert.equal(v, 0, `row ${b} modality ${i}`) : assert.ok(v > 0)));
        assert.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-5, `row ${b} sums to ${row.reduce((a, v) => a + v, 0)}`);
      });
    });
  });
});

describe("dropModalities", () => {
  const n = 400;
  const m = 3;
  const p = Array.from({ length: m }, (_, i) => tf.cast(tf.greater(tf.randomUniform([n], 0, 1, "float32", 200 + i), 0.3), "float32") as tf.Tensor1D);

  it("drops only present modalities and never all of a video's present ones", () => {
    const out = dropModalities(p, 0.8, 123).map((t) => t.arraySync() as number[]);
    const inp = p.map((t) => t.arraySync() as number[]);
    let dropped = 0;
    let present = 0;
    for (let b = 0; b < n; b++) {
      const had = inp.reduce((s, col) => s + col[b], 0);
      const kept = out.reduce((s, col) => s + col[b], 0);
      for (let i = 0; i < m; i++) assert.ok(out[i][b] <= inp[i][b], `row ${b}: modality ${i} appeared`);
      if (had > 0) assert.ok(kept >= 1, `row ${b}: all ${had} present modalities dropped`);
      else assert.equal(kept, 0);
      present += had;
      dropped += had - kept;
    }
    // At rate 0.8 most present modalities go, but the rescue keeps ≥ 1 per video.
    assert.ok(dropped / present > 0.4 && dropped / present < 0.8, `drop fraction ${dropped / present}`);
  });

  it("is deterministic per seed", () => {
    const a = dropModalities(p, 0.5, 9).map((t) => t.arraySync());
    assert.deepEqual(dropModalities(p, 0.5, 9).map((t) => t.arraySync()), a);
    assert.notDeepEqual(dropModalities(p, 0.5, 10).map((t) => t.arraySync()), a);
    // A single modality is never dropped.
    assert.deepEqual(dropModalities([p[0]], 0.9, 1)[0].arraySync(), p[0].arraySync());
  });
});

describe("l2Normalize", () => {
  it("gives unit rows and leaves a zero row at zero", () => {
    const y = l2Normalize(tf.tensor2d([[3, 4], [0, 0], [1e-3, 0]])).arraySync() as number[][];
    close(y[0], [0.6, 0.8], 1e-6, "row 0");
    close(y[1], [0, 0], 0, "zero row");
    close(y[2], [1, 0], 1e-6, "small row");
  });
});

describe("heads and losses", () => {
  it("CategoryHead: sparse cross-entropy by hand, label −1 ignored", async () => {
    await withStore(6, (store) => {
      const head = new CategoryHead(store.scope("cat"), 4, { numClasses: 3 });
      const logits = tf.tensor2d([[1, 2, 0], [0, 0, 0], [3, 1, 2]]);
      const loss = head.loss(logits, tf.tensor1d([1, -1, 0], "int32")).dataSync()[0];
      const want = (Math.log(Math.E + Math.E ** 2 + 1) - 2 + Math.log(Math.E ** 3 + Math.E + Math.E ** 2) - 3) / 2;
      assert.ok(Math.abs(loss - want) < 1e-5, `${loss} vs ${want}`);
      assert.equal(head.loss(logits, tf.tensor1d([-1, -1, -1], "int32")).dataSync()[0], 0);
      const big = head.loss(tf.tensor2d([[1000, -1000, 0]]), tf.tensor1d([1], "int32")).dataSync()[0];
      assert.ok(Math.abs(big - 2000) < 1e-2, `large logits: ${big}`);
      assert.throws(() => head.loss(logits, tf.tensor1d([3, 0, 0], "int32")), /outside/);
      close(head.probabilities(logits).sum(1).dataSync(), [1, 1, 1], 1e-6, "softmax rows");
    });
  });

  it("TagHead: binary cross-entropy by hand, summed over tags, row weights", async () => {
    await withStore(7, (store) => {
      const head = new TagHead(store.scope("tags"), 4, { numTags: 2 });
      const logits = tf.tensor2d([[0, 2], [-3, 100]]);
      const labels = tf.tensor2d([[1, 0], [0, 1]]);
      const row0 = Math.log(2) + Math.log(1 + Math.E ** 2);
      const row1 = Math.log(1 + Math.E ** -3) + Math.log(1 + Math.E ** -100);
      const loss = head.loss(logits, labels).dataSync()[0];
      assert.ok(Math.abs(loss - (row0 + row1) / 2) < 1e-5, `${loss}`);
      // tf.losses averages over every element: times the tag count, it is our per-row sum averaged over rows.
      const ref = tf.losses.sigmoidCrossEntropy(labels, logits).dataSync()[0] * 2;
      assert.ok(Math.abs(loss - ref) < 1e-5, `tf.losses reference ${ref}`);
      const weighted = head.loss(logits, labels, tf.tensor1d([0, 1])).dataSync()[0];
      assert.ok(Math.abs(weighted - row1) < 1e-5, `weighted ${weighted}`);
      allFinite(head.loss(tf.tensor2d([[-1e4, 1e4]]), tf.tensor2d([[1, 0]])), "extreme logits");
    });
  });

  it("MoeTagHead: probabilities by hand, the 1/numTags prior, finite logits and gradients", async () => {
    await withStore(17, (store) => {
      const k = 3;
      const T = 4;
      const head = new MoeTagHead(store.scope("moe"), 5, { numTags: T, experts: k });
      const x = tf.randomNormal([6, 5], 0, 1, "float32", 3) as tf.Tensor2D;
      // Random non-zero weights so every gate and expert matters.
      head.gate.kernel.assign(tf.randomNormal(head.gate.kernel.shape, 0, 1, "float32", 4));
      head.gate.bias!.assign(tf.randomNormal(head.gate.bias!.shape, 0, 1, "float32", 5));
      head.experts.kernel.assign(tf.randomNormal(head.experts.kernel.shape, 0, 1, "float32", 6));
      head.experts.bias!.assign(tf.randomNormal(head.experts.bias!.shape, 0, 1, "float32", 7));
      const gate = head.gate.apply(x).arraySync() as number[][];
      const experts = head.experts.apply(x).arraySync() as number[][];
      const expected = gate.map((g, b) =>
        Array.from({ length: T }, (_, t) => {
          const logits = g.slice(t * (k + 1), (t + 1) * (k + 1));
          const z = logits.reduce((a, v) => a + Math.exp(v), 0);
          let p = 0;
          for (let j = 0; j < k; j++) p += (Math.exp(logits[j]) / z) / (1 + Math.exp(-experts[b][t * k + j]));
          return p;
        }),
      );
      close(head.probabilities(head.logits(x)).dataSync(), expected.flat(), 1e-5, "mixture probabilities");
      const zeros = tf.zeros([2, 5]) as tf.Tensor2D;
      const fresh = new MoeTagHead(store.scope("fresh"), 5, { numTags: 100, experts: 2 });
      close(fresh.probabilities(fresh.logits(zeros)).dataSync(), new Array(200).fill(0.01), 1e-6, "a fresh head starts at p = 1/numTags");
      // Saturated gates and experts: logits stay finite, the loss and its gradients too.
      head.gate.kernel.assign(tf.mul(head.gate.kernel, 1e3));
      head.experts.kernel.assign(tf.mul(head.experts.kernel, 1e3));
      allFinite(head.logits(x), "saturated logits");
      const labels = tf.tensor2d(Array.from({ length: 6 * T }, (_, i) => i % 3 === 0 ? 1 : 0), [6, T]);
      const { value, grads } = tf.variableGrads(() => head.loss(head.logits(x), labels), [head.gate.kernel, head.experts.kernel, head.gate.bias!, head.experts.bias!]);
      allFinite(value, "saturated loss");
      for (const [name, g] of Object.entries(grads)) allFinite(g, `gradient of ${name}`);
      assert.ok(buildTagHead(store.scope("built_moe"), 5, 4, { type: "moe", experts: 2 }) instanceof MoeTagHead, "moe config builds a MoeTagHead");
      assert.ok(buildTagHead(store.scope("built_lr"), 5, 4, undefined) instanceof TagHead, "no config builds the logistic head");
      assert.deepEqual(MultiTaskLossConfig.parse({ tagHead: { type: "moe" } }).tagHead, { type: "moe", experts: 2 }, "experts default to 2");
      assert.throws(() => MultiTaskLossConfig.parse({ tagHead: { type: "moe", experts: 0 } }), /experts|too small|>=1/i, "0 experts is refused");
    });
  });

  it("heads.dropout drops the heads' input in training only, never the embedding", () => {
    const config = (dropout?: number) =>
      parseModelConfig({
        input: { features: { rgb: { frames: 1, dim: 6 } }, modalities: ["rgb"], useTitle: false },
        encoders: { rgb: { type: "gated_mlp", hidden: 8, dropout: 0 } },
        fusion: { type: "concat_se", embeddingDim: 16, dropout: 0 },
        heads: { mode: "multi", ...(dropout === undefined ? {} : { dropout }) },
      });
    const labels = { categories: ["a", "b"], tags: ["x", "y", "z"] };
    const plain = new VideoModel(config(), labels, 2);
    try {
      const dropped = new VideoModel(config(0.5), labels, 2, plain.params);
      const inputs = { modalities: { rgb: { values: tf.randomNormal([5, 1, 6], 0, 1, "float32", 2) as tf.Tensor3D, mask: tf.ones([5, 1]) as tf.Tensor2D, present: tf.ones([5]) as tf.Tensor1D } } };
      const a = plain.forward(inputs, trainingContext(3, false));
      const b = dropped.forward(inputs, trainingContext(3, false));
      close(b.embedding.dataSync(), a.embedding.dataSync(), 1e-6, "embedding untouched by head dropout");
      assert.ok(b.tagLogits!.dataSync().some((v, i) => Math.abs(v - a.tagLogits!.dataSync()[i]) > 1e-4), "training: the tag logits see a dropped input");
      const c = dropped.forward(inputs, inferenceContext());
      close(c.tagLogits!.dataSync(), plain.forward(inputs, inferenceContext()).tagLogits!.dataSync(), 1e-6, "inference: no dropout");
      assert.throws(() => parseModelConfig({ ...config(), heads: { dropout: 1 } }), /dropout|less than/i, "rate 1 is refused");
    } finally {
      plain.dispose();
    }
  });

  it("MultiTaskLoss: modes, weights and flooding", async () => {
    await withStore(8, (store) => {
      const cat = new CategoryHead(store.scope("cat"), 4, { numClasses: 3 });
      const tags = new TagHead(store.scope("tags"), 4, { numTags: 2 });
      const outputs = { categoryLogits: tf.tensor2d([[1, 2, 0]]), tagLogits: tf.tensor2d([[0, 2]]) };
      const labels = { category: tf.tensor1d([1], "int32"), tags: tf.tensor2d([[1, 0]]) };
      const lc = Math.log(Math.E + Math.E ** 2 + 1) - 2;
      const lt = Math.log(2) + Math.log(1 + Math.E ** 2);
      assert.equal(MultiTaskLossConfig.parse({}).mode, "multi");
      const multi = new MultiTaskLoss({ categoryWeight: 0.5, tagWeight: 2 }, cat, tags).compute(outputs, labels);
      assert.ok(Math.abs(multi.total.dataSync()[0] - (0.5 * lc + 2 * lt)) < 1e-5);
      assert.ok(Math.abs(multi.category!.dataSync()[0] - lc) < 1e-5);
      assert.ok(Math.abs(multi.tags!.dataSync()[0] - lt) < 1e-5);
      const onlyCat = new MultiTaskLoss({ mode: "category" }, cat).compute({ categoryLogits: outputs.categoryLogits }, { category: labels.category });
      assert.ok(Math.abs(onlyCat.total.dataSync()[0] - lc) < 1e-5);
      assert.equal(onlyCat.tags, undefined);
      const onlyTags = new MultiTaskLoss({ mode: "tags", tagWeight: 3 }, undefined, tags).compute(outputs, labels);
      assert.ok(Math.abs(onlyTags.total.dataSync()[0] - 3 * lt) < 1e-5);
      const flooded = new MultiTaskLoss({ flood: 10 }, cat, tags).compute(outputs, labels);
      assert.ok(Math.abs(flooded.total.dataSync()[0] - (20 - (lc + lt))) < 1e-5, "flooding: |L − b| + b below b");
      assert.throws(() => new MultiTaskLoss({ mode: "multi" }, cat), /tag head/);
      assert.throws(() => new MultiTaskLoss({}, cat, tags).compute(outputs, { category: labels.category }), /tag labels/);
    });
  });

  it("growing a head keeps every old logit and initialises the new ones", async () => {
    const x = tf.randomNormal([5, 4], 0, 1, "float32", 50) as tf.Tensor2D;
    // Same parameter names: snapshot, dispose the old store, grow into a new one.
    const { weights, oldCat, oldTag } = await withStore(9, (store) => {
      const cat = new CategoryHead(store.scope("head/category"), 4, { numClasses: 3 });
      const tag = new TagHead(store.scope("head/tags"), 4, { numTags: 5 });
      // Non-zero biases, so a bias that was not copied would show.
      cat.dense.bias!.assign(tf.tensor1d([0.5, -0.2, 0.1]));
      tag.dense.bias!.assign(tf.tensor1d([0.3, 0.1, -0.4, 0.2, 0.9]));
      return {
        weights: { cat: snapshotWeights(cat), tag: snapshotWeights(tag) },
        oldCat: cat.logits(x).arraySync() as number[][],
        oldTag: tag.probabilities(tag.logits(x)).arraySync() as number[][],
      };
    });
    await withStore(10, (store) => {
      const cat = growCategoryHead(weights.cat, store.scope("head/category"), 7);
      const tag = growTagHead(weights.tag, store.scope("head/tags"), 8);
      assert.equal(cat.numClasses, 7);
      assert.equal(tag.numTags, 8);
      assert.equal(store.variable("head/category/dense/kernel").shape[1], 7);
      const newCat = cat.logits(x).arraySync() as number[][];
      const newTag = tag.probabilities(tag.logits(x)).arraySync() as number[][];
      newCat.forEach((row, b) => close(row.slice(0, 3), oldCat[b], 1e-6, `category logits row ${b}`));
      newTag.forEach((row, b) => close(row.slice(0, 5), oldTag[b], 1e-6, `tag probabilities row ${b}`));
      // New columns are initialised (not all zero), new biases zero.
      const k = store.variable("head/category/dense/kernel").arraySync() as number[][];
      assert.ok(k.some((row) => row.slice(3).some((v) => v !== 0)));
      close(store.variable("head/category/dense/bias").dataSync().slice(3), [0, 0, 0, 0], 0, "new biases");
      // Softmax over the old classes, renormalised, is unchanged too.
      const p = cat.probabilities(cat.logits(x)).arraySync() as number[][];
      const oldP = tf.softmax(tf.tensor2d(oldCat)).arraySync() as number[][];
      p.forEach((row, b) => {
        const s = row.slice(0, 3).reduce((a, v) => a + v, 0);
        close(row.slice(0, 3).map((v) => v / s), oldP[b], 1e-5, `renormalised probabilities row ${b}`);
      });
      assert.throws(() => growTagHead(weights.tag, store.scope("other"), 4), /shrink/);
    });
    // Directly from a live head, under another prefix in the same store.
    await withStore(11, (store) => {
      const cat = new CategoryHead(store.scope("a"), 4, { numClasses: 2 });
      const grown = growCategoryHead(cat, store.scope("b"), 3);
      const before = cat.logits(x).arraySync() as number[][];
      (grown.logits(x).arraySync() as number[][]).forEach((row, b) => close(row.slice(0, 2), before[b], 1e-6, `live row ${b}`));
    });
  });
});

describe("wasm backend", () => {
  it("fusion + heads + multi-task loss train a step on wasm", async () => {
    const ok = await tf.setBackend("wasm");
    assert.equal(ok, true, "the wasm backend failed to initialise");
    try {
      for (const cfg of variants) {
        await withStore(12, (store) => {
          const fusion = buildFusion(cfg, store.scope("fusion"), DIMS);
          const cat = new CategoryHead(store.scope("cat"), 8, { numClasses: 3 });
          const tags = new TagHead(store.scope("tags"), 8, { numTags: 4 });
          const loss = new MultiTaskLoss({}, cat, tags);
          const x = inputs(60);
          const labels = { category: tf.tensor1d([0, 1, 2, -1, 1, 0], "int32"), tags: tf.cast(tf.greater(tf.randomUniform([B, 4], 0, 1, "float32", 61), 0.5), "float32") as tf.Tensor2D };
          const vars = store.trainableVariables();
          const opt = tf.train.adam(0.01);
          for (let step = 0; step < 2; step++) {
            const ctx = trainingContext(step);
            const { grads, value } = tf.variableGrads(() => {
              const h = fusion.apply(x, presence(), ctx);
              return loss.compute({ categoryLogits: cat.logits(h), tagLogits: tags.logits(h) }, labels).total;
            }, vars);
            assert.ok(Number.isFinite(value.dataSync()[0]));
            for (const [name, g] of Object.entries(grads)) allFinite(g, name);
            opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
          }
          opt.dispose();
        });
      }
    } finally {
      await tf.setBackend("cpu");
    }
  });
});
