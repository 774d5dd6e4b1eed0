/**
 * Multi-scale TRN (model/encoders/trn.ts) with its evaluation-time tuple
 * sampling computed inside the graph from the mask, so the exported model
 * needs no extra input:
 *   real = mask > 0;  n = Σ_t real  (per video);  rank = CumSum_t(real)
 *   per scale d and tuple slot (j, i):
 *     o  = n ≥ d ? i + (j + ½)/k : i + ½               (float64 constants, exactly sampleTuples' m + offset)
 *     r  = min(floor(o·n / d), n − 1)                  (float64, the same IEEE ops as the JS: bit-equal)
 *     t  = #{p : rank_p ≤ r}                           the r-th real frame's position (any mask, not only prefixes)
 *   rows = GatherND(p, t, batch_dims = 1)  with p = relu(Where(real, x, 0)·W_proj + b_proj)
 *   g_d  = mean_k relu(reshape(rows, [B, k, d·P])·W_g + b_g) ⊙ (n > 0)
 *   out  = Σ_d g_d·(W_h^d·s) + shift                    out BN folded into every h^d (they are summed)
 * A video with no real frame gets r = −1 → t = 0 (an in-range row), and its
 * relation vector is zeroed by (n > 0), as in tfjs. Training's random tuples
 * are not exported (inference only).
 */
import { TrnEncoder } from "../../model/encoders/trn.js";
import type { SequenceEncoder } from "../../model/core.js";
import { attr, type OnnxGraph } from "../graph.js";
import { bnAffine, emitDense, paramName, scaleColumns, valuesOf } from "./layers.js";
import { wrongBlock } from "./types.js";

/** sampleTuples' `m + offset` per (tuple j, slot m), row-major [k·d], for n ≥ d and n < d. */
export function tupleOffsets(d: number, k: number): { long: Float64Array; short: Float64Array } {
  const long = new Float64Array(k * d);
  const short = new Float64Array(k * d);
  for (let j = 0; j < k; j++) {
    const offset = (j + 0.5) / k;
    for (let m = 0; m < d; m++) {
      long[j * d + m] = m + offset;
      short[j * d + m] = m + 0.5;
    }
  }
  return { long, short };
}

export function exportTrn(g: OnnxGraph, encoder: SequenceEncoder, x: string, mask: string): string {
  if (!(encoder instanceof TrnEncoder)) throw wrongBlock("trn", "TrnEncoder", encoder);
  const enc = encoder;
  const { bottleneck: P, tuplesPerScale: k, relationDim: R, maxScale: S } = enc.config;

  const realB = g.op("Greater", [mask, g.f32(0)]); // [B, T] bool
  const real = g.cast(realB, "float32");
  const x0 = g.where(g.unsqueeze(realB, [2]), x, g.f32(0));
  const p = g.relu(emitDense(g, x0, enc.proj)); // [B, T, P]

  const nF = g.reduceSum(real, [1], true); // [B, 1], exact small integers
  const has = g.min(nF, g.f32(1)); // 1 when the video has a real frame, else 0
  const nD = g.cast(nF, "float64");
  const nI = g.cast(nF, "int64");
  const nLast = g.sub(nI, g.i64(1));
  const rank = g.unsqueeze(g.op("CumSum", [real, g.i64(1)]), [1]); // [B, 1, T]: real frames up to and including t

  const { scale, shift } = bnAffine(enc.outBn);
  let sum: string | undefined;
  for (let d = 2; d <= S; d++) {
    const sg = g.scope(`scale${d}`);
    const { long, short } = tupleOffsets(d, k);
    const offsets = sg.where(sg.op("GreaterOrEqual", [nI, sg.i64(d)]), sg.f64(long, [1, k * d]), sg.f64(short, [1, k * d])); // [B, k·d]
    const r = sg.min(sg.cast(sg.op("Floor", [sg.div(sg.mul(offsets, nD), sg.f64(d))]), "int64"), nLast);
    const rF = sg.unsqueeze(sg.cast(r, "float32"), [2]); // [B, k·d, 1]
    const pos = sg.cast(sg.reduceSum(sg.cast(sg.op("LessOrEqual", [rank, rF]), "float32"), [2], false), "int64"); // [B, k·d]
    const rows = sg.op("GatherND", [p, sg.unsqueeze(pos, [2])], { batch_dims: attr.int(1) }); // [B, k·d, P]
    const rel = sg.reshape(rows, [0, k, d * P]);
    const gd = sg.relu(emitDense(sg, rel, enc.g[d - 2])); // [B, k, R]
    const pooled = sg.mul(sg.reduceMean(gd, [1], false), has); // [B, R]
    const h = enc.h[d - 2];
    if (h.bias) throw new Error(`ONNX export: TRN ${paramName(h.kernel)} has a bias, which the exporter's BN fold does not expect`);
    const w = sg.weight(`${paramName(h.kernel).replace(/\/kernel$/, "")}/kernel_bnfolded`, scaleColumns(valuesOf(h.kernel), R, scale), [R, enc.config.hidden]);
    const hd = sg.matmul(pooled, w);
    sum = sum ? g.add(sum, hd) : hd;
  }
  const b = g.weight(`${paramName(enc.outBn.gamma).replace(/\/gamma$/, "")}/shift`, Float32Array.from(shift), [enc.config.hidden]);
  return g.add(sum as string, b);
}
