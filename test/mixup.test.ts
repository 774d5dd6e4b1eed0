import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { writeDemoData } from "../src/data/demo.js";
import { VideoStore } from "../src/data/store.js";
import { parseModelConfig, type ModelConfigInput } from "../src/model/config.js";
import { inferenceContext } from "../src/model/core.js";
import { mixRows, permuteRows, planMix, sampleBeta, unionRows } from "../src/model/mixup.js";
import { VideoModel } from "../src/model/model.js";
import { readCheckpoint, type CheckpointTensor } from "../src/train/checkpoint.js";
import { LAST_CHECKPOINT, train } from "../src/train/trainer.js";
import { seededRandom } from "../src/util/random.js";
import { allFinite, close } from "./helpers/tensors.js";
import { tempDir } from "./helpers/tmp.js";

before(async () => {
  await tf.setBackend("cpu");
});

describe("mixup", () => {
  it("plans are deterministic per seed: λ ≥ ½ and a permutation", () => {
    const a = planMix(0.2, 9, 42);
    const b = planMix(0.2, 9, 42);
    assert.deepEqual(a, b, "same seed, same plan");
    assert.ok(a.lambda >= 0.5 && a.lambda <= 1, `λ ${a.lambda} outside [½, 1]`);
    assert.deepEqual([...a.permutation].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8], "π is a permutation");
    const others = Array.from({ length: 20 }, (_, s) => planMix(0.2, 9, s).lambda);
    assert.ok(new Set(others).size > 15, "different seeds, different λ");
  });

  it("Beta(α, α) draws: mean ½, and small α piles up at the ends", () => {
    const rng = seededRandom("beta-test");
    const draws = (alpha: number) => Array.from({ length: 4000 }, () => sampleBeta(alpha, rng));
    for (const alpha of [0.2, 1, 4]) {
      const d = draws(alpha);
      const mean = d.reduce((s, v) => s + v, 0) / d.length;
      assert.ok(Math.abs(mean - 0.5) < 0.03, `α ${alpha}: mean ${mean}`);
      assert.ok(d.every((v) => v >= 0 && v <= 1), `α ${alpha}: a draw outside [0, 1]`);
      // Var Beta(α, α) = 1 / (4(2α + 1)).
      const variance = d.reduce((s, v) => s + (v - mean) ** 2, 0) / d.length;
      const expected = 1 / (4 * (2 * alpha + 1));
      assert.ok(Math.abs(variance - expected) < 0.15 * expected, `α ${alpha}: variance ${variance}, expected ${expected}`);
    }
  });

  it("mixes rows, unions masks and permutes labels by hand", () => {
    const plan = { lambda: 0.75, permutation: Int32Array.from([1, 2, 0]) };
    const x = tf.tensor2d([[1, 0], [0, 1], [2, 2]]);
    close(mixRows(x, plan).dataSync(), [0.75, 0.25, 0.5, 1.25, 1.75, 1.5], 1e-6, "λ·x + (1 − λ)·x[π]");
    close(unionRows(tf.tensor1d([1, 0, 0]), plan).dataSync(), [1, 0, 1], 0, "union of presence flags");
    close(permuteRows(tf.tensor1d([5, 6, 7], "int32"), plan).dataSync(), [6, 7, 5], 0, "labels[π]");
  });

  it("the model mixes each input after normalisation; λ = 1 is the unmixed forward", () => {
    const config = parseModelConfig({
      input: { features: { rgb: { frames: 3, dim: 5 } }, modalities: ["rgb"], useTitle: false, normalize: "l2" },
      encoders: { rgb: { type: "attention", hidden: 4 } },
      fusion: { type: "concat_se", embeddingDim: 4, seReduction: 2 },
      heads: { mode: "tags" },
    });
    const model = new VideoModel(config, { categories: [], tags: ["a", "b"] }, 2);
    try {
      const values = tf.randomNormal([4, 3, 5], 0, 3, "float32", 1) as tf.Tensor3D;
      // Row 1 has one real frame (its padding holds NaN), row 3 is missing.
      const mask = tf.tensor2d([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]]);
      const poisoned = tf.where(tf.greater(tf.expandDims(mask, 2), 0), values, NaN) as tf.Tensor3D;
      const inputs = { modalities: { rgb: { values: poisoned, mask, present: tf.tensor1d([1, 1, 1, 0]) } } };
      const ctx = inferenceContext();
      const plain = model.forward(inputs, ctx).tagLogits!;
      const identity = model.forward(inputs, ctx, {}, undefined, { lambda: 1, permutation: Int32Array.from([0, 1, 2, 3]) }).tagLogits!;
      close(identity.dataSync(), plain.dataSync(), 1e-6, "λ = 1 with the identity permutation");
      const plan = { lambda: 0.6, permutation: Int32Array.from([3, 2, 1, 0]) };
      const mixed = model.forward(inputs, ctx, {}, undefined, plan);
      allFinite(mixed.tagLogits!, "mixed logits (NaN in padding)");
      // By hand: normalise real frames, zero padding, mix, union masks; then an unmixed forward without normalisation.
      const norm = tf.where(tf.greater(tf.expandDims(mask, 2), 0), tf.div(values, tf.norm(values, 2, 2, true)), 0) as tf.Tensor3D;
      const byHand = {
        modalities: { rgb: { values: mixRows(norm, plan), mask: unionRows(mask, plan), present: unionRows(tf.tensor1d([1, 1, 1, 0]), plan) } },
      };
      const raw = new VideoModel({ ...config, input: { ...config.input, normalize: "none" } }, model.labels, 2, model.params);
      close(mixed.tagLogits!.dataSync(), raw.forward(byHand, ctx).tagLogits!.dataSync(), 1e-5, "mixed forward = forward of the mixed inputs");
    } finally {
      model.dispose();
    }
  });

  it("training with mixup learns, leaks no tensors and resumes exactly", async () => {
    const dir = tempDir();
    const store = VideoStore.open(join(dir, "demo.sqlite"));
    writeDemoData(store, { videos: 240, seed: 3, frames: 6, rgbDim: 16, audioDim: 8, categories: 4, tagsPerCategory: 3 });
    const tiny: ModelConfigInput = {
      input: { features: { rgb: { frames: 6, dim: 16 }, audio: { frames: 6, dim: 8 } }, modalities: ["rgb", "audio"], useTitle: true, titleMaxTokens: 8 },
      encoders: { rgb: { type: "gated_mlp", hidden: 16 }, audio: { type: "attention", hidden: 8 } },
      title: { embeddingDim: 8, encoder: { type: "textcnn", textcnn: { widths: [2], filters: 4 }, hidden: 8 } },
      fusion: { type: "concat_se", embeddingDim: 16 },
      adversarial: { enabled: true, defaultEpsilon: 0.1 },
      training: { batchSize: 32, epochs: 2, learningRate: 3e-3, warmupSteps: 2, earlyStopPatience: 0, seed: 7, mixup: 0.3 },
    };
    try {
      const config = parseModelConfig(tiny);
      const counts: number[] = [];
      const whole = await train(store, config, join(dir, "whole"), { onProgress: () => counts.push(tf.memory().numTensors) });
      for (let i = 2; i < counts.length; i++) assert.equal(counts[i], counts[1], `tensor count per step: ${counts.join(",")}`);
      assert.ok((whole.best.metrics?.gap20 ?? 0) > 0, "validation ran");
      await train(store, config, join(dir, "split"), { stopAfterSteps: 3 });
      await train(store, config, join(dir, "split"), { resume: true });
      const params = (d: string) => new Map(readCheckpoint(join(dir, d, LAST_CHECKPOINT)).tensors.filter((t: CheckpointTensor) => t.kind === "param").map((t) => [t.name, t.values]));
      const a = params("whole");
      const b = params("split");
      for (const [name, v] of a) assert.deepEqual(b.get(name), v, `parameter ${name} differs after resume`);
      // Mixup changes training: the same config without it ends elsewhere.
      await train(store, parseModelConfig({ ...tiny, training: { ...tiny.training, mixup: 0 } }), join(dir, "plain"));
      const c = params("plain");
      assert.ok([...a].some(([name, v]) => v.some((x, i) => x !== c.get(name)![i])), "mixup made no difference to the weights");
    } finally {
      store.close();
    }
  });
});
