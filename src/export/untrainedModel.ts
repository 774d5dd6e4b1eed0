/**
 * A model with its initial (untrained) weights, checkpointed and exported
 * like a trained one: for benchmarks, whose cost does not depend on the
 * weights, and tests that need a real model.onnx without training.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { LabelSpaces, ModelConfig } from "../model/config.js";
import { VideoModel } from "../model/model.js";
import { writeCheckpoint } from "../train/checkpoint.js";
import { loadTrainedModel, type LoadedModel } from "../train/modelFiles.js";
import { exportModel, type ExportOptions } from "./exportModel.js";

export interface UntrainedModelOptions {
  /** Title vocabulary in id order (null without titles). */
  vocabulary: string[] | null;
  /** Changes the weights before they are written (e.g. randomises them for a test). */
  prepare?: (model: VideoModel) => void;
  verify?: ExportOptions["verify"];
}

/**
 * Writes `dir/best.ckpt` for a fresh model of `config` and exports it to
 * `dir` (model.onnx + model.json). Returns the model loaded back from the
 * checkpoint, as serving code would see it; the caller disposes it.
 */
export async function exportUntrainedModel(dir: string, config: ModelConfig, labels: LabelSpaces, options: UntrainedModelOptions): Promise<LoadedModel> {
  mkdirSync(dir, { recursive: true });
  await tf.ready();
  const model = new VideoModel(config, labels, options.vocabulary?.length ?? 2);
  const ckpt = join(dir, "best.ckpt");
  try {
    options.prepare?.(model);
    writeCheckpoint(
      ckpt,
      {
        createdAt: new Date().toISOString(),
        config,
        labels,
        vocabulary: options.vocabulary,
        position: { epoch: 0, batchInEpoch: 0, step: 0, bestGap: 0, bestStep: 0, evalsSinceBest: 0, finished: false },
      },
      model.params.entries().map(([name, { variable }]) => ({ name, kind: "param" as const, shape: variable.shape, values: Float32Array.from(variable.dataSync() as Float32Array) })),
    );
  } finally {
    model.dispose();
  }
  const loaded = loadTrainedModel(ckpt);
  try {
    await exportModel(loaded, dir, options.verify ? { verify: options.verify } : {});
  } catch (err) {
    loaded.model.dispose();
    throw err;
  }
  return loaded;
}
