/**
 * The logistic-regression baseline of `bench quality` on demo data: it
 * learns, stops on the holdout, and a refit trains the chosen epoch count
 * again from scratch on the refit stream.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, test } from "node:test";
import { trainLogisticBaseline } from "../src/bench/logisticBaseline.js";
import { writeDemoData } from "../src/data/demo.js";
import { VideoStore } from "../src/data/store.js";
import { BatchStream, InputConfig } from "../src/train/batches.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("vidrecall-baseline-");
let store: VideoStore;
const input = InputConfig.parse({ features: { rgb: { frames: 6, dim: 16 }, audio: { frames: 6, dim: 8 } }, modalities: ["rgb", "audio"], useTitle: false, sampling: "pad" });

before(async () => {
  await tf.setBackend("cpu");
  store = VideoStore.open(join(dir, "demo.sqlite"));
  writeDemoData(store, { videos: 300, seed: 4, frames: 6, rgbDim: 16, audioDim: 8, categories: 4, tagsPerCategory: 3 });
});

const stream = (target: { split: "train" | "validate" | "test" } | { ids: string[] }, training: boolean) =>
  new BatchStream(store, input, { ...target, batchSize: 32, training, seed: 1, numTags: 12, numCategories: 4 });

test("the baseline learns and reports the holdout's best epoch; a refit retrains that many epochs on its own stream", () => {
  const lines: string[] = [];
  const common = { train: stream({ split: "train" }, true), holdout: stream({ split: "validate" }, false), report: stream({ split: "test" }, false), modalities: input.modalities, numTags: 12, maxEpochs: 6, patience: 2 };
  const plain = trainLogisticBaseline({ ...common, log: (l) => lines.push(l) });
  assert.equal(plain.refit, false);
  assert.ok(plain.bestEpoch >= 1 && plain.bestEpoch <= plain.epochs && plain.epochs <= 6, `epochs ${plain.epochs}, best ${plain.bestEpoch}`);
  assert.ok(plain.gap20 > 0.3, `learns the demo tags: report gap20 ${plain.gap20}`);
  assert.equal(lines.filter((l) => l.startsWith("baseline epoch")).length, plain.epochs, "one holdout line per epoch");

  const all = [...store.videoIds("train"), ...store.videoIds("validate")];
  const refitLines: string[] = [];
  const refit = trainLogisticBaseline({ ...common, refit: stream({ ids: all }, true), log: (l) => refitLines.push(l) });
  assert.equal(refit.refit, true);
  assert.equal(refit.bestEpoch, plain.bestEpoch, "the same holdout choice (the runs are deterministic)");
  assert.equal(refit.holdoutGap20, plain.holdoutGap20);
  assert.equal(refitLines.filter((l) => l.startsWith("baseline refit epoch")).length, plain.bestEpoch, "refit: exactly the best epoch count");
  assert.notEqual(refit.gap20, plain.gap20, "the reported numbers are the refit's, not the holdout-selected weights'");
  assert.ok(refit.gap20 > 0.3, `the refit learns too: ${refit.gap20}`);
});
