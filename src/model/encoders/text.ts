/**
 * The title branch: TextCNN, Bi-LSTM or both concatenated (as in the
 * reference), then dropout → Dense (no bias: BN follows) → BN, the
 * reference's "title branch" projection. Input is the looked-up token
 * embeddings [B, L, E] with their mask.
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ForwardContext, ParamScope, SequenceEncoder } from "../core.js";
import { BatchNorm, Dense, dropout } from "../layers.js";
import { BiLstm, BiLstmConfig } from "./bilstm.js";
import { TextCnn, TextCnnConfig } from "./textcnn.js";

const projection = {
  /** Width of the projection after the branch(es); the reference used 1024. */
  hidden: z.number().int().positive().default(1024),
  /** Dropout before the projection (reference: keep 0.8). */
  dropout: z.number().min(0).lt(1).default(0.2),
};

export const TextEncoderConfig = z.discriminatedUnion("type", [
  z.object({ type: z.literal("textcnn"), textcnn: TextCnnConfig.prefault({}), ...projection }),
  z.object({ type: z.literal("bilstm"), bilstm: BiLstmConfig.prefault({}), ...projection }),
  z.object({
    type: z.literal("textcnn+bilstm"),
    textcnn: TextCnnConfig.prefault({}),
    bilstm: BiLstmConfig.prefault({}),
    ...projection,
  }),
]);
export type TextEncoderConfig = z.infer<typeof TextEncoderConfig>;

/** Branch(es) → concat → dropout → Dense → BN; zero for a title with no tokens. */
export class TitleEncoder implements SequenceEncoder {
  readonly outputDim: number;
  readonly branches: SequenceEncoder[];
  readonly dense: Dense;
  readonly bn: BatchNorm;

  constructor(
    readonly config: TextEncoderConfig,
    scope: ParamScope,
    readonly embeddingDim: number,
  ) {
    const branches: SequenceEncoder[] = [];
    if (config.type === "textcnn" || config.type === "textcnn+bilstm") {
      branches.push(new TextCnn(scope.scope("textcnn"), embeddingDim, config.textcnn));
    }
    if (config.type === "bilstm" || config.type === "textcnn+bilstm") {
      branches.push(new BiLstm(scope.scope("bilstm"), embeddingDim, config.bilstm));
    }
    this.branches = branches;
    const concatDim = branches.reduce((n, br) => n + br.outputDim, 0);
    this.dense = new Dense(scope.scope("dense"), concatDim, config.hidden, false);
    this.bn = new BatchNorm(scope.scope("bn"), config.hidden);
    this.outputDim = config.hidden;
  }

  apply(x: tf.Tensor3D, mask: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const parts = this.branches.map((br) => br.apply(x, mask, ctx));
      const joined = parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor2D);
      const h = this.dense.apply(dropout(joined, this.config.dropout, ctx)) as tf.Tensor2D;
      // Titles without tokens are not data: keep them out of the BN batch
      // statistics, and output zero for them (fusion also gets a presence flag).
      const hasTokens = tf.minimum(tf.sum(tf.cast(mask, "float32"), 1), 1) as tf.Tensor1D; // [B]
      const y = this.bn.apply(h, ctx, hasTokens);
      return tf.mul(y, hasTokens.reshape([-1, 1])) as tf.Tensor2D;
    });
  }
}

export function buildTextEncoder(config: z.input<typeof TextEncoderConfig>, scope: ParamScope, embeddingDim: number): SequenceEncoder {
  return new TitleEncoder(TextEncoderConfig.parse(config), scope, embeddingDim);
}
