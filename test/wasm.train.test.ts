import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { parseModelConfig } from "../src/model/config.js";
import { batchToInputs, batchToLabels, disposeInputs, VideoModel } from "../src/model/model.js";
import { syntheticBatch } from "../src/bench/trainBench.js";
import { selectBackend } from "../src/train/backend.js";
import { AdamOptimizer } from "../src/train/optimizer.js";
import { trainStep } from "../src/train/trainer.js";

// Every block must train on the wasm backend, which lacks some gradient
// kernels (Conv2DBackpropFilter, UnsortedSegmentSum): one step per block.
before(async () => {
  await selectBackend("wasm");
});

const videoEncoders = [
  { type: "nextvlad", expansion: 2, groups: 2, clusters: 4, hidden: 8 },
  { type: "trn", bottleneck: 8, maxScale: 3, tuplesPerScale: 2, relationDim: 8, hidden: 8 },
  { type: "attention", attentionDim: 4, hidden: 8 },
  { type: "gated_mlp", hidden: 8 },
] as const;
const titleEncoders = [
  { type: "textcnn", textcnn: { widths: [2, 3], filters: 4 }, hidden: 8 },
  { type: "bilstm", bilstm: { hidden: 4, attentionDim: 4 }, hidden: 8 },
] as const;

/**
 * A model and optimizer for `config`, trained two steps on a 4-video batch
 * with titles of different lengths (one missing) and one unlabelled category;
 * `watched` variables are read before the steps and returned with them.
 */
function trainTwoSteps(config: ReturnType<typeof parseModelConfig>, watched: string[]) {
  const model = new VideoModel(config, { categories: ["a", "b"], tags: ["x", "y", "z"] }, 10);
  const optimizer = new AdamOptimizer(config.training, 10, 10);
  const batch = syntheticBatch(config, 4, 3, 1);
  batch.titleIds.set([2, 3, 1, 0, 5, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0]);
  batch.titleMask.set([1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]);
  batch.titlePresent.set([1, 1, 1, 0]);
  batch.category.set([0, 1, 1, -1]);
  const before = watched.map((n) => model.params.variable(n).dataSync().slice());
  for (let step = 0; step < 2; step++) {
    const inputs = batchToInputs(batch, model);
    const labels = batchToLabels(batch);
    try {
      const r = trainStep(model, optimizer, inputs, labels, step + 1);
      assert.ok(Number.isFinite(r.loss), `loss ${r.loss}`);
    } finally {
      disposeInputs(inputs, labels);
    }
  }
  return { model, optimizer, before };
}

for (const rgb of videoEncoders) {
  for (const title of titleEncoders) {
    for (const fusion of ["concat_se", "gate"] as const) {
      test(`wasm trains ${rgb.type} + ${title.type} + ${fusion}`, () => {
        const config = parseModelConfig({
          input: { features: { rgb: { frames: 5, dim: 6 } }, modalities: ["rgb"], useTitle: true, titleMaxTokens: 4 },
          encoders: { rgb },
          title: { embeddingDim: 4, encoder: title },
          fusion: { type: fusion, embeddingDim: 8 },
          adversarial: { enabled: true },
          training: { batchSize: 4, warmupSteps: 0 },
        });
        const { model, optimizer, before: [before] } = trainTwoSteps(config, ["model/head_tags/dense/kernel"]);
        const after = model.params.variable("model/head_tags/dense/kernel").dataSync();
        assert.ok(after.some((v, i) => v !== before[i]), "weights moved");
        optimizer.dispose();
        model.dispose();
        assert.equal(tf.getBackend(), "wasm");
      });
    }
  }
}

test("wasm trains the mixture-of-experts tag head with mixup and FGM (titles mixed too)", () => {
  const config = parseModelConfig({
    input: { features: { rgb: { frames: 5, dim: 6 } }, modalities: ["rgb"], useTitle: true, titleMaxTokens: 4 },
    encoders: { rgb: { type: "gated_mlp", hidden: 8 } },
    title: { embeddingDim: 4, encoder: { type: "textcnn", textcnn: { widths: [2], filters: 4 }, hidden: 8 } },
    fusion: { type: "concat_se", embeddingDim: 8 },
    heads: { tagHead: { type: "moe", experts: 2 }, dropout: 0.2 },
    adversarial: { enabled: true, defaultEpsilon: 0.1 },
    training: { batchSize: 4, warmupSteps: 0, mixup: 0.3 },
  });
  const names = ["model/head_tags/gate/kernel", "model/head_tags/experts/kernel", "model/title_embedding/table"];
  const { model, optimizer, before } = trainTwoSteps(config, names);
  names.forEach((n, k) => assert.ok(model.params.variable(n).dataSync().some((v, i) => v !== before[k][i]), `${n} moved`));
  optimizer.dispose();
  model.dispose();
  assert.equal(tf.getBackend(), "wasm", "still on wasm");
});
