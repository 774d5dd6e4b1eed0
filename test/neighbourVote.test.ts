/**
 * Neighbour-label voting: the vote and blend arithmetic against hand-computed
 * values, the exact reference search of `eval` (never the video itself), and
 * `evaluateOnStore` with votes on, off and at model weight 1.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, test } from "node:test";
import { writeDemoData } from "../src/data/demo.js";
import { VideoStore } from "../src/data/store.js";
import { parseModelConfig, type ModelConfigInput } from "../src/model/config.js";
import { blendTagProbs, neighbourVotes } from "../src/model/neighbourVote.js";
import { BatchStream } from "../src/train/batches.js";
import { predictBatch } from "../src/train/evaluate.js";
import { evaluateOnStore } from "../src/train/evaluateStore.js";
import { loadTrainedModel } from "../src/train/modelFiles.js";
import { NeighbourReference } from "../src/train/neighbourReference.js";
import { train } from "../src/train/trainer.js";
import { tempDir } from "./helpers/tmp.js";

const close = (a: number, b: number, what: string, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("votes are the softmax(temperature·similarity) weights of the neighbours carrying each tag", () => {
  const votes = neighbourVotes(
    [
      { similarity: 0.9, tags: [0, 2] },
      { similarity: 0.5, tags: [2, 7] }, // 7 is outside the 4 tags: ignored
    ],
    4,
    10,
  );
  const w1 = 1 / (1 + Math.exp(-4));
  close(votes[0], w1, "tag 0 (nearest only)");
  close(votes[1], 0, "tag 1 (nobody)");
  close(votes[2], 1, "tag 2 (both)");
  close(votes[3], 0, "tag 3 (nobody)");
  assert.deepEqual([...neighbourVotes([], 3, 10)], [0, 0, 0], "no neighbours, no votes");
  // Large similarities and temperatures do not overflow.
  const hot = neighbourVotes([{ similarity: 1, tags: [1] }, { similarity: 0.99, tags: [0] }], 2, 5000);
  assert.ok(Number.isFinite(hot[0]) && Number.isFinite(hot[1]) && hot[1] > 0.999, `hot votes ${[...hot]}`);
});

test("the blend is modelWeight·p + (1 − modelWeight)·votes, and no neighbours leave p unchanged", () => {
  const p = Float32Array.from([0.2, 0.6, 0.1]);
  const out = blendTagProbs(p, [{ similarity: 0.3, tags: [2] }], { temperature: 20, modelWeight: 0.7 });
  close(out[0], 0.14, "tag 0");
  close(out[1], 0.42, "tag 1");
  close(out[2], 0.07 + 0.3, "tag 2");
  const alone = blendTagProbs(p, [], { temperature: 20, modelWeight: 0.7 });
  assert.deepEqual([...alone], [...p], "no neighbours: the model's probabilities");
  assert.notEqual(alone, p, "a new array, not the caller's");
});

const dir = tempDir("vidrecall-neighbours-");
let store: VideoStore;
let modelDir: string;
const tiny: ModelConfigInput = {
  input: { features: { rgb: { frames: 6, dim: 16 }, audio: { frames: 6, dim: 8 } }, modalities: ["rgb", "audio"], useTitle: false },
  encoders: { rgb: { type: "gated_mlp", hidden: 16, gatingReduction: 2 }, audio: { type: "gated_mlp", hidden: 8, gatingReduction: 2 } },
  fusion: { type: "concat_se", embeddingDim: 16 },
  neighbours: { enabled: true, k: 5, temperature: 10, modelWeight: 0.5 },
  training: { batchSize: 32, epochs: 2, learningRate: 3e-3, warmupSteps: 2, earlyStopPatience: 0, seed: 7 },
};

before(async () => {
  await tf.setBackend("cpu");
  store = VideoStore.open(join(dir, "demo.sqlite"));
  writeDemoData(store, { videos: 240, seed: 3, frames: 6, rgbDim: 16, audioDim: 8, categories: 4, tagsPerCategory: 3 });
  modelDir = join(dir, "model");
  await train(store, parseModelConfig(tiny), modelDir);
});

test("the reference search is exact, most similar first, and never returns the query itself", () => {
  const { model } = loadTrainedModel(modelDir);
  const reference = NeighbourReference.build(model, store, store.videoIds("train"));
  try {
    const trainIds = store.videoIds("train");
    assert.equal(reference.size, trainIds.length, "every demo training video has tags");
    // Brute force over the same embeddings, in plain JS.
    const stream = new BatchStream(store, model.config.input, { split: "train", batchSize: 64, training: false, numTags: model.labels.tags.length, numCategories: model.labels.categories.length });
    const emb = new Map<string, Float32Array>();
    for (const b of stream.epoch(0)) {
      const p = predictBatch(model, b);
      const d = p.embedding.length / b.size;
      b.ids.forEach((id, i) => emb.set(id, p.embedding.slice(i * d, (i + 1) * d)));
    }
    const queryIds = trainIds.slice(0, 7);
    const flat = new Float32Array(queryIds.length * 16);
    queryIds.forEach((id, i) => flat.set(emb.get(id)!, i * 16));
    const near = reference.nearest(queryIds, flat, 5);
    queryIds.forEach((id, q) => {
      assert.equal(near[q].length, 5, `${id}: k neighbours`);
      const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);
      const expected = [...emb.entries()].filter(([other]) => other !== id).map(([, e]) => dot(emb.get(id)!, e)).sort((a, b) => b - a).slice(0, 5);
      near[q].forEach((n, j) => close(n.similarity, expected[j], `${id} neighbour ${j} similarity`, 1e-4));
      assert.ok(near[q].every((n) => n.tags.length > 0), `${id}: neighbours carry their tags`);
    });
  } finally {
    reference.dispose();
    model.dispose();
  }
});

test("evaluateOnStore blends the training split's votes; weight 1 or --no-neighbours is the model alone", () => {
  const { model } = loadTrainedModel(modelDir);
  try {
    const voted = evaluateOnStore(model, store, { split: "validate" });
    assert.ok(voted.modelOnly && voted.neighbours, "votes on: both results and the settings");
    assert.deepEqual(voted.neighbours, { k: 5, temperature: 10, model_weight: 0.5, reference_splits: ["train"], reference_videos: store.videoIds("train").length });
    assert.notEqual(voted.metrics.gap20, voted.modelOnly.gap20, "the votes change the ranking");
    const alone = evaluateOnStore(model, store, { split: "validate" }, { neighbours: false });
    assert.equal(alone.modelOnly, undefined);
    assert.equal(alone.metrics.gap20, voted.modelOnly.gap20, "--no-neighbours is the model-only number");
    // Category metrics do not depend on the votes.
    assert.equal(voted.metrics.category_accuracy, alone.metrics.category_accuracy);
    (model.config.neighbours as { modelWeight: number }).modelWeight = 1;
    const weightOne = evaluateOnStore(model, store, { split: "validate" });
    assert.equal(weightOne.metrics.gap20, alone.metrics.gap20, "model weight 1: the model alone");
  } finally {
    model.dispose();
  }
});
