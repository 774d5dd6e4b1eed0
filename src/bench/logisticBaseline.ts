/**
 * The YouTube-8M starter code's LogisticModel as a baseline: one linear layer
 * with sigmoid outputs on the concatenated video-level features, trained with
 * summed binary cross-entropy (its CrossEntropyLoss) by Adam until the
 * held-out GAP@20 stops improving ("to convergence"). With `refit`, that
 * epoch count is then trained again from scratch on the refit stream (the
 * training and holdout videos together), as the model's final fit is.
 */
import * as tf from "@tensorflow/tfjs";
import { createTagMetrics } from "../metrics/index.js";
import { TrainingConfig } from "../model/config.js";
import type { Batch, BatchStream } from "../train/batches.js";
import { AdamOptimizer } from "../train/optimizer.js";

export interface BaselineResult {
  gap20: number;
  map: number;
  hit1: number;
  epochs: number;
  bestEpoch: number;
  /** Holdout GAP@20 at the best epoch. */
  holdoutGap20: number;
  /** Whether the reported numbers come from the refit on training + holdout videos. */
  refit: boolean;
}

function features(batch: Batch, modalities: string[]): tf.Tensor2D {
  return tf.tidy(() => tf.concat(modalities.map((m) => tf.tensor2d(batch.modalities[m].values, [batch.size, batch.modalities[m].steps * batch.modalities[m].dim])), 1) as tf.Tensor2D);
}

class LogisticModel {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  private readonly optimizer: AdamOptimizer;

  constructor(
    readonly inputDim: number,
    readonly numTags: number,
    maxEpochs: number,
    batchesPerEpoch: number,
  ) {
    this.w = tf.variable(tf.zeros([inputDim, numTags]), true, "baseline/kernel");
    this.b = tf.variable(tf.zeros([numTags]), true, "baseline/bias");
    // The starter code's defaults: Adam at 0.01, L2 penalty 1e-8.
    const config = TrainingConfig.parse({ learningRate: 1e-2, warmupSteps: 0, decay: "none", clipNorm: 0, weightDecay: 1e-8 });
    this.optimizer = new AdamOptimizer(config, maxEpochs * batchesPerEpoch, batchesPerEpoch);
  }

  trainEpoch(stream: BatchStream, epoch: number, modalities: string[]): void {
    const params = new Map<string, tf.Variable>([
      ["baseline/kernel", this.w],
      ["baseline/bias", this.b],
    ]);
    for (const batch of stream.epoch(epoch)) {
      const x = features(batch, modalities);
      const y = tf.tensor2d(batch.tags, [batch.size, this.numTags]);
      const { grads, value } = tf.variableGrads(() =>
        tf.tidy(() => {
          const z = tf.add(tf.matMul(x, this.w), this.b);
          const perTag = tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
          return tf.mean(tf.sum(perTag, 1)) as tf.Scalar;
        }),
      );
      this.optimizer.apply(params, new Map([["baseline/kernel", grads[this.w.name]], ["baseline/bias", grads[this.b.name]]]));
      tf.dispose([x, y, value, ...Object.values(grads)]);
    }
  }

  evaluate(stream: BatchStream, modalities: string[]) {
    const metrics = createTagMetrics(this.numTags);
    for (const batch of stream.epoch(0)) {
      // Read inside tidy, use outside it: a typed array returned from tidy is walked element by element.
      let scores: Float32Array | undefined;
      tf.tidy(() => {
        scores = tf.sigmoid(tf.add(tf.matMul(features(batch, modalities), this.w), this.b)).dataSync() as Float32Array;
      });
      metrics.update(scores!, batch.tags);
    }
    return metrics.compute();
  }

  dispose(): void {
    this.optimizer.dispose();
    tf.dispose([this.w, this.b]);
  }
}

export function trainLogisticBaseline(options: {
  train: BatchStream;
  holdout: BatchStream;
  report: BatchStream;
  /** Train again on this stream for the best epoch count, and report that fit. */
  refit?: BatchStream;
  modalities: string[];
  numTags: number;
  maxEpochs?: number;
  patience?: number;
  log?: (line: string) => void;
}): BaselineResult {
  const { modalities, numTags } = options;
  const inputDim = modalities.reduce((n, m) => n + options.train.config.features[m].frames * options.train.config.features[m].dim, 0);
  const maxEpochs = options.maxEpochs ?? 40;
  const patience = options.patience ?? 3;
  const model = new LogisticModel(inputDim, numTags, maxEpochs, options.train.batchesPerEpoch);
  let best: { gap: number; epoch: number; w: Float32Array; b: Float32Array } = { gap: -1, epoch: -1, w: new Float32Array(0), b: new Float32Array(0) };
  let epoch = 0;
  let epochs = 0;
  try {
    for (; epoch < maxEpochs; epoch++) {
      model.trainEpoch(options.train, epoch, modalities);
      const gap = model.evaluate(options.holdout, modalities).gap20;
      options.log?.(`baseline epoch ${epoch + 1}: holdout gap20 ${gap.toFixed(4)}`);
      if (gap > best.gap) best = { gap, epoch, w: Float32Array.from(model.w.dataSync()), b: Float32Array.from(model.b.dataSync()) };
      else if (epoch - best.epoch >= patience) break;
    }
    epochs = Math.min(epoch + 1, maxEpochs);
    if (!options.refit) {
      tf.tidy(() => {
        model.w.assign(tf.tensor2d(best.w, [inputDim, numTags]));
        model.b.assign(tf.tensor1d(best.b));
      });
      const m = model.evaluate(options.report, modalities);
      return { gap20: m.gap20, map: m.map, hit1: m.hit1, epochs, bestEpoch: best.epoch + 1, holdoutGap20: best.gap, refit: false };
    }
  } finally {
    model.dispose();
  }
  const refit = new LogisticModel(inputDim, numTags, best.epoch + 1, options.refit.batchesPerEpoch);
  try {
    for (let e = 0; e <= best.epoch; e++) {
      refit.trainEpoch(options.refit, e, modalities);
      options.log?.(`baseline refit epoch ${e + 1}/${best.epoch + 1}`);
    }
    const m = refit.evaluate(options.report, modalities);
    return { gap20: m.gap20, map: m.map, hit1: m.hit1, epochs, bestEpoch: best.epoch + 1, holdoutGap20: best.gap, refit: true };
  } finally {
    refit.dispose();
  }
}
