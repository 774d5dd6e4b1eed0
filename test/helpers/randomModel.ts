/**
 * Random (untrained) models written as a checkpoint, loaded back and exported
 * with the real exporter, like a trained one: for tests that need a real
 * model.onnx (inference, reindex, server) without the cost of training.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { TokenVocabulary } from "../../src/data/tokenize.js";
import { exportModel } from "../../src/export/exportModel.js";
import { prng } from "../../src/export/verify.js";
import { parseModelConfig, type ModelConfigInput } from "../../src/model/config.js";
import { VideoModel } from "../../src/model/model.js";
import { writeCheckpoint } from "../../src/train/checkpoint.js";
import { loadTrainedModel } from "../../src/train/modelFiles.js";

export interface RandomModelLabels {
  categories: string[];
  tags: string[];
}

export interface ExportedRandomModel {
  dir: string;
  model: VideoModel;
  vocabulary?: TokenVocabulary;
}

/** Random weights, non-zero biases, batch norms away from identity. */
export function perturb(model: VideoModel, seed: number): void {
  const rand = prng(seed);
  for (const [name, { variable }] of model.params.entries()) {
    const n = variable.size;
    const draw = (lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
    let values: Float32Array | undefined;
    if (name.endsWith("/moving_mean")) values = draw(-0.5, 0.5);
    else if (name.endsWith("/moving_variance")) values = draw(0.2, 3);
    else if (name.endsWith("/gamma")) values = draw(0.5, 1.5);
    else if (name.endsWith("/beta") || name.endsWith("/bias")) values = draw(-0.5, 0.5);
    else values = draw(-1, 1);
    tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
  }
}

/**
 * A random model of `config` (seeded) exported to `dir` (model.onnx +
 * model.json + best.ckpt). `tokens` is the title vocabulary when the config
 * uses titles; tags-only configs get no categories.
 */
export async function exportRandomModel(
  dir: string,
  config: ModelConfigInput,
  seed: number,
  options: { labels: RandomModelLabels; tokens?: string[]; verify?: boolean },
): Promise<ExportedRandomModel> {
  mkdirSync(dir, { recursive: true });
  const parsed = parseModelConfig({ ...config, training: { seed } });
  const tokens = parsed.input.useTitle ? (options.tokens ?? null) : null;
  if (parsed.input.useTitle && !tokens) throw new Error("a config with titles needs tokens");
  const labels = parsed.heads.mode === "tags" ? { categories: [], tags: options.labels.tags } : options.labels;
  const model = new VideoModel(parsed, labels, tokens?.length ?? 2);
  perturb(model, seed);
  const ckpt = join(dir, "best.ckpt");
  writeCheckpoint(
    ckpt,
    {
      createdAt: "2024-05-01T12:00:00.000Z",
      config: parsed,
      labels,
      vocabulary: tokens,
      position: { epoch: 1, batchInEpoch: 0, step: 7, bestGap: 0.5, bestStep: 7, evalsSinceBest: 0, finished: true },
    },
    model.params.entries().map(([name, { variable }]) => ({ name, kind: "param" as const, shape: variable.shape, values: Float32Array.from(variable.dataSync() as Float32Array) })),
  );
  model.dispose();
  const loaded = loadTrainedModel(ckpt);
  await exportModel(loaded, dir, options.verify ? { verify: {} } : {});
  return { dir, model: loaded.model, vocabulary: loaded.vocabulary };
}
