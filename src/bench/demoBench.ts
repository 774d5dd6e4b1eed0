/**
 * `bench demo`: the demo-small preset on freshly generated demo data, with all
 * modalities and with each modality alone (the ablation), reporting validation
 * category accuracy and tag GAP@20 and the training time of each run.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { writeDemoData } from "../data/demo.js";
import { VideoStore } from "../data/store.js";
import type { ModelConfig } from "../model/config.js";
import { loadModelConfig } from "../train/modelFiles.js";
import { train } from "../train/trainer.js";

export interface DemoRun {
  inputs: string[];
  category_accuracy: number;
  gap20: number;
  train_s: number;
  steps: number;
}

export interface DemoBenchResult {
  videos: number;
  all: DemoRun;
  ablation: Record<string, DemoRun>;
}

function withInputs(config: ModelConfig, modalities: string[], useTitle: boolean): ModelConfig {
  const encoders = Object.fromEntries(Object.entries(config.encoders).filter(([m]) => modalities.includes(m)));
  return { ...config, input: { ...config.input, modalities, useTitle }, encoders };
}

export async function benchDemo(options: { workDir: string; videos: number; ablation: boolean; backend?: string; log: (s: string) => void }): Promise<DemoBenchResult> {
  rmSync(options.workDir, { recursive: true, force: true });
  const store = VideoStore.open(join(options.workDir, "demo.sqlite"));
  try {
    writeDemoData(store, { videos: options.videos, seed: 1 });
    const base = loadModelConfig("demo-small");
    const run = async (name: string, config: ModelConfig): Promise<DemoRun> => {
      const started = performance.now();
      const r = await train(store, config, join(options.workDir, "models", name), {
        backend: options.backend,
        log: options.log,
        onEval: (e) => options.log(`${name} epoch ${e.epoch}: category_accuracy ${e.metrics.category_accuracy?.toFixed(4)}, gap20 ${e.metrics.gap20?.toFixed(4)}, ${e.videos_per_s.toFixed(0)} videos/s`),
      });
      return {
        inputs: [...config.input.modalities, ...(config.input.useTitle ? ["title"] : [])],
        category_accuracy: r.best.metrics?.category_accuracy ?? NaN,
        gap20: r.best.metrics?.gap20 ?? NaN,
        train_s: (performance.now() - started) / 1000,
        steps: r.steps,
      };
    };
    const all = await run("all", base);
    const ablation: Record<string, DemoRun> = {};
    if (options.ablation) {
      for (const m of base.input.modalities) ablation[m] = await run(m, withInputs(base, [m], false));
      if (base.input.useTitle) ablation.title = await run("title", withInputs(base, [], true));
    }
    return { videos: options.videos, all, ablation };
  } finally {
    store.close();
  }
}
