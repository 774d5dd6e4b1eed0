/**
 * `bench train`: training throughput on a fixed frame-level config (batch 32,
 * 32 frames × 1024 rgb + 128 audio, NeXtVLAD λ=2 G=8 K=32 hidden 512, 100
 * tags, Adam), for each tfjs backend available. Inputs are random but fixed,
 * so the number measures the model step, not data loading.
 */
import * as tf from "@tensorflow/tfjs";
import seedrandom from "seedrandom";
import { parseModelConfig, type ModelConfig, type ModelConfigInput } from "../model/config.js";
import { batchToInputs, batchToLabels, disposeInputs, VideoModel } from "../model/model.js";
import { selectBackend, type BackendChoice } from "../train/backend.js";
import type { Batch } from "../train/batches.js";
import { AdamOptimizer } from "../train/optimizer.js";
import { trainStep } from "../train/trainer.js";

export const BENCH_TRAIN_BATCH = 32;
export const BENCH_TRAIN_TAGS = 100;

/** The benchmark model: the same shapes in every backend and in the PyTorch peer (bench/peers). */
export const BENCH_TRAIN_CONFIG: ModelConfigInput = {
  name: "bench-train",
  input: { features: { rgb: { frames: 32, dim: 1024 }, audio: { frames: 32, dim: 128 } }, modalities: ["rgb", "audio"], useTitle: false, sampling: "pad" },
  encoders: {
    rgb: { type: "nextvlad", expansion: 2, groups: 8, clusters: 32, hidden: 512, dropout: 0.5 },
    audio: { type: "nextvlad", expansion: 2, groups: 4, clusters: 16, hidden: 512, dropout: 0.5 },
  },
  fusion: { type: "concat_se", embeddingDim: 512, dropout: 0.2, modalityDropout: 0 },
  heads: { mode: "tags" },
  training: { batchSize: BENCH_TRAIN_BATCH, learningRate: 1e-3, warmupSteps: 0, decay: "none", clipNorm: 0 },
};

export function syntheticBatch(config: ModelConfig, size: number, numTags: number, seed: number): Batch {
  const rng = seedrandom.alea(String(seed));
  const modalities: Batch["modalities"] = {};
  for (const m of config.input.modalities) {
    const { frames, dim } = config.input.features[m];
    const values = new Float32Array(size * frames * dim);
    for (let i = 0; i < values.length; i++) values[i] = rng() * 4 - 2;
    modalities[m] = { steps: frames, dim, values, mask: new Float32Array(size * frames).fill(1), present: new Float32Array(size).fill(1) };
  }
  const tags = new Float32Array(size * numTags);
  for (let i = 0; i < size; i++) for (let k = 0; k < 3; k++) tags[i * numTags + Math.floor(rng() * numTags)] = 1;
  const L = config.input.titleMaxTokens;
  return {
    size,
    ids: Array.from({ length: size }, (_, i) => `synthetic-${i}`),
    modalities,
    titleLength: L,
    titleIds: new Int32Array(size * L),
    titleMask: new Float32Array(size * L),
    titlePresent: new Float32Array(size),
    category: new Int32Array(size).fill(-1),
    categoryUnmapped: new Uint8Array(size),
    numTags,
    tags,
    tagsUnmapped: new Int32Array(size),
  };
}

export interface BackendThroughput {
  description: string;
  videos_per_s: number;
  step_ms: number;
  steps: number;
}

/** Times `steps` training steps (after `warmup` untimed ones) on the current backend. */
export function measureTrainSteps(config: ModelConfig, steps: number, warmup: number): { videosPerSecond: number; stepMs: number } {
  const labels = { categories: ["a", "b"], tags: Array.from({ length: BENCH_TRAIN_TAGS }, (_, i) => `tag${i}`) };
  const model = new VideoModel(config, labels, 2);
  const optimizer = new AdamOptimizer(config.training, steps + warmup, steps + warmup);
  const batch = syntheticBatch(config, config.training.batchSize, BENCH_TRAIN_TAGS, 1);
  try {
    let started = 0;
    for (let i = 0; i < warmup + steps; i++) {
      if (i === warmup) started = performance.now();
      const inputs = batchToInputs(batch, model);
      const l = batchToLabels(batch);
      try {
        trainStep(model, optimizer, inputs, l, i + 1);
      } finally {
        disposeInputs(inputs, l);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return { videosPerSecond: (steps * batch.size) / seconds, stepMs: (seconds * 1000) / steps };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

export async function benchTrain(options: { backends: BackendChoice[]; steps: number; cpuSteps: number }): Promise<{ config: ModelConfigInput; backends: Record<string, BackendThroughput> }> {
  const config = parseModelConfig(BENCH_TRAIN_CONFIG);
  const backends: Record<string, BackendThroughput> = {};
  for (const choice of options.backends) {
    let info;
    try {
      info = await selectBackend(choice);
    } catch (err) {
      process.stderr.write(`bench train: backend ${choice} unavailable: ${(err as Error).message}\n`);
      continue;
    }
    if (backends[info.name]) continue; // "auto" resolved to one already measured
    const steps = info.name === "cpu" ? options.cpuSteps : options.steps;
    process.stderr.write(`bench train: ${info.description}, ${steps} steps…\n`);
    const r = measureTrainSteps(config, steps, 1);
    backends[info.name] = { description: info.description, videos_per_s: r.videosPerSecond, step_ms: r.stepMs, steps };
    tf.disposeVariables();
  }
  return { config: BENCH_TRAIN_CONFIG, backends };
}
