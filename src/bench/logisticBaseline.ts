/**
 * The YouTube-8M starter code's LogisticModel as a baseline: one linear layer
 * with sigmoid outputs on the concatenated video-level features, trained with
 * summed binary cross-entropy (its CrossEntropyLoss) by Adam until the
 * held-out GAP@20 stops improving ("to convergence").
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
}

function features(batch: Batch, modalities: string[]): tf.Tensor2D {
  return tf.tidy(() => tf.concat(modalities.map((m) => tf.tensor2d(batch.modalities[m].values, [batch.size, batch.modalities[m].steps * batch.modalities[m].dim])), 1) as tf.Tensor2D);
}

function evaluate(w: tf.Variable, b: tf.Variable, stream: BatchStream, modalities: string[], numTags: number) {
  const metrics = createTagMetrics(numTags);
  for (const batch of stream.epoch(0)) {
    // Read inside tidy, use outside it: a typed array returned from tidy is walked element by element.
    let scores: Float32Array | undefined;
    tf.tidy(() => {
      scores = tf.sigmoid(tf.add(tf.matMul(features(batch, modalities), w), b)).dataSync() as Float32Array;
    });
    metrics.update(scores!, batch.tags);
  }
  return metrics.compute();
}

export function trainLogisticBaseline(options: {
  train: BatchStream;
  holdout: BatchStream;
  report: BatchStream;
  modalities: string[];
  numTags: number;
  maxEpochs?: number;
  patience?: number;
  log?: (line: string) => void;
}): BaselineResult {
  const { modalities, numTags } = options;
  const inputDim = modalities.reduce((n, m) => n + options.train.config.features[m].frames * options.train.config.features[m].dim, 0);
  const w = tf.variable(tf.zeros([inputDim, numTags]), true, "baseline/kernel");
  const b = tf.variable(tf.zeros([numTags]), true, "baseline/bias");
  const maxEpochs = options.maxEpochs ?? 40;
  const patience = options.patience ?? 3;
  // The starter code's defaults: Adam at 0.01, L2 penalty 1e-8.
  const config = TrainingConfig.parse({ learningRate: 1e-2, warmupSteps: 0, decay: "none", clipNorm: 0, weightDecay: 1e-8 });
  const optimizer = new AdamOptimizer(config, maxEpochs * options.train.batchesPerEpoch, options.train.batchesPerEpoch);
  const params = new Map<string, tf.Variable>([
    ["baseline/kernel", w],
    ["baseline/bias", b],
  ]);
  let best: { gap: number; epoch: number; w: Float32Array; b: Float32Array } = { gap: -1, epoch: -1, w: new Float32Array(0), b: new Float32Array(0) };
  let epoch = 0;
  try {
    for (; epoch < maxEpochs; epoch++) {
      for (const batch of options.train.epoch(epoch)) {
        const x = features(batch, modalities);
        const y = tf.tensor2d(batch.tags, [batch.size, numTags]);
        const { grads, value } = tf.variableGrads(() =>
          tf.tidy(() => {
            const z = tf.add(tf.matMul(x, w), b);
            const perTag = tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
            return tf.mean(tf.sum(perTag, 1)) as tf.Scalar;
          }),
        );
        optimizer.apply(params, new Map([["baseline/kernel", grads[w.name]], ["baseline/bias", grads[b.name]]]));
        tf.dispose([x, y, value, ...Object.values(grads)]);
      }
      const gap = evaluate(w, b, options.holdout, modalities, numTags).gap20;
      options.log?.(`baseline epoch ${epoch + 1}: holdout gap20 ${gap.toFixed(4)}`);
      if (gap > best.gap) best = { gap, epoch, w: Float32Array.from(w.dataSync()), b: Float32Array.from(b.dataSync()) };
      else if (epoch - best.epoch >= patience) break;
    }
    tf.tidy(() => {
      w.assign(tf.tensor2d(best.w, [inputDim, numTags]));
      b.assign(tf.tensor1d(best.b));
    });
    const m = evaluate(w, b, options.report, modalities, numTags);
    return { gap20: m.gap20, map: m.map, hit1: m.hit1, epochs: epoch + 1, bestEpoch: best.epoch + 1 };
  } finally {
    optimizer.dispose();
    tf.dispose([w, b]);
  }
}
