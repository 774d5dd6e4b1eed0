/**
 * Random (untrained) models written as a checkpoint, loaded back and exported
 * with the real exporter, like a trained one: for tests that need a real
 * model.onnx (inference, reindex, server) without the cost of training.
 */
import * as tf from "@tensorflow/tfjs";
import type { TokenVocabulary } from "../../src/data/tokenize.js";
import { prng } from "../../src/export/verify.js";
import { parseModelConfig, type ModelConfigInput } from "../../src/model/config.js";
import { exportUntrainedModel } from "../../src/export/untrainedModel.js";
import { VideoModel } from "../../src/model/model.js";

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
  const parsed = parseModelConfig({ ...config, training: { seed } });
  const tokens = parsed.input.useTitle ? (options.tokens ?? null) : null;
  if (parsed.input.useTitle && !tokens) throw new Error("a config with titles needs tokens");
  const labels = parsed.heads.mode === "tags" ? { categories: [], tags: options.labels.tags } : options.labels;
  const loaded = await exportUntrainedModel(dir, parsed, labels, { vocabulary: tokens, prepare: (model) => perturb(model, seed), verify: options.verify ? {} : undefined });
  return { dir, model: loaded.model, vocabulary: loaded.vocabulary };
}
