/**
 * A small world for server tests: demo data (few videos, short frames, small
 * dims), and models trained on it for real with a tiny config (seconds on
 * the tfjs cpu backend), exported like `vidrecall export` does.
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { writeDemoData } from "../../src/data/demo.js";
import { VideoStore } from "../../src/data/store.js";
import { runExportCommand } from "../../src/cli/exportCommand.js";
import { readModelMetadata } from "../../src/infer/modelBundle.js";
import { parseModelConfig, type ModelConfigInput } from "../../src/model/config.js";
import { ModelRegistry } from "../../src/registry/modelRegistry.js";
import { train } from "../../src/train/trainer.js";

export const DEMO = { videos: 160, seed: 5, frames: 6, rgbDim: 16, audioDim: 8, categories: 4, tagsPerCategory: 3 };

export const TINY: ModelConfigInput = {
  name: "server-tiny",
  input: { features: { rgb: { frames: 6, dim: 16 }, audio: { frames: 6, dim: 8 } }, modalities: ["rgb", "audio"], useTitle: true, titleMaxTokens: 8 },
  encoders: {
    rgb: { type: "nextvlad", expansion: 2, groups: 2, clusters: 4, hidden: 16 },
    audio: { type: "gated_mlp", hidden: 8, gatingReduction: 2 },
  },
  title: { embeddingDim: 8, encoder: { type: "textcnn", textcnn: { widths: [2], filters: 4 }, hidden: 8 } },
  fusion: { type: "concat_se", embeddingDim: 16 },
  training: { batchSize: 32, epochs: 1, learningRate: 3e-3, warmupSteps: 1, earlyStopPatience: 0, seed: 7 },
};

export function makeDemoStore(db: string, videos = DEMO.videos): void {
  const store = VideoStore.open(db);
  try {
    writeDemoData(store, { ...DEMO, videos });
  } finally {
    store.close();
  }
}

/** Trains TINY (seeded, with any top-level config fields replaced) on the store and exports it; returns the model directory. */
export async function trainTiny(db: string, dir: string, seed: number, overrides: Partial<ModelConfigInput> = {}): Promise<string> {
  await tf.setBackend("cpu");
  await tf.ready();
  const store = VideoStore.open(db);
  try {
    await train(store, parseModelConfig({ ...TINY, training: { ...TINY.training, seed }, ...overrides }), dir);
  } finally {
    store.close();
  }
  await runExportCommand({ model: dir, verify: false });
  return dir;
}

/** Registers an exported model in the database's registry (as `vidrecall` would), optionally making it active. */
export function registerModel(db: string, id: string, dir: string, promote: boolean): string {
  const store = VideoStore.open(db);
  try {
    const registry = new ModelRegistry(store);
    const meta = readModelMetadata(dir);
    registry.register({ id, dir, mode: "scratch", config: meta.config, snapshot: { videos: store.countVideos(), labelSpaces: { category: 0, tags: 0 } }, modelHash: meta.sha256 });
    if (promote) registry.promote(id);
    return meta.sha256;
  } finally {
    store.close();
  }
}

export const modelDirIn = (root: string, name: string) => join(root, name);
