/**
 * The training loop: batches stream from the store, Adam with warm-up and
 * decay, optional FGM adversarial training, validation with early stopping on
 * GAP@20, atomic checkpoints (`last.ckpt` to resume, `best.ckpt` to use) and a
 * JSONL log of every validation.
 */
import * as tf from "@tensorflow/tfjs";
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { VideoStore } from "../data/store.js";
import { TokenVocabulary } from "../data/tokenize.js";
import { hashString, applyStatUpdates, trainingContext } from "../model/core.js";
import type { LabelSpaces, ModelConfig } from "../model/config.js";
import { planMix, permuteRows } from "../model/mixup.js";
import { batchToInputs, batchToLabels, disposeInputs, TITLE_INPUT, VideoModel, type ModelInputs, type ModelLabels, type ModelOutputs } from "../model/model.js";
import { BatchStream } from "./batches.js";
import { readCheckpoint, writeCheckpoint, type CheckpointTensor, type TrainingPosition } from "./checkpoint.js";
import { evaluateModel, type EvalMetrics } from "./evaluate.js";
import { AdamOptimizer } from "./optimizer.js";

export const LAST_CHECKPOINT = "last.ckpt";
export const BEST_CHECKPOINT = "best.ckpt";
export const TRAIN_LOG = "train_log.jsonl";

export interface TrainProgress {
  epoch: number;
  step: number;
  batchInEpoch: number;
  batchesPerEpoch: number;
  totalSteps: number;
  loss: number;
  videosPerSecond: number;
}

export interface TrainOptions {
  /** Continue from outDir/last.ckpt if it exists. */
  resume?: boolean;
  /** Stop (as if interrupted) after this many steps in this run: for tests of resume. */
  stopAfterSteps?: number;
  /** Restrict training to these ids (e.g. a subset for a quick run). */
  trainIds?: string[];
  onProgress?: (p: TrainProgress) => void;
  onEval?: (record: EvalRecord) => void;
  log?: (line: string) => void;
  /** Label spaces to use instead of the store's (e.g. to keep a model's order when fine-tuning). */
  labels?: LabelSpaces;
  /** The backend in use, recorded in the log. */
  backend?: string;
  /** Called once on the new model before training when not resuming (e.g. a warm start from another model's weights). */
  initialize?: (model: VideoModel) => void;
}

export interface EvalRecord {
  epoch: number;
  step: number;
  train_loss: number;
  learning_rate: number;
  videos_per_s: number;
  elapsed_s: number;
  backend?: string;
  metrics: EvalMetrics;
  best: boolean;
}

export interface TrainResult {
  outDir: string;
  steps: number;
  best: { step: number; gap20: number; metrics?: EvalMetrics };
  stoppedEarly: boolean;
  interrupted: boolean;
}

/** The store's label spaces as dense arrays by index (gaps get placeholder names). */
export function storeLabelSpaces(store: VideoStore): LabelSpaces {
  const dense = (space: "category" | "tags") => {
    const size = store.labelSpaceSize(space);
    const names = Array.from({ length: size }, (_, i) => `<unused:${i}>`);
    for (const l of store.labels(space)) names[l.index] = l.name;
    return names;
  };
  return { categories: dense("category"), tags: dense("tags") };
}

function paramTensors(model: VideoModel, optimizer: AdamOptimizer, average?: WeightAverage): CheckpointTensor[] {
  const out: CheckpointTensor[] = [];
  // With averaging, "param" holds the average (what users load) and "trained" the raw weights (for resuming).
  for (const [name, info] of model.params.entries()) {
    const avg = average?.shadow.get(name);
    out.push({ name, kind: "param", shape: info.variable.shape, values: (avg ?? info.variable).dataSync() as Float32Array });
    if (avg) out.push({ name, kind: "trained", shape: info.variable.shape, values: info.variable.dataSync() as Float32Array });
  }
  for (const [name, s] of optimizer.state().moments) {
    out.push({ name, kind: "adam_m", shape: s.m.shape, values: s.m.dataSync() as Float32Array });
    out.push({ name, kind: "adam_v", shape: s.v.shape, values: s.v.dataSync() as Float32Array });
  }
  return out;
}

/** Loads parameter values into a model built with the same config; names and shapes must match. */
export function loadParams(model: VideoModel, tensors: CheckpointTensor[], source: string, kind: "param" | "trained" = "param"): void {
  const byName = new Map(tensors.filter((t) => t.kind === "param").map((t) => [t.name, t]));
  if (kind === "trained") for (const t of tensors) if (t.kind === "trained") byName.set(t.name, t);
  for (const [name, info] of model.params.entries()) {
    const t = byName.get(name);
    if (!t) throw new Error(`${source}: no values for parameter ${name}`);
    if (t.shape.join("x") !== info.variable.shape.join("x")) throw new Error(`${source}: parameter ${name} has shape ${t.shape.join("x")}, model expects ${info.variable.shape.join("x")}`);
    tf.tidy(() => info.variable.assign(tf.tensor(t.values, t.shape)));
  }
}

/**
 * Moving average of the trainable weights. The decay ramps up as
 * min(d, (1 + step) / (10 + step)) like TensorFlow's ExponentialMovingAverage,
 * so early averages are not dominated by the random initialisation.
 */
class WeightAverage {
  readonly shadow = new Map<string, tf.Variable>();
  constructor(
    readonly model: VideoModel,
    readonly decay: number,
  ) {
    for (const [name, p] of model.params.entries()) if (p.trainable) this.shadow.set(name, tf.tidy(() => tf.variable(p.variable.clone(), false)));
  }

  update(step: number): void {
    const d = Math.min(this.decay, (1 + step) / (10 + step));
    tf.tidy(() => {
      for (const [name, s] of this.shadow) s.assign(tf.add(tf.mul(s, d), tf.mul(this.model.params.variable(name), 1 - d)));
    });
  }

  /** Runs fn with the averaged weights in the model, then puts the trained ones back. */
  withAverage<T>(fn: () => T): T {
    const saved = new Map<string, tf.Tensor>();
    for (const [name, s] of this.shadow) {
      const v = this.model.params.variable(name);
      saved.set(name, tf.clone(v));
      v.assign(s);
    }
    try {
      return fn();
    } finally {
      for (const [name, t] of saved) {
        this.model.params.variable(name).assign(t);
        t.dispose();
      }
    }
  }

  dispose(): void {
    tf.dispose([...this.shadow.values()]);
  }
}

/** Per-sample L2 normalisation of a gradient: ε·g/‖g‖₂ over all but the batch axis. */
function fgmPerturbation(g: tf.Tensor, epsilon: number): tf.Tensor {
  return tf.tidy(() => {
    const axes = g.shape.map((_, i) => i).slice(1);
    const norm = tf.sqrt(tf.maximum(tf.sum(tf.square(g), axes, true), 1e-24));
    return tf.mul(tf.div(g, norm), epsilon);
  });
}

export interface StepResult {
  loss: number;
}

/** One optimisation step (clean loss, plus the FGM adversarial loss when enabled). */
export function trainStep(model: VideoModel, optimizer: AdamOptimizer, inputs: ModelInputs, labels: ModelLabels, stepSeed: number): StepResult {
  const adv = model.config.adversarial;
  const trainable = model.params.entries().filter(([, p]) => p.trainable);
  const varToParam = new Map(trainable.map(([name, p]) => [p.variable.name, name]));
  const vars = trainable.map(([, p]) => p.variable);
  const ctx = trainingContext(stepSeed, true);
  const mixup = model.config.training.mixup;
  const mix = mixup > 0 ? planMix(mixup, labels.category.shape[0], stepSeed) : undefined;
  const lossOf = (out: ModelOutputs): tf.Scalar => {
    if (!mix) return model.computeLoss(out, labels).total;
    // λ·L(y) + (1 − λ)·L(y[π]): the loss of the mixed targets (both terms are linear in the targets).
    const shuffled = { category: permuteRows(labels.category, mix), tags: permuteRows(labels.tags, mix) };
    const a = model.computeLoss(out, labels).total;
    const b = model.computeLoss(out, shuffled).total;
    return tf.add(tf.mul(a, mix.lambda), tf.mul(b, 1 - mix.lambda)) as tf.Scalar;
  };

  // Zero "probes" added to each perturbable input: their gradient is the gradient w.r.t. that input.
  const probes = new Map<string, tf.Variable>();
  if (adv.enabled) {
    for (const name of model.perturbableInputs) {
      const shape =
        name === TITLE_INPUT
          ? [...inputs.title!.ids.shape, model.config.title.embeddingDim]
          : inputs.modalities[name].values.shape;
      probes.set(name, tf.tidy(() => tf.variable(tf.zeros(shape), true)));
    }
  }
  const grads = new Map<string, tf.Tensor>();
  let lossValue = 0;
  try {
    const clean = tf.variableGrads(() => {
      const out = model.forward(inputs, ctx, Object.fromEntries(probes), undefined, mix);
      return lossOf(out);
    }, [...vars, ...probes.values()]);
    lossValue = clean.value.dataSync()[0];
    clean.value.dispose();
    for (const [vname, g] of Object.entries(clean.grads)) {
      const p = varToParam.get(vname);
      if (p) grads.set(p, g);
    }
    if (adv.enabled) {
      // FGM: r = ε·g/‖g‖ per sample, held constant; BN statistics are not updated in this pass.
      const perturb: Record<string, tf.Tensor> = {};
      for (const [name, probe] of probes) {
        const g = clean.grads[probe.name];
        perturb[name] = fgmPerturbation(g, adv.epsilon[name] ?? adv.defaultEpsilon);
        g.dispose();
      }
      const advCtx = trainingContext(stepSeed, false);
      const advResult = tf.variableGrads(() => {
        const out = model.forward(inputs, advCtx, perturb, undefined, mix);
        return tf.mul(lossOf(out), adv.weight) as tf.Scalar;
      }, vars);
      lossValue += advResult.value.dataSync()[0];
      advResult.value.dispose();
      tf.dispose(Object.values(perturb));
      for (const [vname, g] of Object.entries(advResult.grads)) {
        const p = varToParam.get(vname)!;
        const prev = grads.get(p);
        grads.set(p, prev ? tf.tidy(() => tf.add(prev, g)) : g);
        if (prev) {
          prev.dispose();
          g.dispose();
        }
      }
    }
    const params = new Map(trainable.map(([name, p]) => [name, p.variable]));
    optimizer.apply(params, grads);
    applyStatUpdates(ctx);
  } finally {
    tf.dispose([...grads.values()]);
    tf.dispose([...probes.values()]);
    if (ctx.statUpdates) tf.dispose(ctx.statUpdates.map((u) => u.value));
  }
  return { loss: lossValue };
}

export async function train(store: VideoStore, config: ModelConfig, outDir: string, options: TrainOptions = {}): Promise<TrainResult> {
  mkdirSync(outDir, { recursive: true });
  const log = options.log ?? (() => {});
  const lastPath = join(outDir, LAST_CHECKPOINT);
  const bestPath = join(outDir, BEST_CHECKPOINT);

  let labels = options.labels ?? storeLabelSpaces(store);
  let vocabulary: TokenVocabulary | undefined;
  let position: TrainingPosition = { epoch: 0, batchInEpoch: 0, step: 0, bestGap: -1, bestStep: -1, evalsSinceBest: 0, finished: false };
  const resuming = options.resume && existsSync(lastPath);
  const checkpoint = resuming ? readCheckpoint(lastPath) : undefined;
  if (checkpoint) {
    // The checkpoint's config, labels and vocabulary win: the run must continue as it started.
    config = checkpoint.header.config;
    labels = checkpoint.header.labels;
    vocabulary = checkpoint.header.vocabulary ? new TokenVocabulary(checkpoint.header.vocabulary) : undefined;
    position = checkpoint.header.position;
    log(`resuming ${outDir} at epoch ${position.epoch + 1}, batch ${position.batchInEpoch}, step ${position.step}`);
  } else if (config.input.useTitle) {
    vocabulary = store.loadTokenVocabulary() ?? store.buildTokenVocabulary();
  }
  const t = config.training;
  const model = new VideoModel(config, labels, vocabulary?.size ?? 2);
  const streamOptions = { vocabulary, numTags: labels.tags.length, numCategories: labels.categories.length };
  const trainIds = options.trainIds ?? (t.holdout ? undefined : [...store.videoIds("train"), ...store.videoIds("validate")]);
  const trainStream = new BatchStream(store, config.input, {
    ...(trainIds ? { ids: trainIds } : { split: "train" as const }),
    batchSize: t.batchSize,
    training: true,
    seed: t.seed,
    dropLast: true,
    ...streamOptions,
  });
  if (trainStream.batchesPerEpoch === 0) throw new Error(`the training split has ${trainStream.videoCount} videos, fewer than one batch of ${t.batchSize}`);
  // Without a holdout the validate split is training data: nothing is validated.
  const valStream = t.holdout ? new BatchStream(store, config.input, { split: "validate", batchSize: 256, training: false, ...streamOptions }) : undefined;
  const totalSteps = trainStream.batchesPerEpoch * t.epochs;
  const optimizer = new AdamOptimizer(t, totalSteps, trainStream.batchesPerEpoch);

  let average: WeightAverage | undefined;
  try {
    if (checkpoint) {
      loadParams(model, checkpoint.tensors, lastPath, "trained");
      const moments = new Map<string, { m: Float32Array; v: Float32Array; shape: number[] }>();
      for (const ten of checkpoint.tensors) {
        if (ten.kind === "param") continue;
        const e = moments.get(ten.name) ?? { m: new Float32Array(0), v: new Float32Array(0), shape: ten.shape };
        if (ten.kind === "adam_m") e.m = ten.values;
        else e.v = ten.values;
        moments.set(ten.name, e);
      }
      optimizer.restore(position.step, moments);
    } else if (options.initialize) {
      options.initialize(model);
    } else if (config.title.wordVectors && model.embedding && vocabulary) {
      const { loadWordVectors } = await import("../model/encoders/embedding.js");
      const vectors = await loadWordVectors(config.title.wordVectors, [...vocabulary.tokens], config.title.embeddingDim);
      model.embedding.initFromWordVectors(vectors);
      log(`word vectors: ${config.title.wordVectors}`);
    }
    if (t.emaDecay > 0) {
      average = new WeightAverage(model, t.emaDecay);
      // On resume the average is the checkpoint's "param" values.
      if (checkpoint) {
        for (const ten of checkpoint.tensors) {
          const s = ten.kind === "param" ? average.shadow.get(ten.name) : undefined;
          if (s) tf.tidy(() => s.assign(tf.tensor(ten.values, ten.shape)));
        }
      }
    }
    log(
      `model: ${model.params.countTrainable().toLocaleString("en-US")} trainable parameters; ${trainStream.videoCount} training videos, ` +
        (valStream ? `${valStream.videoCount} validation videos` : `no holdout (train + validate splits; the last weights are the model)`),
    );

    const save = (file: string, metrics?: EvalMetrics) =>
      writeCheckpoint(
        file,
        {
          createdAt: new Date().toISOString(),
          config,
          labels,
          vocabulary: vocabulary ? [...vocabulary.tokens] : null,
          position,
          metrics: metrics as Record<string, number> | undefined,
        },
        paramTensors(model, optimizer, average),
      );

    const started = performance.now();
    let videosThisRun = 0;
    let stepsThisRun = 0;
    let lossSum = 0;
    let lossCount = 0;
    let stoppedEarly = false;
    let interrupted = false;
    let bestMetrics: EvalMetrics | undefined;

    const validate = (): boolean => {
      const run = () => (valStream ? evaluateModel(model, valStream.epoch(0), t.maxEvalVideos) : { videos: 0 });
      const metrics = average ? average.withAverage(run) : run();
      const gap = metrics.gap20 ?? metrics.category_accuracy ?? 0;
      // No holdout: the latest weights are the best known.
      const improved = !valStream || gap > position.bestGap;
      if (improved) {
        position.bestGap = gap;
        position.bestStep = position.step;
        position.evalsSinceBest = 0;
        bestMetrics = metrics;
      } else position.evalsSinceBest++;
      const elapsed = (performance.now() - started) / 1000;
      const record: EvalRecord = {
        epoch: position.epoch,
        step: position.step,
        train_loss: lossCount ? lossSum / lossCount : NaN,
        learning_rate: optimizer.learningRate(Math.max(0, position.step - 1)),
        videos_per_s: videosThisRun / Math.max(1e-9, elapsed),
        elapsed_s: elapsed,
        backend: options.backend,
        metrics,
        best: improved,
      };
      appendFileSync(join(outDir, TRAIN_LOG), JSON.stringify(record) + "\n");
      options.onEval?.(record);
      lossSum = 0;
      lossCount = 0;
      if (improved) save(bestPath, metrics);
      return valStream !== undefined && t.earlyStopPatience > 0 && position.evalsSinceBest >= t.earlyStopPatience;
    };

    outer: while (position.epoch < t.epochs && !position.finished) {
      for (const batch of trainStream.epoch(position.epoch, { skipBatches: position.batchInEpoch })) {
        const inputs = batchToInputs(batch, model);
        const batchLabels = batchToLabels(batch);
        let result: StepResult;
        try {
          result = trainStep(model, optimizer, inputs, batchLabels, (hashString(`step:${position.step}`) ^ t.seed) >>> 0);
        } finally {
          disposeInputs(inputs, batchLabels);
        }
        average?.update(position.step);
        position.step++;
        position.batchInEpoch++;
        stepsThisRun++;
        videosThisRun += batch.size;
        lossSum += result.loss;
        lossCount++;
        options.onProgress?.({
          epoch: position.epoch,
          step: position.step,
          batchInEpoch: position.batchInEpoch,
          batchesPerEpoch: trainStream.batchesPerEpoch,
          totalSteps,
          loss: result.loss,
          videosPerSecond: videosThisRun / Math.max(1e-9, (performance.now() - started) / 1000),
        });
        const endOfEpoch = position.batchInEpoch >= trainStream.batchesPerEpoch;
        if (endOfEpoch) {
          position.epoch++;
          position.batchInEpoch = 0;
        }
        const evalNow = t.evalEverySteps > 0 ? position.step % t.evalEverySteps === 0 : endOfEpoch;
        if (evalNow && validate()) {
          stoppedEarly = true;
          position.finished = true;
        }
        if (evalNow || (t.checkpointEverySteps > 0 && position.step % t.checkpointEverySteps === 0) || position.finished) save(lastPath);
        if (position.finished) break outer;
        if (options.stopAfterSteps !== undefined && stepsThisRun >= options.stopAfterSteps) {
          save(lastPath);
          interrupted = true;
          break outer;
        }
        // Let the event loop breathe (signals, progress output).
        if (stepsThisRun % 10 === 0) await new Promise((r) => setImmediate(r));
      }
    }
    if (!interrupted && !position.finished) {
      position.finished = true;
      save(lastPath);
    }
    if (!existsSync(bestPath)) save(bestPath);
    return {
      outDir,
      steps: position.step,
      best: { step: position.bestStep, gap20: position.bestGap, metrics: bestMetrics },
      stoppedEarly,
      interrupted,
    };
  } finally {
    average?.dispose();
    optimizer.dispose();
    model.dispose();
  }
}
