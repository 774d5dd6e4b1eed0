/**
 * Retraining a model on the store's current labels (`vidrecall retrain`):
 *
 * - `heads` (default): encoders and fusion frozen; the heads are warm-started
 *   from the parent (old label rows kept, new rows added, see warmStart.ts)
 *   and fine-tuned on the parent's fused features, computed once per video
 *   and cached in the parent's directory (fusedFeatures.ts, headsTrainer.ts).
 *   The embedding is the parent's, bit for bit.
 * - `full`: the whole model fine-tuned from the parent's weights (grown heads
 *   as above), with the trainer.
 * - `scratch`: the parent's config trained anew.
 *
 * Either way the candidate is evaluated next to its parent on the fixed
 * holdout (the `validate` split), the promotion gate is applied, and the
 * candidate is registered with its config, parent, data snapshot, holdout
 * metrics and the gate's verdict. Promotion is separate (promotion.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync, mkdirSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { VideoStore } from "../data/store.js";
import type { LabelSpaces, ModelConfig } from "../model/config.js";
import { VideoModel } from "../model/model.js";
import { applyGate, checkGateOptions, DEFAULT_GATE, type GateOptions, type GateResult } from "../registry/gate.js";
import { HoldoutEvaluator, type HoldoutLabels, type HoldoutMetrics } from "../registry/holdout.js";
import { ModelRegistry, type DataSnapshot, type ModelRecord } from "../registry/modelRegistry.js";
import { BatchStream } from "./batches.js";
import { readCheckpoint, writeCheckpoint, type CheckpointTensor } from "./checkpoint.js";
import { predictBatch } from "./evaluate.js";
import { backboneHash, fusedFeatures, type FusedFeatures } from "./fusedFeatures.js";
import { DEFAULT_HEADS_TRAINING, trainHeads, type HeadTargets, type HeadsTrainingOptions } from "./headsTrainer.js";
import { loadTrainedModel, type LoadedModel } from "./modelFiles.js";
import { BEST_CHECKPOINT, storeLabelSpaces, train } from "./trainer.js";
import { isPlaceholderLabel, labelGrowth, warmStart } from "./warmStart.js";

export const RETRAIN_MODES = ["heads", "full", "scratch"] as const;
export type RetrainMode = (typeof RETRAIN_MODES)[number];

export type RetrainStage = "load" | "features" | "train" | "evaluate" | "register";

export interface RetrainProgress {
  stage: RetrainStage;
  done: number;
  total?: number;
}

export interface RetrainOptions {
  /** The parent: a registry id or a model directory (default: the registry's active model). */
  from?: string;
  mode: RetrainMode;
  /** Directory of the new model (default: next to the parent's, named by the id). */
  out?: string;
  /** Registry id of the new model (default: `<mode>-<UTC date>-<time>`). */
  id?: string;
  gate?: Partial<GateOptions>;
  /** `heads` mode schedule. */
  heads?: Partial<HeadsTrainingOptions>;
  /** `full` / `scratch`: override the epochs and learning rate. */
  epochs?: number;
  learningRate?: number;
  backend?: string;
  onProgress?: (p: RetrainProgress) => void;
  log?: (line: string) => void;
}

export interface RetrainResult {
  id: string;
  dir: string;
  mode: RetrainMode;
  parent: string;
  parentDir: string;
  newLabels: { tags: string[]; categories: string[] };
  holdout: HoldoutMetrics;
  parentHoldout: HoldoutMetrics;
  gate: GateResult;
  embeddingHash: string;
  /** False for a heads retrain: the parent's embeddings (and index) stay valid. */
  embeddingChanged: boolean;
  steps: number;
  timings: { total_s: number; features_s: number; train_s: number; evaluate_s: number };
  features?: { cached: number; computed: number };
}

function snapshotOf(store: VideoStore): DataSnapshot {
  const s = store.stats(0);
  return { videos: s.videos, labelSpaces: { category: store.labelSpaceSize("category"), tags: store.labelSpaceSize("tags") }, splits: s.splits };
}

function timestampId(prefix: string, registry: ModelRegistry, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  let id = `${prefix}-${stamp}`;
  for (let n = 2; registry.get(id); n++) id = `${prefix}-${stamp}-${n}`;
  return id;
}

/**
 * The parent's registry record: by id, or by directory. A trained model
 * directory that is not registered yet is registered (mode "import"); when
 * the registry has no active model it becomes the active one, since it is
 * what is being retrained from.
 */
export function resolveParent(store: VideoStore, registry: ModelRegistry, from: string | undefined, log: (s: string) => void = () => {}): ModelRecord {
  if (from === undefined) {
    const active = registry.active();
    if (!active) throw new Error("the registry has no active model: give --from <model dir or id>");
    return active;
  }
  const byId = registry.get(from);
  if (byId) return byId;
  if (!existsSync(join(from, BEST_CHECKPOINT))) throw new Error(`--from ${from}: neither a registered model id (see \`vidrecall models list\`) nor a model directory (no ${join(from, BEST_CHECKPOINT)})`);
  const byDir = registry.findByDir(from);
  if (byDir) return byDir;
  const header = readCheckpoint(join(from, BEST_CHECKPOINT)).header;
  const base = basename(resolve(from)).replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "model";
  let id = base;
  for (let n = 2; registry.get(id); n++) id = `${base}-${n}`;
  const rec = registry.register({
    id,
    dir: from,
    mode: "import",
    config: header.config,
    snapshot: { videos: store.countVideos(), labelSpaces: { category: header.labels.categories.length, tags: header.labels.tags.length } },
    metrics: header.metrics ? { validation: header.metrics } : null,
    embeddingHash: backboneHash(readCheckpoint(join(from, BEST_CHECKPOINT))),
  });
  log(`registered ${from} as model "${id}" (mode import)`);
  if (!registry.active()) {
    log(`no active model: "${id}" is now active`);
    return registry.promote(id);
  }
  return rec;
}

/** Names of real (non-placeholder) labels. */
function realNames(names: readonly string[]): string[] {
  return names.filter((n) => !isPlaceholderLabel(n));
}

function holdoutLabels(store: VideoStore, parent: LabelSpaces, candidate: LabelSpaces): HoldoutLabels {
  const oldTags = realNames(parent.tags);
  const oldCategories = realNames(parent.categories);
  const ot = new Set(oldTags);
  const oc = new Set(oldCategories);
  return {
    oldTags,
    oldCategories,
    newTags: realNames(candidate.tags).filter((n) => !ot.has(n)),
    newCategories: realNames(candidate.categories).filter((n) => !oc.has(n)),
    storeTags: store.labels("tags"),
    storeCategories: store.labels("category"),
  };
}

function targetsOf(store: VideoStore, ids: readonly string[]) {
  const labels = store.labelsByVideo(ids);
  return {
    category: Int32Array.from(ids, (id) => labels.get(id)?.category ?? -1),
    tags: ids.map((id) => labels.get(id)?.tags ?? []),
  };
}

/** Head probabilities of `model` on fused features (no backbone pass). */
function headProbs(model: VideoModel, x: tf.Tensor2D): { tags?: Float32Array; category?: Float32Array } {
  const out: { tags?: Float32Array; category?: Float32Array } = {};
  // Nothing returned from the scope: tf.tidy walks a returned typed array index by index (seconds per batch).
  tf.tidy(() => {
    if (model.tagHead) out.tags = tf.sigmoid(model.tagHead.logits(x)).dataSync() as Float32Array;
    if (model.categoryHead) out.category = tf.softmax(model.categoryHead.logits(x), 1).dataSync() as Float32Array;
  });
  return out;
}

/** Both models on the holdout's cached fused features (heads retrain). */
async function evaluateOnFeatures(store: VideoStore, ids: readonly string[], features: FusedFeatures, parent: VideoModel, candidate: VideoModel, labels: HoldoutLabels, onProgress: (done: number) => void) {
  const pe = new HoldoutEvaluator(labels, parent.labels);
  const ce = new HoldoutEvaluator(labels, candidate.labels);
  const D = features.dim;
  for (let start = 0; start < ids.length; start += 512) {
    const part = ids.slice(start, start + 512);
    const buf = new Float32Array(part.length * D);
    part.forEach((id, b) => {
      const r = features.row.get(id)!;
      buf.set(features.values.subarray(r * D, (r + 1) * D), b * D);
    });
    const x = tf.tensor2d(buf, [part.length, D]);
    try {
      const targets = targetsOf(store, part);
      pe.update(targets, headProbs(parent, x));
      ce.update(targets, headProbs(candidate, x));
    } finally {
      x.dispose();
    }
    onProgress(start + part.length);
    await new Promise((r) => setImmediate(r));
  }
  return { parent: pe.compute(), candidate: ce.compute() };
}

/** Both models on the holdout, full forward passes (full / scratch retrain). */
async function evaluateFull(store: VideoStore, ids: readonly string[], parent: LoadedModel, candidate: LoadedModel, labels: HoldoutLabels, onProgress: (done: number) => void) {
  const result: HoldoutMetrics[] = [];
  let done = 0;
  for (const m of [parent, candidate]) {
    const ev = new HoldoutEvaluator(labels, m.model.labels);
    const stream = new BatchStream(store, m.model.config.input, { ids, batchSize: 256, training: false, vocabulary: m.vocabulary, numTags: 0 });
    for (const batch of stream.epoch(0)) {
      const p = predictBatch(m.model, batch);
      ev.update(targetsOf(store, batch.ids), { tags: p.tagProbs, category: p.categoryProbs });
      done += batch.size;
      onProgress(done);
      await new Promise((r) => setImmediate(r));
    }
    result.push(ev.compute());
  }
  return { parent: result[0], candidate: result[1] };
}

function paramTensors(model: VideoModel): CheckpointTensor[] {
  return model.params.entries().map(([name, info]) => ({ name, kind: "param" as const, shape: info.variable.shape, values: info.variable.dataSync() as Float32Array }));
}

export async function retrain(store: VideoStore, options: RetrainOptions): Promise<RetrainResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const progress = options.onProgress ?? (() => {});
  const gateOptions = checkGateOptions({ ...DEFAULT_GATE, ...options.gate });
  const registry = new ModelRegistry(store);
  progress({ stage: "load", done: 0 });
  const parentRec = resolveParent(store, registry, options.from, log);
  const id = options.id ?? timestampId(options.mode, registry);
  if (registry.get(id)) throw new Error(`model "${id}" is already registered`);
  const out = options.out ?? join(dirname(resolve(parentRec.dir)), id);
  if (existsSync(join(out, BEST_CHECKPOINT))) throw new Error(`${out} already holds a model (${BEST_CHECKPOINT}); choose another --out`);
  mkdirSync(out, { recursive: true });

  const parent = loadTrainedModel(parentRec.dir);
  const labels = storeLabelSpaces(store);
  const growth = labelGrowth(parent.model.labels, labels);
  const hl = holdoutLabels(store, parent.model.labels, labels);
  const trainIds = store.videoIds("train");
  const holdIds = store.videoIds("validate");
  if (holdIds.length === 0) throw new Error("the store's validate split (the holdout) is empty");
  log(`parent "${parentRec.id}" (${parentRec.dir}); ${growth.newTags.length} new tags, ${growth.newCategories.length} new categories; ${trainIds.length} training videos, ${holdIds.length} holdout videos; tfjs backend ${tf.getBackend()}`);
  progress({ stage: "load", done: 1, total: 1 });

  let features_s = 0;
  let train_s = 0;
  let evaluate_s = 0;
  let steps = 0;
  let featureStats: RetrainResult["features"];
  let metrics: { parent: HoldoutMetrics; candidate: HoldoutMetrics };
  const parentConfig = parent.model.config;
  try {
    if (options.mode === "heads") {
      const candidate = new VideoModel(parentConfig, labels, parent.vocabulary?.size ?? 2);
      try {
        warmStart(candidate, parent.checkpoint, parent.file);
        let t = performance.now();
        const features = await fusedFeatures(store, parent.checkpoint, parent.vocabulary, [...trainIds, ...holdIds], parent.file, {
          cacheDir: parentRec.dir,
          onProgress: (done, total) => progress({ stage: "features", done, total }),
        });
        features_s = (performance.now() - t) / 1000;
        featureStats = { cached: features.cached, computed: features.computed };
        log(`fused features: ${features.cached} cached, ${features.computed} computed (${features_s.toFixed(1)} s)`);
        t = performance.now();
        const labelsOf = store.labelsByVideo(trainIds);
        const targets = new Map<string, HeadTargets>();
        for (const [vid, l] of labelsOf) targets.set(vid, { category: l.category ?? -1, tags: l.tags });
        const newTagIndex = growth.newTags.map((n) => labels.tags.indexOf(n));
        const newCategoryIndex = growth.newCategories.map((n) => labels.categories.indexOf(n));
        const schedule = { ...DEFAULT_HEADS_TRAINING, ...options.heads };
        const r = await trainHeads(candidate, features, trainIds, targets, newTagIndex, newCategoryIndex, schedule, {
          onProgress: (done, total) => progress({ stage: "train", done, total }),
        });
        steps = r.steps;
        train_s = (performance.now() - t) / 1000;
        log(`heads trained: ${r.newLabelSteps} new-label steps (loss ${r.newLabelLoss.toFixed(4)}), ${r.steps - r.newLabelSteps} steps on all heads (loss ${r.loss.toFixed(4)}) in ${train_s.toFixed(1)} s`);
        t = performance.now();
        metrics = await evaluateOnFeatures(store, holdIds, features, parent.model, candidate, hl, (done) => progress({ stage: "evaluate", done, total: holdIds.length }));
        evaluate_s = (performance.now() - t) / 1000;
        writeCheckpoint(
          join(out, BEST_CHECKPOINT),
          {
            createdAt: new Date().toISOString(),
            config: parentConfig,
            labels,
            vocabulary: parent.vocabulary ? [...parent.vocabulary.tokens] : null,
            position: { epoch: schedule.epochs, batchInEpoch: 0, step: r.steps, bestGap: metrics.candidate.all_gap20 ?? -1, bestStep: r.steps, evalsSinceBest: 0, finished: true },
            metrics: numericMetrics(metrics.candidate),
            parent: parent.file,
          },
          paramTensors(candidate),
        );
      } finally {
        candidate.dispose();
      }
    } else {
      let config: ModelConfig = parentConfig;
      const tc = parentConfig.training;
      if (options.mode === "full") {
        const storeVocab = store.loadTokenVocabulary();
        if (parentConfig.input.useTitle && (!storeVocab || storeVocab.tokens.join("\n") !== parent.vocabulary?.tokens.join("\n"))) {
          throw new Error(`the store's title vocabulary differs from the one ${parentRec.id} was trained with: a full fine-tune cannot reuse its title embedding; use --mode scratch`);
        }
        config = { ...config, training: { ...tc, epochs: options.epochs ?? Math.max(1, Math.round(tc.epochs / 3)), learningRate: options.learningRate ?? tc.learningRate * 0.3, warmupSteps: Math.min(tc.warmupSteps, 20) } };
      } else if (options.epochs || options.learningRate) {
        config = { ...config, training: { ...tc, epochs: options.epochs ?? tc.epochs, learningRate: options.learningRate ?? tc.learningRate } };
      }
      const t = performance.now();
      const r = await train(store, config, out, {
        labels,
        backend: options.backend,
        log,
        initialize: options.mode === "full" ? (m) => void warmStart(m, parent.checkpoint, parent.file) : undefined,
        onProgress: (p) => progress({ stage: "train", done: p.step, total: p.totalSteps }),
      });
      steps = r.steps;
      train_s = (performance.now() - t) / 1000;
      const e = performance.now();
      const candidate = loadTrainedModel(out);
      try {
        metrics = await evaluateFull(store, holdIds, parent, candidate, hl, (done) => progress({ stage: "evaluate", done, total: 2 * holdIds.length }));
      } finally {
        candidate.model.dispose();
      }
      evaluate_s = (performance.now() - e) / 1000;
    }
  } finally {
    parent.model.dispose();
  }

  progress({ stage: "register", done: 0, total: 1 });
  const embeddingHash = backboneHash(readCheckpoint(join(out, BEST_CHECKPOINT)));
  const parentHash = parentRec.embeddingHash ?? backboneHash(parent.checkpoint);
  if (options.mode === "heads" && embeddingHash !== parentHash) throw new Error(`internal error: a heads retrain changed the backbone (hash ${embeddingHash.slice(0, 12)} vs ${parentHash.slice(0, 12)})`);
  const gate = applyGate(metrics.parent, metrics.candidate, gateOptions);
  const total_s = (performance.now() - started) / 1000;
  registry.register({
    id,
    dir: out,
    parent: parentRec.id,
    mode: options.mode,
    config: parentConfig,
    snapshot: snapshotOf(store),
    metrics: { holdout: metrics.candidate, parent_holdout: metrics.parent, gate, retrain_s: total_s, timings: { features_s, train_s, evaluate_s }, backend: options.backend ?? tf.getBackend() },
    embeddingHash,
    reason: gate.passed ? null : `gate: ${gate.reasons.join("; ")}`,
  });
  if (!parentRec.embeddingHash) registry.update(parentRec.id, { embeddingHash: parentHash });
  progress({ stage: "register", done: 1, total: 1 });
  return {
    id,
    dir: out,
    mode: options.mode,
    parent: parentRec.id,
    parentDir: parentRec.dir,
    newLabels: { tags: growth.newTags, categories: growth.newCategories },
    holdout: metrics.candidate,
    parentHoldout: metrics.parent,
    gate,
    embeddingHash,
    embeddingChanged: embeddingHash !== parentHash,
    steps,
    timings: { total_s, features_s, train_s, evaluate_s },
    features: featureStats,
  };
}

/** The checkpoint header's metrics are numbers only. */
function numericMetrics(m: HoldoutMetrics): Record<string, number> {
  const out: Record<string, number> = { videos: m.videos };
  if (m.old.gap20 !== null) out.old_gap20 = m.old.gap20;
  if (m.all_gap20 !== null) out.gap20 = m.all_gap20;
  if (m.old.category_accuracy !== null) out.old_category_accuracy = m.old.category_accuracy;
  return out;
}
