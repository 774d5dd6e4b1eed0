/**
 * Fusion blocks (model/fusion.ts), inference semantics (no modality dropout,
 * no dropout). present[i] is the [B, 1] float presence column.
 *   concat_se: CG(concat(v_i·p_i …, p_1 … p_M))·W + b
 *   gate:      g = σ(concat(v_i·p_i …, p …)·W_g + b_g)·p;  w = g / (Σ g + 1e-6)
 *              y = Σ_i w_i·(v_i·p_i·W_i + b_i)
 */
import { ConcatSeFusion, GateFusion, type Fusion } from "../../model/fusion.js";
import type { OnnxGraph } from "../graph.js";
import { emitContextGate, emitDense } from "./layers.js";
import { wrongBlock } from "./types.js";

export function exportConcatSeFusion(g: OnnxGraph, fusion: Fusion, vectors: string[], present: string[]): string {
  if (!(fusion instanceof ConcatSeFusion)) throw wrongBlock("concat_se", "ConcatSeFusion", fusion);
  const x = g.concat([...vectors.map((v, i) => g.mul(v, present[i])), ...present], 1);
  return emitDense(g, emitContextGate(g, x, fusion.gate), fusion.dense);
}

export function exportGateFusion(g: OnnxGraph, fusion: Fusion, vectors: string[], present: string[]): string {
  if (!(fusion instanceof GateFusion)) throw wrongBlock("gate", "GateFusion", fusion);
  const zeroed = vectors.map((v, i) => g.mul(v, present[i]));
  const pm = g.concat(present, 1); // [B, M]
  const gate = g.mul(g.sigmoid(emitDense(g, g.concat([...zeroed, ...present], 1), fusion.gateDense)), pm);
  const weights = g.div(gate, g.add(g.reduceSum(gate, [1], true), g.f32(GateFusion.EPS)));
  let y: string | undefined;
  zeroed.forEach((z, i) => {
    const term = g.mul(emitDense(g, z, fusion.projections[i]), g.slice(weights, 1, i, i + 1));
    y = y ? g.add(y, term) : term;
  });
  return y as string;
}
