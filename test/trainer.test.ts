import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { writeDemoData } from "../src/data/demo.js";
import { VideoStore } from "../src/data/store.js";
import { parseModelConfig, type ModelConfigInput } from "../src/model/config.js";
import { readCheckpoint } from "../src/train/checkpoint.js";
import { loadTrainedModel } from "../src/train/modelFiles.js";
import { BEST_CHECKPOINT, LAST_CHECKPOINT, TRAIN_LOG, train } from "../src/train/trainer.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();
let store: VideoStore;

const tiny: ModelConfigInput = {
  input: { features: { rgb: { frames: 6, dim: 16 }, audio: { frames: 6, dim: 8 } }, modalities: ["rgb", "audio"], useTitle: true, titleMaxTokens: 8 },
  encoders: {
    rgb: { type: "nextvlad", expansion: 2, groups: 2, clusters: 4, hidden: 16, dropout: 0.2 },
    audio: { type: "attention", hidden: 8 },
  },
  title: { embeddingDim: 8, encoder: { type: "textcnn+bilstm", textcnn: { widths: [2], filters: 4 }, bilstm: { hidden: 4, attentionDim: 4 }, hidden: 8 } },
  fusion: { type: "concat_se", embeddingDim: 16, modalityDropout: 0.1 },
  training: { batchSize: 32, epochs: 2, learningRate: 3e-3, warmupSteps: 2, earlyStopPatience: 0, seed: 7 },
};

before(async () => {
  await tf.setBackend("cpu");
  store = VideoStore.open(join(dir, "demo.sqlite"));
  writeDemoData(store, { videos: 240, seed: 3, frames: 6, rgbDim: 16, audioDim: 8, categories: 4, tagsPerCategory: 3 });
});

function params(file: string): Map<string, Float32Array> {
  return new Map(readCheckpoint(file).tensors.filter((t) => t.kind === "param").map((t) => [t.name, t.values]));
}

test("an interrupted run resumed from its checkpoint ends exactly where an uninterrupted run does", async () => {
  const config = parseModelConfig(tiny);
  const whole = join(dir, "whole");
  const r1 = await train(store, config, whole);
  assert.equal(r1.interrupted, false);
  const split = join(dir, "split");
  const first = await train(store, config, split, { stopAfterSteps: 3 });
  assert.equal(first.interrupted, true);
  assert.equal(readCheckpoint(join(split, LAST_CHECKPOINT)).header.position.step, 3);
  const second = await train(store, config, split, { resume: true });
  assert.equal(second.steps, r1.steps);
  const a = params(join(whole, LAST_CHECKPOINT));
  const b = params(join(split, LAST_CHECKPOINT));
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, va] of a) assert.deepEqual(b.get(name), va, `parameter ${name} differs after resume`);
  // Validation ran every epoch and was logged; the best checkpoint is loadable.
  const log = readFileSync(join(whole, TRAIN_LOG), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(log.length, 2);
  assert.ok(log[1].metrics.gap20 > 0 && log[1].metrics.category_accuracy > 0);
  assert.ok(existsSync(join(whole, BEST_CHECKPOINT)));
  const loaded = loadTrainedModel(whole);
  assert.equal(loaded.model.labels.tags.length, 12);
  loaded.model.dispose();
});

test("training learns: validation GAP well above chance, and the loss falls", async () => {
  const big = VideoStore.open(join(dir, "learn.sqlite"));
  writeDemoData(big, { videos: 800, seed: 4, frames: 6, rgbDim: 16, audioDim: 8, categories: 4, tagsPerCategory: 3 });
  const config = parseModelConfig({ ...tiny, training: { ...tiny.training, epochs: 6, learningRate: 1e-2 } });
  const out = join(dir, "learn");
  const r = await train(big, config, out);
  big.close();
  const log = readFileSync(join(out, TRAIN_LOG), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(log[log.length - 1].train_loss < log[0].train_loss, `loss ${log.map((l) => l.train_loss.toFixed(3)).join(" → ")}`);
  assert.ok((r.best.metrics?.gap20 ?? 0) > 0.5, `gap20 ${r.best.metrics?.gap20}`);
  assert.ok((r.best.metrics?.category_accuracy ?? 0) > 0.5, `category accuracy ${r.best.metrics?.category_accuracy}`);
});

test("no tensor leaks across steps, with and without adversarial training", async () => {
  for (const enabled of [false, true]) {
    const config = parseModelConfig({ ...tiny, adversarial: { enabled }, training: { ...tiny.training, epochs: 1 } });
    const counts: number[] = [];
    await train(store, config, join(dir, `leak-${enabled}`), { onProgress: () => counts.push(tf.memory().numTensors) });
    assert.ok(counts.length >= 5);
    // After the first step creates the optimiser's moments, the count stays flat.
    for (let i = 2; i < counts.length; i++) assert.equal(counts[i], counts[1], `adversarial=${enabled}: ${counts.join(",")}`);
  }
});

test("the adversarial pass leaves batch-norm statistics to the clean pass", async () => {
  const stats = async (enabled: boolean) => {
    const config = parseModelConfig({ ...tiny, adversarial: { enabled, defaultEpsilon: 5 }, training: { ...tiny.training, epochs: 1 } });
    const out = join(dir, `bn-${enabled}`);
    await train(store, config, out, { stopAfterSteps: 1 });
    const ckpt = readCheckpoint(join(out, LAST_CHECKPOINT));
    return ckpt.tensors.filter((t) => t.kind === "param");
  };
  const clean = await stats(false);
  const adv = await stats(true);
  let moving = 0;
  let trainedDiffer = false;
  for (let i = 0; i < clean.length; i++) {
    if (/moving_(mean|variance)$/.test(clean[i].name)) {
      moving++;
      assert.deepEqual(adv[i].values, clean[i].values, `${clean[i].name} changed by the adversarial pass`);
    } else if (clean[i].values.some((v, j) => v !== adv[i].values[j])) trainedDiffer = true;
  }
  assert.ok(moving > 4);
  assert.ok(trainedDiffer, "the adversarial loss changed the trained weights");
});

test("weight averaging: checkpoints hold the average and the raw weights, and resume stays exact", async () => {
  const config = parseModelConfig({ ...tiny, training: { ...tiny.training, emaDecay: 0.9 } });
  const whole = join(dir, "ema-whole");
  await train(store, config, whole);
  const split = join(dir, "ema-split");
  await train(store, config, split, { stopAfterSteps: 4 });
  await train(store, config, split, { resume: true });
  const a = readCheckpoint(join(whole, LAST_CHECKPOINT)).tensors;
  const b = readCheckpoint(join(split, LAST_CHECKPOINT)).tensors;
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.deepEqual(b[i].values, a[i].values, `${a[i].kind} ${a[i].name} differs after resume`);
  const kernel = (kind: string) => a.find((t) => t.kind === kind && t.name === "model/head_tags/dense/kernel")!.values;
  assert.notDeepEqual(kernel("param"), kernel("trained"), "the average is not the raw weights");
  const loaded = loadTrainedModel(whole);
  assert.ok(loaded.model.params.variable("model/head_tags/dense/kernel").dataSync().some((v) => Number.isFinite(v)), "best.ckpt loads");
  loaded.model.dispose();
});

test("holdout false: a final fit on the train and validate splits for exactly the configured epochs, the last weights kept", async () => {
  const config = parseModelConfig({ ...tiny, training: { ...tiny.training, holdout: false, epochs: 2, earlyStopPatience: 1 } });
  const out = join(dir, "no-holdout");
  const lines: string[] = [];
  const r = await train(store, config, out, { log: (l) => lines.push(l) });
  const videos = store.videoIds("train").length + store.videoIds("validate").length;
  assert.equal(r.steps, 2 * Math.floor(videos / 32), `every batch of both splits, both epochs (${videos} videos)`);
  assert.equal(r.stoppedEarly, false, "no validation, so no early stop");
  assert.ok(lines.some((l) => l.includes(`${videos} training videos`) && l.includes("no holdout")), `the log says so: ${lines.join(" | ")}`);
  const log = readFileSync(join(out, TRAIN_LOG), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(log.length, 2, "one record per epoch");
  assert.ok(log.every((e) => e.metrics.videos === 0 && e.metrics.gap20 === undefined && e.best === true), "nothing validated; each epoch's weights the best known");
  assert.deepEqual(params(join(out, BEST_CHECKPOINT)), params(join(out, LAST_CHECKPOINT)), "best.ckpt is the last weights");
});
