/**
 * Classification heads over the fused vector and the multi-task loss.
 *
 * CategoryHead: one category per video (softmax); label −1 = unknown, the row
 * is left out of the loss (the reference zeroed validation labels instead,
 * which turned "unknown" into "class 0").
 * TagHead: many tags per video (independent sigmoids), binary cross-entropy in
 * the logits form, mean over tags.
 * Both losses are written with explicit ops (max, exp, log, log1p) so they
 * stay finite for any logits.
 *
 * Label spaces grow (new categories, new tags): growCategoryHead/growTagHead
 * build a wider head whose old columns are copies of the old head's, so every
 * old logit is unchanged.
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ParamScope } from "./core.js";
import { Dense } from "./layers.js";

export const CategoryHeadConfig = z.object({ numClasses: z.number().int().min(2) });
export type CategoryHeadConfig = z.infer<typeof CategoryHeadConfig>;

export const TagHeadConfig = z.object({ numTags: z.number().int().min(1) });
export type TagHeadConfig = z.infer<typeof TagHeadConfig>;

export class CategoryHead {
  readonly dense: Dense;
  readonly numClasses: number;
  constructor(
    scope: ParamScope,
    readonly inputDim: number,
    config: z.input<typeof CategoryHeadConfig>,
  ) {
    this.numClasses = CategoryHeadConfig.parse(config).numClasses;
    this.dense = new Dense(scope.scope("dense"), inputDim, this.numClasses);
  }

  /** x [B, D] → logits [B, C]. */
  logits(x: tf.Tensor2D): tf.Tensor2D {
    return this.dense.apply(x) as tf.Tensor2D;
  }

  probabilities(logits: tf.Tensor2D): tf.Tensor2D {
    return tf.softmax(logits, 1);
  }

  /**
   * Sparse categorical cross-entropy, mean over rows whose label is not −1
   * (0 when there are none). labels [B] int32 in [−1, C).
   */
  loss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
    const c = this.numClasses;
    const values = labels.dataSync();
    for (const v of values) {
      if (!Number.isInteger(v) || v < -1 || v >= c) throw new Error(`CategoryHead.loss: label ${v} outside [-1, ${c})`);
    }
    return tf.tidy(() => {
      const valid = tf.cast(tf.greaterEqual(labels, 0), "float32"); // [B]
      const target = tf.oneHot(tf.cast(tf.maximum(labels, 0), "int32"), c).toFloat(); // [B, C]
      // log Σ exp(z) = m + log Σ exp(z − m), m = max z: no overflow.
      const m = tf.max(logits, 1, true);
      const lse = tf.add(m, tf.log(tf.sum(tf.exp(tf.sub(logits, m)), 1, true))).reshape([-1]);
      const picked = tf.sum(tf.mul(logits, target), 1);
      const nll = tf.sub(lse, picked);
      return tf.div(tf.sum(tf.mul(nll, valid)), tf.maximum(tf.sum(valid), 1)) as tf.Scalar;
    });
  }
}

/** The starting logit of a tag: a prior of about 1/numTags. */
export function tagPriorLogit(numTags: number): number {
  return -Math.log(Math.max(2, numTags));
}

export class TagHead {
  readonly dense: Dense;
  readonly numTags: number;
  constructor(
    scope: ParamScope,
    readonly inputDim: number,
    config: z.input<typeof TagHeadConfig>,
    /** False keeps the bias as found (a head grown from an old one). */
    initialiseBias = true,
  ) {
    this.numTags = TagHeadConfig.parse(config).numTags;
    this.dense = new Dense(scope.scope("dense"), inputDim, this.numTags);
    // Start every tag at a prior of ~1/numTags instead of 0.5: with thousands
    // of tags and a summed loss, zero biases cost hundreds of steps of
    // unlearning before anything useful is learned (the focal-loss prior init).
    if (initialiseBias) {
      const prior = tf.fill([this.numTags], tagPriorLogit(this.numTags));
      this.dense.bias!.assign(prior);
      prior.dispose();
    }
  }

  /** x [B, D] → logits [B, T]. */
  logits(x: tf.Tensor2D): tf.Tensor2D {
    return this.dense.apply(x) as tf.Tensor2D;
  }

  probabilities(logits: tf.Tensor2D): tf.Tensor2D {
    return tf.sigmoid(logits);
  }

  /**
   * Binary cross-entropy from logits, max(z, 0) − z·y + log(1 + e^(−|z|)),
   * summed over tags (as the YouTube-8M starter code's CrossEntropyLoss: a
   * mean over thousands of tags would shrink the tag task's gradient next to
   * the category's by that factor), then mean over rows weighted by
   * `rowWeights` ([B], 0 for a video without tag annotation; default all 1).
   */
  loss(logits: tf.Tensor2D, labels: tf.Tensor2D, rowWeights?: tf.Tensor1D): tf.Scalar {
    return tagLoss(logits, labels, rowWeights);
  }
}

/** The tag loss of TagHead.loss, shared by every tag head (they all produce logits). */
export function tagLoss(logits: tf.Tensor2D, labels: tf.Tensor2D, rowWeights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const y = tf.cast(labels, "float32");
    const perTag = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, y)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    const perRow = tf.sum(perTag, 1); // [B]
    if (!rowWeights) return tf.mean(perRow) as tf.Scalar;
    const w = tf.cast(rowWeights, "float32");
    return tf.div(tf.sum(tf.mul(perRow, w)), tf.maximum(tf.sum(w), 1)) as tf.Scalar;
  });
}

export const MoeTagHeadConfig = z.object({
  numTags: z.number().int().min(1),
  /** Experts per tag (the YouTube-8M starter's MoeModel: 2–4). */
  experts: z.number().int().min(1).max(16).default(2),
});
export type MoeTagHeadConfig = z.infer<typeof MoeTagHeadConfig>;

/** log σ(x) = min(x, 0) − log(1 + e^(−|x|)), finite for any x. */
function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.sub(tf.minimum(x, 0), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
}

/** log Σ exp(x) over the last axis, m + log Σ exp(x − m). */
function logSumExpLast(x: tf.Tensor): tf.Tensor {
  const axis = x.rank - 1;
  const m = tf.max(x, axis, true);
  return tf.add(tf.squeeze(m, [axis]), tf.log(tf.sum(tf.exp(tf.sub(x, m)), axis)));
}

/**
 * Mixture-of-experts tag head (the YouTube-8M starter code's MoeModel): per
 * tag t, k logistic experts σ(e_tj) mixed by a softmax gate over k + 1
 * choices, the last one a "none" expert that always says 0:
 *   p_t = Σ_{j<k} softmax(g_t)_j · σ(e_tj).
 * `logits` returns log p − log(1 − p), computed from log-sum-exps of
 * log-gates and log-sigmoids (1 − p = g_none + Σ g_j·σ(−e_j)), so the same
 * binary cross-entropy from logits as TagHead applies and stays finite.
 * Parameters: gate [D, T·(k+1)] and experts [D, T·k], tag-major columns
 * (tag t's gate logits are columns t·(k+1) … t·(k+1)+k).
 * The "none" gate bias starts where p_t ≈ 1/numTags, as TagHead's prior.
 */
export class MoeTagHead {
  readonly gate: Dense;
  readonly experts: Dense;
  readonly numTags: number;
  readonly numExperts: number;
  constructor(
    scope: ParamScope,
    readonly inputDim: number,
    config: z.input<typeof MoeTagHeadConfig>,
  ) {
    const c = MoeTagHeadConfig.parse(config);
    this.numTags = c.numTags;
    this.numExperts = c.experts;
    const k = c.experts;
    this.gate = new Dense(scope.scope("gate"), inputDim, c.numTags * (k + 1));
    this.experts = new Dense(scope.scope("experts"), inputDim, c.numTags * k);
    // σ(0) = ½ per expert: p = ½·k·e^0 / (k + e^b) = 1/T ⇔ e^b = k·(T/2 − 1).
    const noneBias = Math.log(Math.max(k * (Math.max(2, c.numTags) / 2 - 1), 1e-3));
    const bias = new Float32Array(c.numTags * (k + 1));
    for (let t = 0; t < c.numTags; t++) bias[t * (k + 1) + k] = noneBias;
    tf.tidy(() => this.gate.bias!.assign(tf.tensor1d(bias)));
  }

  /** x [B, D] → logits [B, T] (log-odds of the mixture's probability). */
  logits(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const k = this.numExperts;
      const T = this.numTags;
      const g = tf.reshape(this.gate.apply(x), [-1, T, k + 1]);
      const logGate = tf.sub(g, tf.expandDims(logSumExpLast(g), 2)); // log softmax [B, T, k+1]
      const e = tf.reshape(this.experts.apply(x), [-1, T, k]);
      const logGateExperts = tf.slice(logGate, [0, 0, 0], [-1, -1, k]);
      const logGateNone = tf.slice(logGate, [0, 0, k], [-1, -1, 1]);
      const logP = logSumExpLast(tf.add(logGateExperts, logSigmoid(e)));
      const logNotP = logSumExpLast(tf.concat([logGateNone, tf.add(logGateExperts, logSigmoid(tf.neg(e)))], 2));
      return tf.sub(logP, logNotP) as tf.Tensor2D;
    });
  }

  probabilities(logits: tf.Tensor2D): tf.Tensor2D {
    return tf.sigmoid(logits);
  }

  loss(logits: tf.Tensor2D, labels: tf.Tensor2D, rowWeights?: tf.Tensor1D): tf.Scalar {
    return tagLoss(logits, labels, rowWeights);
  }
}

/** Which tag head a model has: logistic (one Dense, the default) or a mixture of experts. */
export const TagHeadTypeConfig = z.discriminatedUnion("type", [
  z.object({ type: z.literal("logistic") }),
  z.object({ type: z.literal("moe"), experts: z.number().int().min(1).max(16).default(2) }),
]);
export type TagHeadTypeConfig = z.infer<typeof TagHeadTypeConfig>;

export type AnyTagHead = TagHead | MoeTagHead;

/** The tag head `config` asks for (undefined: logistic, as checkpoints written before the choice existed). */
export function buildTagHead(scope: ParamScope, inputDim: number, numTags: number, config?: TagHeadTypeConfig): AnyTagHead {
  if (config?.type === "moe") return new MoeTagHead(scope, inputDim, { numTags, experts: config.experts });
  return new TagHead(scope, inputDim, { numTags });
}

export const MultiTaskLossConfig = z.object({
  mode: z.enum(["category", "tags", "multi"]).default("multi"),
  categoryWeight: z.number().min(0).default(1),
  tagWeight: z.number().min(0).default(1),
  /**
   * Flooding level b (Ishida et al. 2020): the optimised loss is |L − b| + b,
   * which stops pushing the training loss below b. 0 = off (L ≥ 0).
   */
  flood: z.number().min(0).default(0),
  /** The tag head: `{type: "logistic"}` (absent = logistic) or `{type: "moe", experts: 2}`. */
  tagHead: TagHeadTypeConfig.optional(),
  /**
   * Dropout on the fused vector where the heads read it (training only; the
   * embedding output is never dropped). Regularises the heads, the largest
   * layers with thousands of tags. Absent = 0.
   */
  dropout: z.number().min(0).lt(1).optional(),
});
export type MultiTaskLossConfig = z.infer<typeof MultiTaskLossConfig>;

export interface TaskOutputs {
  categoryLogits?: tf.Tensor2D;
  tagLogits?: tf.Tensor2D;
}

export interface TaskLabels {
  /** [B] int32, −1 = unknown. */
  category?: tf.Tensor1D;
  /** [B, T] 0/1. */
  tags?: tf.Tensor2D;
  /** [B] 0 for videos without tag annotation. */
  tagRowWeights?: tf.Tensor1D;
}

export interface LossParts {
  total: tf.Scalar;
  category?: tf.Scalar;
  tags?: tf.Scalar;
}

export class MultiTaskLoss {
  readonly config: MultiTaskLossConfig;
  constructor(
    config: z.input<typeof MultiTaskLossConfig>,
    readonly categoryHead?: CategoryHead,
    readonly tagHead?: AnyTagHead,
  ) {
    this.config = MultiTaskLossConfig.parse(config);
    if (this.usesCategory && !categoryHead) throw new Error(`loss mode ${this.config.mode} needs a category head`);
    if (this.usesTags && !tagHead) throw new Error(`loss mode ${this.config.mode} needs a tag head`);
  }

  get usesCategory(): boolean {
    return this.config.mode !== "tags";
  }

  get usesTags(): boolean {
    return this.config.mode !== "category";
  }

  /** Weighted sum of the active task losses (then flooding); parts are returned for logging. */
  compute(outputs: TaskOutputs, labels: TaskLabels): LossParts {
    let category: tf.Scalar | undefined;
    let tags: tf.Scalar | undefined;
    if (this.usesCategory) {
      if (!outputs.categoryLogits || !labels.category) throw new Error("category loss needs categoryLogits and category labels");
      category = this.categoryHead!.loss(outputs.categoryLogits, labels.category);
    }
    if (this.usesTags) {
      if (!outputs.tagLogits || !labels.tags) throw new Error("tag loss needs tagLogits and tag labels");
      tags = this.tagHead!.loss(outputs.tagLogits, labels.tags, labels.tagRowWeights);
    }
    const total = tf.tidy(() => {
      const terms: tf.Tensor[] = [];
      if (category) terms.push(tf.mul(category, this.config.categoryWeight));
      if (tags) terms.push(tf.mul(tags, this.config.tagWeight));
      const sum = terms.length === 1 ? terms[0] : tf.addN(terms);
      const b = this.config.flood;
      return (b > 0 ? tf.add(tf.abs(tf.sub(sum, b)), b) : sum) as tf.Scalar;
    });
    return { total, category, tags };
  }
}

/** A head's weights detached from its store (tfjs variable names are engine-global). */
export interface DenseWeights {
  kernel: tf.Tensor2D;
  bias?: tf.Tensor1D;
}

/**
 * Copies of a Dense's (or a head's) weights. tfjs refuses two live variables
 * with one name, so growing a head under the same parameter names goes:
 * snapshot the old head, dispose its store, grow into the new store.
 */
export function snapshotWeights(source: Dense | CategoryHead | TagHead): DenseWeights {
  const d = source instanceof Dense ? source : source.dense;
  return { kernel: tf.clone(d.kernel) as tf.Tensor2D, bias: d.bias ? (tf.clone(d.bias) as tf.Tensor1D) : undefined };
}

function weightsOf(source: Dense | CategoryHead | TagHead | DenseWeights): DenseWeights {
  if (source instanceof CategoryHead || source instanceof TagHead) return weightsOf(source.dense);
  if (source instanceof Dense) return { kernel: source.kernel as tf.Tensor as tf.Tensor2D, bias: source.bias as tf.Tensor as tf.Tensor1D | undefined };
  return source;
}

/**
 * A Dense with `units` ≥ old outputs whose first columns (kernel and bias)
 * are copies of the old ones; the new columns keep the fresh initialisation
 * of `scope` (glorot kernel, zero bias), so new labels start like a new head.
 */
export function growDense(old: Dense | DenseWeights, scope: ParamScope, units: number): Dense {
  const w = weightsOf(old);
  const [inputDim, oldUnits] = w.kernel.shape;
  if (units < oldUnits) throw new Error(`cannot shrink a head from ${oldUnits} to ${units} outputs`);
  if (w.bias && w.bias.shape[0] !== oldUnits) throw new Error(`old bias has ${w.bias.shape[0]} entries, kernel ${oldUnits} columns`);
  const grown = new Dense(scope, inputDim, units, w.bias !== undefined);
  tf.tidy(() => {
    const extra = units - oldUnits;
    grown.kernel.assign(extra === 0 ? w.kernel : tf.concat([w.kernel, tf.slice(grown.kernel, [0, oldUnits], [-1, extra])], 1));
    if (w.bias && grown.bias) {
      grown.bias.assign(extra === 0 ? w.bias : tf.concat([w.bias, tf.slice(grown.bias, [oldUnits], [extra])]));
    }
  });
  return grown;
}

/** A category head over more classes, warm-started from `old`: old logits unchanged. */
export function growCategoryHead(old: CategoryHead | DenseWeights, scope: ParamScope, numClasses: number): CategoryHead {
  const w = weightsOf(old);
  growDense(w, scope.scope("dense"), numClasses);
  // Same scope and shapes: the head picks up the variables growDense filled.
  return new CategoryHead(scope, w.kernel.shape[0], { numClasses });
}

/** A tag head over more tags, warm-started from `old`: old tag logits unchanged. */
export function growTagHead(old: TagHead | DenseWeights, scope: ParamScope, numTags: number): TagHead {
  const w = weightsOf(old);
  const dense = growDense(w, scope.scope("dense"), numTags);
  const oldTags = w.kernel.shape[1];
  if (dense.bias && numTags > oldTags) {
    // New tags start at the prior, like a fresh head's.
    tf.tidy(() => dense.bias!.assign(tf.concat([tf.slice(dense.bias!, [0], [oldTags]), tf.fill([numTags - oldTags], tagPriorLogit(numTags))])));
  }
  return new TagHead(scope, w.kernel.shape[0], { numTags }, false);
}
