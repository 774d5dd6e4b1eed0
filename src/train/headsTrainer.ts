/**
 * Fine-tuning a model's heads on cached fused features (the `heads` retrain):
 * the backbone is frozen, so each step is a product of the features with the
 * head weights and nothing else.
 *
 * Two phases:
 * 1. new labels: only the rows (kernel columns and biases) of labels the old
 *    model did not know are trained, for `newLabelSteps` steps (as many
 *    epochs as that takes) at `newLabelLearningRate`. Each step costs a few columns, so this is cheap,
 *    and the old rows cannot move.
 * 2. all heads: every head parameter is fine-tuned for `epochs` epochs at
 *    `learningRate` (small: the old rows start trained), with the model's own
 *    multi-task loss.
 */
import * as tf from "@tensorflow/tfjs";
import { TrainingConfig } from "../model/config.js";
import { TagHead } from "../model/heads.js";
import type { VideoModel } from "../model/model.js";
import type { FusedFeatures } from "./fusedFeatures.js";
import { isHeadParam } from "./fusedFeatures.js";
import { AdamOptimizer } from "./optimizer.js";
import { epochOrder } from "./sampling.js";

export interface HeadsTrainingOptions {
  /** Optimisation steps of phase 1 (as many epochs as that takes). */
  newLabelSteps: number;
  newLabelLearningRate: number;
  newLabelBatchSize: number;
  epochs: number;
  learningRate: number;
  batchSize: number;
  seed: number;
}

export const DEFAULT_HEADS_TRAINING: HeadsTrainingOptions = {
  newLabelSteps: 600,
  newLabelLearningRate: 1e-2,
  newLabelBatchSize: 512,
  epochs: 1,
  learningRate: 1e-4,
  batchSize: 256,
  seed: 1,
};

/** Model-index targets of one video. */
export interface HeadTargets {
  category: number;
  tags: readonly number[];
}

export interface HeadsTrainingResult {
  steps: number;
  newLabelSteps: number;
  /** Mean loss of the last epoch of each phase (NaN when the phase did not run). */
  newLabelLoss: number;
  loss: number;
}

export interface HeadsTrainingHooks {
  onProgress?: (done: number, total: number) => void;
}

function featureBatch(features: FusedFeatures, ids: readonly string[]): tf.Tensor2D {
  const D = features.dim;
  const out = new Float32Array(ids.length * D);
  ids.forEach((id, b) => {
    const r = features.row.get(id);
    if (r === undefined) throw new Error(`no fused features for video "${id}"`);
    out.set(features.values.subarray(r * D, (r + 1) * D), b * D);
  });
  return tf.tensor2d(out, [ids.length, D]);
}

function schedule(learningRate: number, steps: number, stepsPerEpoch: number): AdamOptimizer {
  const config = TrainingConfig.parse({ learningRate, warmupSteps: Math.min(20, Math.floor(steps / 10)), decay: "cosine", weightDecay: 0, clipNorm: 5 });
  return new AdamOptimizer(config, steps, stepsPerEpoch);
}

/**
 * Trains `model`'s heads in place. `newTagIndex` / `newCategoryIndex` are the
 * model indices of labels the old model did not know; `targets` gives each
 * training video's labels in model indices.
 */
export async function trainHeads(
  model: VideoModel,
  features: FusedFeatures,
  trainIds: readonly string[],
  targets: ReadonlyMap<string, HeadTargets>,
  newTagIndex: readonly number[],
  newCategoryIndex: readonly number[],
  options: HeadsTrainingOptions,
  hooks: HeadsTrainingHooks = {},
): Promise<HeadsTrainingResult> {
  if (trainIds.length === 0) throw new Error("no training videos for the heads");
  const T = model.labels.tags.length;
  const C = model.labels.categories.length;
  // Phase 1 trains rows of a logistic tag head; other head types only take part in phase 2.
  const tagHead = model.tagHead instanceof TagHead ? model.tagHead : undefined;
  if (model.tagHead && !tagHead && newTagIndex.length > 0) throw new Error("new tags need a logistic tag head (heads.tagHead type \"logistic\"); retrain with --mode scratch");
  const catHead = model.categoryHead;
  const usesTags = model.loss.usesTags && model.tagHead !== undefined;
  const usesCategory = model.loss.usesCategory && catHead !== undefined;
  const newTags = usesTags ? [...newTagIndex] : [];
  const newCats = usesCategory ? [...newCategoryIndex] : [];
  const hw = model.loss.config;

  const phase1Batches = newTags.length + newCats.length > 0 ? Math.ceil(trainIds.length / options.newLabelBatchSize) : 0;
  const phase1Epochs = phase1Batches > 0 ? Math.ceil(options.newLabelSteps / phase1Batches) : 0;
  const phase1Steps = Math.min(phase1Batches * phase1Epochs, options.newLabelSteps);
  const phase2Batches = Math.floor(trainIds.length / options.batchSize) || 1;
  const phase2Steps = phase2Batches * options.epochs;
  const total = phase1Steps + phase2Steps;
  let done = 0;
  const tick = async () => {
    done++;
    hooks.onProgress?.(done, total);
    if (done % 10 === 0) await new Promise((r) => setImmediate(r));
  };

  // ---- phase 1: the new labels' rows only --------------------------------
  let newLabelLoss = NaN;
  if (phase1Steps > 0) {
    const vars = new Map<string, tf.Variable>();
    const oldCats = Array.from({ length: C }, (_, i) => i).filter((i) => !newCats.includes(i));
    const catPos = new Int32Array(C).fill(-1);
    [...oldCats, ...newCats].forEach((c, p) => (catPos[c] = p));
    const tagPos = new Map(newTags.map((t, p) => [t, p]));
    let catOldKernel: tf.Tensor2D | undefined;
    let catOldBias: tf.Tensor1D | undefined;
    tf.tidy(() => {
      if (newTags.length > 0) {
        const idx = tf.tensor1d(newTags, "int32");
        vars.set("tags/kernel", tf.variable(tf.gather(tagHead!.dense.kernel, idx, 1), true));
        vars.set("tags/bias", tf.variable(tf.gather(tagHead!.dense.bias!, idx), true));
      }
      if (newCats.length > 0) {
        const idx = tf.tensor1d(newCats, "int32");
        const old = tf.tensor1d(oldCats, "int32");
        vars.set("category/kernel", tf.variable(tf.gather(catHead!.dense.kernel, idx, 1), true));
        vars.set("category/bias", tf.variable(tf.gather(catHead!.dense.bias!, idx), true));
        catOldKernel = tf.keep(tf.gather(catHead!.dense.kernel, old, 1)) as tf.Tensor2D;
        catOldBias = tf.keep(tf.gather(catHead!.dense.bias!, old)) as tf.Tensor1D;
      }
    });
    const optimizer = schedule(options.newLabelLearningRate, phase1Steps, phase1Batches);
    try {
      let step = 0;
      for (let epoch = 0; epoch < phase1Epochs; epoch++) {
        const order = epochOrder(trainIds, options.seed, epoch);
        let lossSum = 0;
        let batches = 0;
        for (let b = 0; b < phase1Batches && step < phase1Steps; b++, step++) {
          batches++;
          const ids = order.slice(b * options.newLabelBatchSize, (b + 1) * options.newLabelBatchSize);
          const x = featureBatch(features, ids);
          const tagY = new Float32Array(ids.length * newTags.length);
          const catY = new Int32Array(ids.length).fill(-1);
          ids.forEach((id, i) => {
            const t = targets.get(id);
            if (!t) return;
            for (const tag of t.tags) {
              const p = tagPos.get(tag);
              if (p !== undefined) tagY[i * newTags.length + p] = 1;
            }
            if (t.category >= 0 && t.category < C) catY[i] = catPos[t.category];
          });
          const ys = newTags.length > 0 ? tf.tensor2d(tagY, [ids.length, newTags.length]) : undefined;
          const yc = newCats.length > 0 ? tf.tensor1d(catY, "int32") : undefined;
          try {
            const { value, grads } = tf.variableGrads(() => {
              const terms: tf.Scalar[] = [];
              if (ys) terms.push(tf.mul(tagHead!.loss(tf.add(tf.matMul(x, vars.get("tags/kernel")!), vars.get("tags/bias")!) as tf.Tensor2D, ys), hw.tagWeight));
              if (yc) {
                const logits = tf.concat([tf.add(tf.matMul(x, catOldKernel!), catOldBias!), tf.add(tf.matMul(x, vars.get("category/kernel")!), vars.get("category/bias")!)], 1) as tf.Tensor2D;
                terms.push(tf.mul(catHead!.loss(logits, yc), hw.categoryWeight));
              }
              return (terms.length === 1 ? terms[0] : tf.addN(terms)) as tf.Scalar;
            }, [...vars.values()]);
            lossSum += value.dataSync()[0];
            const byName = new Map<string, tf.Tensor>();
            for (const [name, v] of vars) byName.set(name, grads[v.name]);
            optimizer.apply(vars, byName);
            tf.dispose([value, ...Object.values(grads)]);
          } finally {
            tf.dispose([x, ...(ys ? [ys] : []), ...(yc ? [yc] : [])]);
          }
          await tick();
        }
        newLabelLoss = lossSum / Math.max(1, batches);
      }
      // Write the trained rows back into the heads.
      tf.tidy(() => {
        const scatter = (target: tf.Variable, rows: number[], values: tf.Tensor, axis: 0 | 1) => {
          const data = (target.dataSync() as Float32Array).slice();
          const v = values.dataSync() as Float32Array;
          if (axis === 1) {
            const [D, N] = target.shape;
            const k = rows.length;
            for (let d = 0; d < D; d++) rows.forEach((col, j) => (data[d * N + col] = v[d * k + j]));
          } else rows.forEach((col, j) => (data[col] = v[j]));
          target.assign(tf.tensor(data, target.shape));
        };
        if (newTags.length > 0) {
          scatter(tagHead!.dense.kernel, newTags, vars.get("tags/kernel")!, 1);
          scatter(tagHead!.dense.bias!, newTags, vars.get("tags/bias")!, 0);
        }
        if (newCats.length > 0) {
          scatter(catHead!.dense.kernel, newCats, vars.get("category/kernel")!, 1);
          scatter(catHead!.dense.bias!, newCats, vars.get("category/bias")!, 0);
        }
      });
    } finally {
      optimizer.dispose();
      tf.dispose([...vars.values(), ...(catOldKernel ? [catOldKernel] : []), ...(catOldBias ? [catOldBias] : [])]);
    }
  }

  // ---- phase 2: all head parameters ---------------------------------------
  let loss = NaN;
  if (options.epochs > 0) {
    const params = new Map(model.params.entries().filter(([name, p]) => isHeadParam(name) && p.trainable).map(([name, p]) => [name, p.variable]));
    const varToName = new Map([...params].map(([name, v]) => [v.name, name]));
    const optimizer = schedule(options.learningRate, phase2Steps, phase2Batches);
    try {
      for (let epoch = 0; epoch < options.epochs; epoch++) {
        const order = epochOrder(trainIds, options.seed + 1, epoch);
        let lossSum = 0;
        for (let b = 0; b < phase2Batches; b++) {
          const ids = order.slice(b * options.batchSize, (b + 1) * options.batchSize);
          const x = featureBatch(features, ids);
          const tagY = new Float32Array(ids.length * T);
          const catY = new Int32Array(ids.length).fill(-1);
          ids.forEach((id, i) => {
            const t = targets.get(id);
            if (!t) return;
            for (const tag of t.tags) if (tag < T) tagY[i * T + tag] = 1;
            if (t.category >= 0 && t.category < C) catY[i] = t.category;
          });
          const ys = tf.tensor2d(tagY, [ids.length, T]);
          const yc = tf.tensor1d(catY, "int32");
          try {
            const { value, grads } = tf.variableGrads(
              () => model.computeLoss({ fused: x, embedding: x, categoryLogits: catHead?.logits(x), tagLogits: model.tagHead?.logits(x) }, { category: yc, tags: ys }).total,
              [...params.values()],
            );
            lossSum += value.dataSync()[0];
            const byName = new Map<string, tf.Tensor>();
            for (const [vname, g] of Object.entries(grads)) byName.set(varToName.get(vname)!, g);
            optimizer.apply(params, byName);
            tf.dispose([value, ...Object.values(grads)]);
          } finally {
            tf.dispose([x, ys, yc]);
          }
          await tick();
        }
        loss = lossSum / phase2Batches;
      }
    } finally {
      optimizer.dispose();
    }
  }
  return { steps: phase1Steps + phase2Steps, newLabelSteps: phase1Steps, newLabelLoss, loss };
}
