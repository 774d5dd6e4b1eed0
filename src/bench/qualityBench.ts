/**
 * `bench quality`: the video-level preset on the shared YouTube-8M shards,
 * next to the starter code's logistic-regression baseline, and with FGM
 * adversarial training on.
 *
 * Shards 0000–0059 are the training data; 10% of them (by id hash) are held
 * out for early stopping (the store's `validate` split). Shards 0060–0079 —
 * the "validate" shards — are stored as the `test` split and only
 * used for the reported numbers, so no choice is made on them.
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { importYt8m } from "../data/importer.js";
import { VideoStore } from "../data/store.js";
import { readYt8mVocabulary } from "../data/yt8mVocabulary.js";
import { loadModelConfig, loadTrainedModel } from "../train/modelFiles.js";
import { BatchStream } from "../train/batches.js";
import { evaluateModel, type EvalMetrics } from "../train/evaluate.js";
import { storeLabelSpaces, train } from "../train/trainer.js";
import { trainLogisticBaseline, type BaselineResult } from "./logisticBaseline.js";
import { listShards } from "./importBench.js";

export interface QualityResult {
  model: { gap20: number; map: number; hit1: number; category_accuracy?: number; train_s: number; steps: number };
  baseline: BaselineResult & { train_s: number };
  adversarial?: { gap20: number; map: number; hit1: number; train_s: number };
  model_dir: string;
  videos: { train: number; holdout: number; report: number };
}

export async function ensureStore(dataDir: string, db: string, log: (s: string) => void): Promise<VideoStore> {
  const shards = listShards(dataDir);
  if (shards.length < 80) throw new Error(`${dataDir}: expected 80 shards (0000–0079), found ${shards.length}`);
  if (existsSync(db)) {
    const store = VideoStore.open(db);
    if (store.countVideos() > 0) return store;
    store.close();
  }
  rmSync(db, { force: true });
  const store = VideoStore.open(db);
  const vocabulary = await readYt8mVocabulary(join(dataDir, "vocabulary.csv"));
  log("importing shards 0000–0059 (train, 10% held out) and 0060–0079 (report)…");
  await importYt8m(store, shards.slice(0, 60), { vocabulary, splitFractions: { train: 0.9, validate: 0.1, test: 0 } });
  await importYt8m(store, shards.slice(60, 80), { vocabulary, split: "test" });
  return store;
}

function evaluateOnReport(modelDir: string, store: VideoStore): EvalMetrics {
  const { model, vocabulary } = loadTrainedModel(modelDir);
  try {
    const stream = new BatchStream(store, model.config.input, { split: "test", batchSize: 512, training: false, vocabulary, numTags: model.labels.tags.length, numCategories: model.labels.categories.length });
    return evaluateModel(model, stream.epoch(0));
  } finally {
    model.dispose();
  }
}

export async function benchQuality(options: { dataDir: string; workDir: string; adversarial: boolean; epochs?: number; backend?: string; log: (s: string) => void }): Promise<QualityResult> {
  const { log } = options;
  const store = await ensureStore(options.dataDir, join(options.workDir, "yt8m.sqlite"), log);
  try {
    let config = loadModelConfig("video-level");
    if (options.epochs) config = { ...config, training: { ...config.training, epochs: options.epochs } };
    const labels = storeLabelSpaces(store);
    const runModel = async (name: string, adversarial: boolean) => {
      const dir = join(options.workDir, "models", name);
      rmSync(dir, { recursive: true, force: true });
      const started = performance.now();
      const c = { ...config, adversarial: { ...config.adversarial, enabled: adversarial } };
      const r = await train(store, c, dir, {
        labels,
        backend: options.backend,
        log,
        onEval: (e) => log(`${name} epoch ${e.epoch} step ${e.step}: loss ${e.train_loss.toFixed(3)}, holdout gap20 ${e.metrics.gap20?.toFixed(4)}, ${e.videos_per_s.toFixed(0)} videos/s`),
      });
      const seconds = (performance.now() - started) / 1000;
      return { dir, seconds, steps: r.steps, metrics: evaluateOnReport(dir, store) };
    };

    log("training the video-level preset…");
    const model = await runModel("video-level", false);
    log(`model on shards 0060–0079: gap20 ${model.metrics.gap20?.toFixed(4)}`);

    log("training the logistic-regression baseline…");
    const input = config.input;
    const numTags = labels.tags.length;
    const stream = (split: "train" | "validate" | "test", training: boolean) =>
      new BatchStream(store, input, { split, batchSize: training ? 256 : 1024, training, seed: 1, numTags, numCategories: labels.categories.length });
    const started = performance.now();
    const baseline = trainLogisticBaseline({ train: stream("train", true), holdout: stream("validate", false), report: stream("test", false), modalities: input.modalities, numTags, log });
    const baselineSeconds = (performance.now() - started) / 1000;
    log(`baseline on shards 0060–0079: gap20 ${baseline.gap20.toFixed(4)}`);

    let adversarial: QualityResult["adversarial"];
    if (options.adversarial) {
      log("training the video-level preset with adversarial perturbation…");
      const adv = await runModel("video-level-adversarial", true);
      adversarial = { gap20: adv.metrics.gap20 ?? NaN, map: adv.metrics.map ?? NaN, hit1: adv.metrics.hit1 ?? NaN, train_s: adv.seconds };
    }
    return {
      model: {
        gap20: model.metrics.gap20 ?? NaN,
        map: model.metrics.map ?? NaN,
        hit1: model.metrics.hit1 ?? NaN,
        category_accuracy: model.metrics.category_accuracy,
        train_s: model.seconds,
        steps: model.steps,
      },
      baseline: { ...baseline, train_s: baselineSeconds },
      adversarial,
      model_dir: model.dir,
      videos: { train: store.videoIds("train").length, holdout: store.videoIds("validate").length, report: store.videoIds("test").length },
    };
  } finally {
    store.close();
  }
}
