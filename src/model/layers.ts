/**
 * Small building blocks shared by the encoders, the fusion and the heads:
 * dense, batch norm (masked, with deferred moving-statistic updates), dropout
 * and SE context gating. Each takes a ParamScope and a ForwardContext.
 */
import * as tf from "@tensorflow/tfjs";
import type { ForwardContext, ParamScope } from "./core.js";

export class Dense {
  readonly kernel: tf.Variable;
  readonly bias?: tf.Variable;
  constructor(
    scope: ParamScope,
    readonly inputDim: number,
    readonly units: number,
    useBias = true,
  ) {
    this.kernel = scope.get("kernel", [inputDim, units], "glorotUniform");
    if (useBias) this.bias = scope.get("bias", [units], "zeros");
  }

  /** x: [..., inputDim] → [..., units]. */
  apply(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    const flat = shape.length === 2 ? (x as tf.Tensor2D) : x.reshape([-1, this.inputDim]) as tf.Tensor2D;
    let y: tf.Tensor = tf.matMul(flat, this.kernel as tf.Tensor2D);
    if (this.bias) y = tf.add(y, this.bias);
    return shape.length === 2 ? y : y.reshape([...shape.slice(0, -1), this.units]);
  }
}

export class BatchNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  readonly movingMean: tf.Variable;
  readonly movingVariance: tf.Variable;
  constructor(
    scope: ParamScope,
    readonly channels: number,
    // 0.9, not Keras' 0.99: runs here are hundreds of steps, and moving
    // statistics that lag far behind make early validations meaningless.
    readonly momentum = 0.9,
    readonly epsilon = 1e-3,
  ) {
    this.gamma = scope.get("gamma", [channels], "ones");
    this.beta = scope.get("beta", [channels], "zeros");
    this.movingMean = scope.get("moving_mean", [channels], "zeros", false);
    this.movingVariance = scope.get("moving_variance", [channels], "ones", false);
  }

  /**
   * x: [N, C]. In training, normalises with the batch statistics; `rowWeights`
   * ([N], 0/1) excludes padded rows from those statistics.
   */
  apply(x: tf.Tensor2D, ctx: ForwardContext, rowWeights?: tf.Tensor1D): tf.Tensor2D {
    if (!ctx.training) {
      return tf.batchNorm(x, this.movingMean, this.movingVariance, this.beta, this.gamma, this.epsilon) as tf.Tensor2D;
    }
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (rowWeights) {
      const w = rowWeights.reshape([-1, 1]);
      const count = tf.maximum(tf.sum(w), 1);
      mean = tf.div(tf.sum(tf.mul(x, w), 0), count);
      variance = tf.div(tf.sum(tf.mul(tf.square(tf.sub(x, mean)), w), 0), count);
    } else {
      const m = tf.moments(x, 0);
      mean = m.mean;
      variance = m.variance;
    }
    if (ctx.statUpdates) {
      const a = this.momentum;
      ctx.statUpdates.push(
        { variable: this.movingMean, value: tf.keep(tf.add(tf.mul(this.movingMean, a), tf.mul(mean, 1 - a))) },
        { variable: this.movingVariance, value: tf.keep(tf.add(tf.mul(this.movingVariance, a), tf.mul(variance, 1 - a))) },
      );
    }
    return tf.batchNorm(x, mean, variance, this.beta, this.gamma, this.epsilon) as tf.Tensor2D;
  }
}

/** Inverted dropout; identity outside training or at rate 0. */
export function dropout<T extends tf.Tensor>(x: T, rate: number, ctx: ForwardContext): T {
  if (!ctx.training || rate <= 0) return x;
  return tf.dropout(x, rate, undefined, ctx.nextSeed()) as T;
}

/**
 * Squeeze-and-excitation context gating (Miech et al. 2017, with the NeXtVLAD
 * bottleneck): y = x ⊙ σ(W2·relu(BN(W1·x))), W1 reducing by `reduction`.
 */
export class ContextGate {
  readonly squeeze: Dense;
  readonly bn: BatchNorm;
  readonly excite: Dense;
  constructor(scope: ParamScope, readonly dim: number, readonly reduction = 8) {
    const hidden = Math.max(1, Math.floor(dim / reduction));
    this.squeeze = new Dense(scope.scope("squeeze"), dim, hidden, false);
    this.bn = new BatchNorm(scope.scope("squeeze_bn"), hidden);
    this.excite = new Dense(scope.scope("excite"), hidden, dim, true);
  }

  apply(x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const h = tf.relu(this.bn.apply(this.squeeze.apply(x) as tf.Tensor2D, ctx));
    return tf.mul(x, tf.sigmoid(this.excite.apply(h))) as tf.Tensor2D;
  }
}

/**
 * table[ids] with a gradient that the wasm backend can run. tf.gather's own
 * gradient uses UnsortedSegmentSum, which tfjs-backend-wasm 4.22 does not
 * register; ScatterNd (which sums duplicate indices) is registered, and gives
 * the same dense [V, D] gradient.
 */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const [v, d] = table.shape;
  const n = ids.shape[0];
  // tf.customGrad passes the inputs then the save function, typed as one union.
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    // The ids must outlive the caller's tidy until backprop runs: save() keeps a copy on the tape.
    save([ids.reshape([n, 1])]);
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.scatterND(saved[0], (dy as tf.Tensor).reshape([n, d]), [v, d]),
    };
  });
  return op(table) as tf.Tensor2D;
}
