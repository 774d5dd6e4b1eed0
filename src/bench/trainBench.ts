/**
 * `bench train`: training throughput on a fixed frame-level config (batch 32,
 * 32 frames × 1024 rgb + 128 audio, NeXtVLAD λ=2 G=8 K=32 hidden 512, 100
 * tags, Adam), for each tfjs backend available. Inputs are random but fixed,
 * so the number measures the model step, not data loading.
 *
 * "Ours" is the backend `--backend auto` would train with (the first of
 * tensorflow, wasm-ort, wasm, cpu that was measured); right after it, the
 * PyTorch peer (bench/peers/train_nextvlad.py: same model, batch, optimizer,
 * step count and thread count) runs once, and the result reports both
 * videos/s and ours ÷ PyTorch.
 */
import * as tf from "@tensorflow/tfjs";
import seedrandom from "seedrandom";
import { parseModelConfig, type ModelConfig, type ModelConfigInput } from "../model/config.js";
import { batchToInputs, batchToLabels, disposeInputs, VideoModel } from "../model/model.js";
import { selectBackend, type BackendChoice } from "../train/backend.js";
import type { Batch } from "../train/batches.js";
import { AdamOptimizer } from "../train/optimizer.js";
import { trainStep } from "../train/trainer.js";
import { isUnavailable, runPythonPeer, type PeerResult } from "./peers.js";

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

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Preference order of `--backend auto`: the first of these measured is "ours". */
const AUTO_ORDER = ["tensorflow", "wasm-ort", "wasm", "cpu"];

/** Threads the PyTorch peer gets: what our matrix products use (onnxruntime's intra-op pool, 2). */
export const BENCH_TRAIN_PEER_THREADS = 2;

export interface TrainBenchResult {
  config: ModelConfigInput;
  backends: Record<string, BackendThroughput>;
  /** The backend `auto` picks among those measured, and its videos/s. */
  ours_backend: string | null;
  ours_videos_per_s: number | null;
  /** The PyTorch peer's videos/s (null when PyTorch is unavailable or the peer was skipped). */
  pytorch_videos_per_s: number | null;
  /** ours ÷ PyTorch. */
  ratio: number | null;
  /**
   * Peak resident set size of this process up to the end of ours' run (it is
   * measured first, so this is its peak; wasm memory never shrinks, so the
   * stock backends measured later would otherwise count).
   */
  peak_rss_mb: number;
  /** Peak resident set size over the whole benchmark, all backends. */
  process_peak_rss_mb: number;
  /** The peer's own JSON line, or why it did not run. */
  pytorch: PeerResult | { skipped: true };
}

export async function benchTrain(options: { backends: BackendChoice[]; steps: number; cpuSteps: number; peer?: boolean }): Promise<TrainBenchResult> {
  const config = parseModelConfig(BENCH_TRAIN_CONFIG);
  const backends: Record<string, BackendThroughput> = {};
  // Measure the auto-preferred backend first so that the peer runs right after it (the load on a shared machine drifts).
  const rank = (b: string) => (AUTO_ORDER.includes(b) ? AUTO_ORDER.indexOf(b) : AUTO_ORDER.length);
  const order = [...options.backends].sort((a, b) => (a === "auto" ? -1 : b === "auto" ? 1 : rank(a) - rank(b)));
  let ours: string | null = null;
  let oursPeakRss = 0;
  let pytorch: PeerResult | { skipped: true } = { skipped: true };
  for (const choice of order) {
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
    if (ours === null) {
      ours = info.name;
      oursPeakRss = peakRssMb();
      if (options.peer !== false) {
        process.stderr.write(`bench train: PyTorch peer (bench/peers/train_nextvlad.py), ${options.steps} steps, ${BENCH_TRAIN_PEER_THREADS} threads…\n`);
        pytorch = await runPythonPeer("train_nextvlad.py", ["--threads", String(BENCH_TRAIN_PEER_THREADS), "--steps", String(options.steps)], 15 * 60_000);
        if (isUnavailable(pytorch)) process.stderr.write(`bench train: PyTorch peer unavailable: ${pytorch.unavailable}\n`);
      }
    }
  }
  const oursVps = ours === null ? null : backends[ours].videos_per_s;
  const peerVps = "videos_per_s" in pytorch && typeof pytorch.videos_per_s === "number" ? pytorch.videos_per_s : null;
  const ratio = oursVps !== null && peerVps !== null && peerVps > 0 ? oursVps / peerVps : null;
  if (ratio !== null) process.stderr.write(`bench train: ours (${ours}) ${oursVps!.toFixed(1)} videos/s, PyTorch ${peerVps!.toFixed(1)}: ratio ${ratio.toFixed(2)}\n`);
  return {
    config: BENCH_TRAIN_CONFIG,
    backends,
    ours_backend: ours,
    ours_videos_per_s: oursVps,
    pytorch_videos_per_s: peerVps,
    ratio,
    peak_rss_mb: ours === null ? peakRssMb() : oursPeakRss,
    process_peak_rss_mb: peakRssMb(),
    pytorch,
  };
}
