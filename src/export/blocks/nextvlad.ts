/**
 * NeXtVLAD (model/encoders/nextvlad.ts) in ONNX, kept in [B, T, ·] layout
 * (MatMul broadcasts over B and T) instead of tfjs' flattened [B·T, ·]:
 *   x0 = Where(mask > 0, x, 0)
 *   e = x0·W_expand + b;  α = σ(e·W_att + b_att)·mask
 *   a = Softmax_K(reshape(e·W_assign' + b_assign', [B, T, G, K]))     assignment BN folded
 *   w = reshape(a·α, [B, T·G, K]);  x̃ = reshape(e, [B, T·G, F])
 *   v = wᵀx̃ − (Σ w)·C;  v /= √max(Σ_F v², 1e-12);  flatten [B, K·F]
 *   y = CG(BN_vlad(v) as scale/shift · W_hidden')                      hidden BN folded
 */
import { NeXtVladEncoder } from "../../model/encoders/nextvlad.js";
import type { SequenceEncoder } from "../../model/core.js";
import { attr, type OnnxGraph } from "../graph.js";
import { emitBnAffine, emitContextGate, emitDense, emitDenseBn, paramName, valuesOf } from "./layers.js";
import { wrongBlock } from "./types.js";

/** Same guard as the encoder's intra-normalisation. */
const NORM_EPS = 1e-12;

export function exportNextVlad(g: OnnxGraph, encoder: SequenceEncoder, x: string, mask: string): string {
  if (!(encoder instanceof NeXtVladEncoder)) throw wrongBlock("nextvlad", "NeXtVladEncoder", encoder);
  const enc = encoder;
  const G = enc.config.groups;
  const K = enc.config.clusters;
  const F = enc.groupDim;

  const m3 = g.unsqueeze(mask, [2]); // [B, T, 1]
  // Where, as tfjs: padded frames may hold anything, and 0·Inf would be NaN.
  const x0 = g.where(g.op("Greater", [m3, g.f32(0)]), x, g.f32(0));
  const e = emitDense(g, x0, enc.expand); // [B, T, λD]
  const alpha = g.mul(g.sigmoid(emitDense(g, e, enc.attention)), m3); // [B, T, G]
  const logits = emitDenseBn(g, e, enc.assign, enc.assignBn); // [B, T, G·K]
  const a = g.op("Softmax", [g.reshape(logits, [0, 0, G, K])], { axis: attr.int(-1) });
  const w = g.reshape(g.mul(a, g.unsqueeze(alpha, [3])), [0, -1, K]); // [B, T·G, K]
  const xt = g.reshape(e, [0, -1, F]); // [B, T·G, F]
  const weighted = g.matmul(g.op("Transpose", [w], { perm: attr.ints([0, 2, 1]) }), xt); // [B, K, F]
  const mass = g.unsqueeze(g.reduceSum(w, [1], false), [2]); // [B, K, 1]
  const centres = g.weight(paramName(enc.centres), valuesOf(enc.centres), [K, F]);
  const v = g.sub(weighted, g.mul(mass, centres));
  const norm = g.op("Sqrt", [g.max(g.reduceSum(g.mul(v, v), [2], true), g.f32(NORM_EPS))]);
  const vlad = g.reshape(g.div(v, norm), [0, K * F]);
  // vlad_bn follows a normalisation, not a matmul: explicit scale/shift.
  const h0 = emitBnAffine(g, vlad, enc.vladBn);
  const h2 = emitDenseBn(g, h0, enc.hiddenFc, enc.hiddenBn);
  return emitContextGate(g, h2, enc.gate);
}
