/**
 * The whole model: per-modality encoders → one fusion block → one head per
 * output, built from a ModelConfig. The fused vector, L2-normalised, is the
 * video embedding. Inputs can carry additive perturbations (frame features;
 * title embeddings after lookup) for adversarial training.
 */
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../train/batches.js";
import { mixRows, unionRows, type MixPlan } from "./mixup.js";
import type { LabelSpaces, ModelConfig } from "./config.js";
import { ParamStore, type ForwardContext, type SequenceEncoder } from "./core.js";
import { TokenEmbedding } from "./encoders/embedding.js";
import { buildTextEncoder } from "./encoders/text.js";
import { buildVideoEncoder } from "./encoders/video.js";
import { buildFusion, l2Normalize, type Fusion } from "./fusion.js";
import { dropout } from "./layers.js";
import { buildTagHead, CategoryHead, MultiTaskLoss, type AnyTagHead, type LossParts } from "./heads.js";

export interface ModalityInput {
  values: tf.Tensor3D;
  mask: tf.Tensor2D;
  present: tf.Tensor1D;
}

export interface ModelInputs {
  modalities: Record<string, ModalityInput>;
  title?: { ids: tf.Tensor2D; mask: tf.Tensor2D; present: tf.Tensor1D };
}

export interface ModelLabels {
  category: tf.Tensor1D;
  tags: tf.Tensor2D;
}

export interface ModelOutputs {
  fused: tf.Tensor2D;
  /** L2-normalised fused vector: what the index stores. */
  embedding: tf.Tensor2D;
  categoryLogits?: tf.Tensor2D;
  tagLogits?: tf.Tensor2D;
}

/** The name FGM uses for the title input (modalities use their own names). */
export const TITLE_INPUT = "title";

export class VideoModel {
  readonly params: ParamStore;
  readonly encoders: Map<string, SequenceEncoder>;
  readonly embedding?: TokenEmbedding;
  readonly titleEncoder?: SequenceEncoder;
  readonly fusion: Fusion;
  readonly categoryHead?: CategoryHead;
  readonly tagHead?: AnyTagHead;
  readonly loss: MultiTaskLoss;

  constructor(
    readonly config: ModelConfig,
    readonly labels: LabelSpaces,
    readonly vocabSize: number,
    params?: ParamStore,
  ) {
    this.params = params ?? new ParamStore(config.training.seed);
    const root = this.params.scope("model");
    this.encoders = new Map();
    const dims: number[] = [];
    for (const m of config.input.modalities) {
      const enc = buildVideoEncoder(config.encoders[m], root.scope(`encoder_${m}`), config.input.features[m].dim);
      this.encoders.set(m, enc);
      dims.push(enc.outputDim);
    }
    if (config.input.useTitle) {
      this.embedding = new TokenEmbedding(root.scope("title_embedding"), {
        vocabSize: vocabSize,
        dim: config.title.embeddingDim,
        trainable: config.title.trainableEmbedding,
      });
      this.titleEncoder = buildTextEncoder(config.title.encoder, root.scope("encoder_title"), config.title.embeddingDim);
      dims.push(this.titleEncoder.outputDim);
    }
    this.fusion = buildFusion(config.fusion, root.scope("fusion"), dims);
    const mode = config.heads.mode;
    if (mode !== "tags") {
      if (labels.categories.length < 2) throw new Error(`heads.mode "${mode}" needs at least 2 categories, the data has ${labels.categories.length}`);
      this.categoryHead = new CategoryHead(root.scope("head_category"), this.fusion.embeddingDim, { numClasses: labels.categories.length });
    }
    if (mode !== "category") {
      if (labels.tags.length < 1) throw new Error(`heads.mode "${mode}" needs at least 1 tag, the data has none`);
      this.tagHead = buildTagHead(root.scope("head_tags"), this.fusion.embeddingDim, labels.tags.length, config.heads.tagHead);
    }
    this.loss = new MultiTaskLoss(config.heads, this.categoryHead, this.tagHead);
  }

  /** Names of the inputs an adversarial pass perturbs, in order. */
  get perturbableInputs(): string[] {
    return [...this.config.input.modalities, ...(this.embedding ? [TITLE_INPUT] : [])];
  }

  /** Title token embeddings after lookup [B, L, E]: the title's perturbable representation. */
  embedTitle(ids: tf.Tensor2D): tf.Tensor3D {
    if (!this.embedding) throw new Error("this model does not use titles");
    return this.embedding.lookup(ids);
  }

  /**
   * Forward pass. `perturb` adds a tensor to an input's representation (by
   * input name); `titleEmbeddings` lets a caller pass embeddings it already
   * looked up (so it can differentiate with respect to them).
   */
  forward(inputs: ModelInputs, ctx: ForwardContext, perturb: Record<string, tf.Tensor> = {}, titleEmbeddings?: tf.Tensor3D, mix?: MixPlan): ModelOutputs {
    return tf.tidy(() => {
      const vectors: tf.Tensor2D[] = [];
      const present: tf.Tensor1D[] = [];
      for (const [m, enc] of this.encoders) {
        const input = inputs.modalities[m];
        if (!input) throw new Error(`missing input for modality "${m}"`);
        let x: tf.Tensor3D = this.config.input.normalize === "l2" ? l2NormalizeFrames(input.values) : input.values;
        let mask = input.mask;
        let flags = input.present;
        if (mix) {
          // Mixup (training): padding zeroed first (it may hold anything), then the union of the masks.
          x = mixRows(tf.where(tf.greater(tf.expandDims(mask, 2), 0), x, 0) as tf.Tensor3D, mix);
          mask = unionRows(mask, mix);
          flags = unionRows(tf.cast(flags, "float32") as tf.Tensor1D, mix);
        }
        // Perturbations are masked to real frames: padding stays padding.
        if (perturb[m]) x = tf.add(x, tf.mul(perturb[m], tf.expandDims(mask, 2)));
        vectors.push(enc.apply(x, mask, ctx));
        present.push(flags);
      }
      if (this.titleEncoder) {
        if (!inputs.title) throw new Error("missing title input");
        let e = titleEmbeddings ?? this.embedTitle(inputs.title.ids);
        let mask = inputs.title.mask;
        let flags = inputs.title.present;
        if (mix) {
          e = mixRows(tf.mul(e, tf.expandDims(mask, 2)) as tf.Tensor3D, mix);
          mask = unionRows(mask, mix);
          flags = unionRows(tf.cast(flags, "float32") as tf.Tensor1D, mix);
        }
        if (perturb[TITLE_INPUT]) e = tf.add(e, tf.mul(perturb[TITLE_INPUT], tf.expandDims(mask, 2))) as tf.Tensor3D;
        vectors.push(this.titleEncoder.apply(e, mask, ctx));
        present.push(flags);
      }
      const fused = this.fusion.apply(vectors, present, ctx);
      const headInput = dropout(fused, this.config.heads.dropout ?? 0, ctx);
      return {
        fused,
        embedding: l2Normalize(fused),
        categoryLogits: this.categoryHead?.logits(headInput),
        tagLogits: this.tagHead?.logits(headInput),
      };
    });
  }

  computeLoss(outputs: ModelOutputs, labels: ModelLabels): LossParts {
    return this.loss.compute(outputs, { category: labels.category, tags: labels.tags });
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** Each frame divided by its L2 norm (ε-guarded: an all-zero padded frame stays zero). */
export function l2NormalizeFrames(x: tf.Tensor3D, epsilon = 1e-12): tf.Tensor3D {
  return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), 2, true), epsilon))) as tf.Tensor3D);
}

/** Tensors for a batch (caller disposes them, e.g. with disposeInputs). */
export function batchToInputs(batch: Batch, model: VideoModel): ModelInputs {
  const B = batch.size;
  const modalities: Record<string, ModalityInput> = {};
  for (const m of model.config.input.modalities) {
    const mb = batch.modalities[m];
    if (!mb) throw new Error(`batch has no modality "${m}"`);
    modalities[m] = {
      values: tf.tensor3d(mb.values, [B, mb.steps, mb.dim]),
      mask: tf.tensor2d(mb.mask, [B, mb.steps]),
      present: tf.tensor1d(mb.present),
    };
  }
  const title = model.config.input.useTitle
    ? {
        ids: tf.tensor2d(batch.titleIds, [B, batch.titleLength], "int32"),
        mask: tf.tensor2d(batch.titleMask, [B, batch.titleLength]),
        present: tf.tensor1d(batch.titlePresent),
      }
    : undefined;
  return { modalities, title };
}

export function batchToLabels(batch: Batch): ModelLabels {
  return { category: tf.tensor1d(batch.category, "int32"), tags: tf.tensor2d(batch.tags, [batch.size, batch.numTags]) };
}

export function disposeInputs(inputs: ModelInputs, labels?: ModelLabels): void {
  for (const m of Object.values(inputs.modalities)) tf.dispose([m.values, m.mask, m.present]);
  if (inputs.title) tf.dispose([inputs.title.ids, inputs.title.mask, inputs.title.present]);
  if (labels) tf.dispose([labels.category, labels.tags]);
}
