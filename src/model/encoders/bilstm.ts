/**
 * Bi-LSTM title encoder: a forward and a backward LSTM over the token
 * embeddings, then attention pooling (Yang et al. 2016: score_t =
 * v·tanh(W·o_t + b), masked softmax over real tokens) over the 2H outputs.
 *
 * Masking: at a padded step both directions keep their state unchanged. The
 * backward LSTM runs from the last position down to 0, so it stays at its zero
 * initial state through trailing padding and starts on each sequence's true
 * last token — the same as running it on the sequence reversed within its own
 * length, without a per-row gather (whose gradient the wasm backend lacks).
 *
 * The cell is written with explicit ops, unrolled over time (titles are
 * ≤ 30 tokens): one fused gate kernel [E+H, 4H] applied to concat(x_t, h),
 * gate order i, f, g, o.
 *
 * Op order (mirrored by the ONNX exporter), per direction and step t:
 *   [i f g o] = split₄(concat(x_t, h)·K + b)
 *   c' = σ(f + forgetBias)⊙c + σ(i)⊙tanh(g);  h' = σ(o)⊙tanh(c')
 *   c = m_t·c' + (1 − m_t)·c;  h = m_t·h' + (1 − m_t)·h;  out_t = m_t·h'
 * then o_t = concat(out_fw_t, out_bw_t), s_t = tanh(o_t·W + b)·v,
 *   a = softmax_t(s ⊙ m + (m − 1)·1e9) ⊙ m,  y = Σ_t a_t o_t          [B, 2H]
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ForwardContext, ParamScope, SequenceEncoder } from "../core.js";
import { MASKED_NEG } from "./textcnn.js";

export const BiLstmConfig = z.object({
  /** Units per direction; the pooled output is 2 × hidden. */
  hidden: z.number().int().positive().default(128),
  /** Width of the attention scoring layer. */
  attentionDim: z.number().int().positive().default(128),
  /** Constant added to the forget-gate pre-activation (TF BasicLSTMCell's forget_bias). */
  forgetBias: z.number().default(1),
});
export type BiLstmConfig = z.infer<typeof BiLstmConfig>;

/** One LSTM direction: fused kernel [E+H, 4H], bias [4H]. */
export class Lstm {
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    scope: ParamScope,
    readonly inputDim: number,
    readonly hidden: number,
    readonly forgetBias = 1,
  ) {
    this.kernel = scope.get("kernel", [inputDim + hidden, 4 * hidden], "glorotUniform");
    this.bias = scope.get("bias", [4 * hidden], "zeros");
  }

  /** One step: returns the new (h, c) before masking. */
  step(x: tf.Tensor2D, h: tf.Tensor2D, c: tf.Tensor2D): { h: tf.Tensor2D; c: tf.Tensor2D } {
    const gates = tf.add(tf.matMul(tf.concat([x, h], 1), this.kernel as tf.Tensor2D), this.bias);
    const [gi, gf, gg, go] = tf.split(gates, 4, 1);
    const i = tf.sigmoid(gi);
    const f = tf.sigmoid(tf.add(gf, this.forgetBias));
    const g = tf.tanh(gg);
    const o = tf.sigmoid(go);
    const cNew = tf.add(tf.mul(f, c), tf.mul(i, g)) as tf.Tensor2D;
    const hNew = tf.mul(o, tf.tanh(cNew)) as tf.Tensor2D;
    return { h: hNew, c: cNew };
  }

  /**
   * x [B, T, E], mask [B, T] → outputs [B, T, H] (zero at padded steps) and
   * the final hidden state [B, H]. `reverse` processes t = T−1 … 0; the
   * output at t is still stored at position t.
   */
  run(x: tf.Tensor3D, mask: tf.Tensor2D, reverse: boolean): { outputs: tf.Tensor3D; last: tf.Tensor2D } {
    const [b, t, e] = x.shape;
    const m = tf.cast(mask, "float32");
    let h = tf.zeros([b, this.hidden]) as tf.Tensor2D;
    let c = tf.zeros([b, this.hidden]) as tf.Tensor2D;
    const outs: tf.Tensor2D[] = new Array(t);
    for (let s = 0; s < t; s++) {
      const pos = reverse ? t - 1 - s : s;
      const xt = tf.slice(x, [0, pos, 0], [b, 1, e]).reshape([b, e]) as tf.Tensor2D;
      const mt = tf.slice(m, [0, pos], [b, 1]); // [B, 1]
      const next = this.step(xt, h, c);
      // Padded step: keep the state (m·new + (1 − m)·old).
      const keep = tf.sub(1, mt);
      h = tf.add(tf.mul(next.h, mt), tf.mul(h, keep)) as tf.Tensor2D;
      c = tf.add(tf.mul(next.c, mt), tf.mul(c, keep)) as tf.Tensor2D;
      outs[pos] = tf.mul(next.h, mt) as tf.Tensor2D;
    }
    return { outputs: tf.stack(outs, 1) as tf.Tensor3D, last: h };
  }
}

export class BiLstm implements SequenceEncoder {
  readonly outputDim: number;
  readonly config: BiLstmConfig;
  readonly forward: Lstm;
  readonly backward: Lstm;
  private readonly attW: tf.Variable;
  private readonly attB: tf.Variable;
  private readonly attV: tf.Variable;

  constructor(
    scope: ParamScope,
    readonly inputDim: number,
    config: z.input<typeof BiLstmConfig> = {},
  ) {
    this.config = BiLstmConfig.parse(config);
    const { hidden, attentionDim, forgetBias } = this.config;
    this.forward = new Lstm(scope.scope("fw"), inputDim, hidden, forgetBias);
    this.backward = new Lstm(scope.scope("bw"), inputDim, hidden, forgetBias);
    this.attW = scope.get("attention/kernel", [2 * hidden, attentionDim], "glorotUniform");
    this.attB = scope.get("attention/bias", [attentionDim], "zeros");
    this.attV = scope.get("attention/query", [attentionDim, 1], "glorotUniform");
    this.outputDim = 2 * hidden;
  }

  /** Per-position outputs [B, T, 2H] (forward ‖ backward), zero at padding. */
  sequenceOutputs(x: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor3D {
    const fw = this.forward.run(x, mask, false).outputs;
    const bw = this.backward.run(x, mask, true).outputs;
    return tf.concat([fw, bw], 2);
  }

  /** x [B, T, E], mask [B, T] → [B, 2H]; an empty title gives exactly zero. */
  apply(x: tf.Tensor3D, mask: tf.Tensor2D, _ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const [b, t, e] = x.shape;
      if (e !== this.inputDim) throw new Error(`BiLstm: input dim ${e}, expected ${this.inputDim}`);
      const m = tf.cast(mask, "float32");
      const o = this.sequenceOutputs(x, mask); // [B, T, 2H]
      const h2 = this.outputDim;
      const flat = o.reshape([b * t, h2]);
      const u = tf.tanh(tf.add(tf.matMul(flat, this.attW as tf.Tensor2D), this.attB));
      const scores = tf.matMul(u, this.attV as tf.Tensor2D).reshape([b, t]);
      // Masked softmax: padded scores sink to −1e9 (exp → exactly 0); the
      // weights are multiplied by the mask again so an all-padding row pools to 0.
      const masked = tf.add(tf.mul(scores, m), tf.mul(tf.sub(m, 1), -MASKED_NEG));
      const weights = tf.mul(tf.softmax(masked, 1), m); // [B, T]
      return tf.sum(tf.mul(o, weights.reshape([b, t, 1])), 1) as tf.Tensor2D;
    });
  }
}
