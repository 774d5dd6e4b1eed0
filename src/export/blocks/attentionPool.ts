/**
 * Gated attention pooling (model/encoders/attentionPool.ts), same op order:
 *   x0 = Where(mask > 0, x, 0)
 *   s = (tanh(x0·V + b_V) ⊙ σ(x0·U + b_U))·w                  [B, T]
 *   s' = s + (1 − mask)·(−1e9);  e = exp(s' − max_t s')·mask
 *   a = e / max(Σ_t e, 1e-12);  y = Σ_t a_t·x0_t               [B, D]
 *   y = y·W_out' + b_out'                                        when hidden > 0 (BN folded)
 */
import { AttentionPoolEncoder } from "../../model/encoders/attentionPool.js";
import type { SequenceEncoder } from "../../model/core.js";
import type { OnnxGraph } from "../graph.js";
import { emitDense, emitDenseBn } from "./layers.js";
import { wrongBlock } from "./types.js";

const MASKED_SCORE = -1e9;

export function exportAttentionPool(g: OnnxGraph, encoder: SequenceEncoder, x: string, mask: string): string {
  if (!(encoder instanceof AttentionPoolEncoder)) throw wrongBlock("attention", "AttentionPoolEncoder", encoder);
  const enc = encoder;
  const m3 = g.unsqueeze(mask, [2]);
  const x0 = g.where(g.op("Greater", [m3, g.f32(0)]), x, g.f32(0));
  const gated = g.mul(g.tanh(emitDense(g, x0, enc.v)), g.sigmoid(emitDense(g, x0, enc.u)));
  const s = g.squeeze(emitDense(g, gated, enc.w), [2]); // [B, T]
  const masked = g.add(s, g.mul(g.sub(g.f32(1), mask), g.f32(MASKED_SCORE)));
  const e = g.mul(g.op("Exp", [g.sub(masked, g.reduceMax(masked, [1], true))]), mask);
  const a = g.div(e, g.max(g.reduceSum(e, [1], true), g.f32(1e-12)));
  const pooled = g.reduceSum(g.mul(x0, g.unsqueeze(a, [2])), [1], false); // [B, D]
  if (!enc.out || !enc.outBn) return pooled;
  return emitDenseBn(g, pooled, enc.out, enc.outBn);
}
