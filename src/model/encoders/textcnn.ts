/**
 * TextCNN (Kim 2014) over token embeddings: for each filter width w, a 1-d
 * convolution with F filters, ReLU, and a masked max over time; the per-width
 * results are concatenated ([B, widths.length × F], 400-d by default as in the
 * reference).
 *
 * The convolution is written as a matrix product over unfolded windows
 * (shifted slices concatenated on the feature axis, then matMul with a
 * [w·E, F] kernel) because tfjs-backend-wasm has no Conv1D/Conv2D
 * filter-backprop kernel, and because it maps one-to-one onto ONNX
 * Slice/Concat/MatMul.
 *
 * Op order per width w (mirrored by the ONNX exporter):
 *   x0 = x ⊙ mask; pad time to max(L, max width) with zeros (mask 0)
 *   U  = concat_k x0[:, k : k+n, :] (k = 0…w−1, n = L−w+1)          [B, n, w·E]
 *   z  = U·K_w + b_w                                                 [B, n, F]
 *   v  = Π_k mask[:, k : k+n]  max  (count < w)·(count ≥ 1)·[1,0…0]   [B, n]
 *   y  = relu(max_t (z ⊙ v + (v − 1)·1e9))                           [B, F]
 */
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ForwardContext, ParamScope, SequenceEncoder } from "../core.js";

export const TextCnnConfig = z.object({
  widths: z.array(z.number().int().min(1)).min(1).default([2, 3, 4, 5]),
  filters: z.number().int().positive().default(100),
});
export type TextCnnConfig = z.infer<typeof TextCnnConfig>;

/** Added to the pre-activation of excluded windows so they never win the max. */
export const MASKED_NEG = -1e9;

export class TextCnn implements SequenceEncoder {
  readonly outputDim: number;
  readonly config: TextCnnConfig;
  private readonly kernels: tf.Variable[];
  private readonly biases: tf.Variable[];

  constructor(
    scope: ParamScope,
    readonly inputDim: number,
    config: z.input<typeof TextCnnConfig> = {},
  ) {
    this.config = TextCnnConfig.parse(config);
    const { widths, filters } = this.config;
    if (new Set(widths).size !== widths.length) throw new Error(`TextCnn: duplicate filter widths ${widths.join(",")}`);
    // Kernel row order is (offset k within the window, embedding channel e) → k·E + e.
    this.kernels = widths.map((w) => scope.get(`conv_w${w}/kernel`, [w * inputDim, filters], "glorotUniform"));
    this.biases = widths.map((w) => scope.get(`conv_w${w}/bias`, [filters], "zeros"));
    this.outputDim = widths.length * filters;
  }

  /**
   * x [B, L, E], mask [B, L] → [B, widths·F]. Windows that cover a padded
   * position are excluded from the max. A title with 1 ≤ n < w real tokens
   * uses the single window at position 0, its positions past the title
   * zeroed (as if zero-padded); an empty title gives exactly zero.
   */
  apply(x: tf.Tensor3D, mask: tf.Tensor2D, _ctx: ForwardContext): tf.Tensor2D {
    return tf.tidy(() => {
      const [b, l, e] = x.shape;
      if (e !== this.inputDim) throw new Error(`TextCnn: input dim ${e}, expected ${this.inputDim}`);
      const m = tf.cast(mask, "float32");
      // Zero padded embeddings so their values cannot enter a short title's window.
      let xs: tf.Tensor3D = tf.mul(x, m.reshape([b, l, 1]));
      let ms: tf.Tensor2D = m;
      const maxWidth = Math.max(...this.config.widths);
      let len = l;
      if (l < maxWidth) {
        // Too short for the widest filter: pad so every width has ≥ 1 window.
        xs = tf.concat([xs, tf.zeros([b, maxWidth - l, e])], 1);
        ms = tf.concat([ms, tf.zeros([b, maxWidth - l])], 1);
        len = maxWidth;
      }
      const count = tf.sum(ms, 1, true); // [B, 1] real tokens
      const outs = this.config.widths.map((w, i) => {
        const n = len - w + 1;
        const shifted: tf.Tensor3D[] = [];
        const shiftedMask: tf.Tensor2D[] = [];
        for (let k = 0; k < w; k++) {
          shifted.push(tf.slice(xs, [0, k, 0], [b, n, e]));
          shiftedMask.push(tf.slice(ms, [0, k], [b, n]));
        }
        const windows = tf.concat(shifted, 2); // [B, n, w·E]
        const z = tf.add(tf.matMul(windows.reshape([b * n, w * e]), this.kernels[i] as tf.Tensor2D), this.biases[i]).reshape([b, n, -1]);
        // A window is valid when all its positions are real tokens …
        const full = shiftedMask.reduce((acc, s) => tf.mul(acc, s)); // [B, n]
        // … or it is window 0 of a non-empty title shorter than w.
        const short = tf.mul(tf.cast(tf.less(count, w), "float32"), tf.minimum(count, 1)); // [B, 1]
        const firstValues = new Float32Array(n);
        firstValues[0] = 1;
        const first = tf.tensor2d(firstValues, [1, n]); // constant [1, 0, …, 0]
        const valid = tf.maximum(full, tf.mul(short, first)); // [B, n]
        // z·valid + (valid − 1)·1e9 keeps valid entries exact and sinks the rest.
        const v3 = valid.reshape([b, n, 1]);
        const masked = tf.add(tf.mul(z, v3), tf.mul(tf.sub(v3, 1), -MASKED_NEG));
        // ReLU after the max (equal to before it, ReLU being monotone): an
        // empty title's max is −1e9, which the ReLU turns into exactly 0.
        return tf.relu(tf.max(masked, 1)) as tf.Tensor2D;
      });
      return (outs.length === 1 ? outs[0] : tf.concat(outs, 1)) as tf.Tensor2D;
    });
  }
}
