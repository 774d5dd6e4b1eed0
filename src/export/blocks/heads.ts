/**
 * Heads (model/heads.ts) as probabilities: Softmax over categories, an
 * independent Sigmoid per tag. The embedding output is the L2-normalised
 * fused vector, as model/fusion.ts l2Normalize (ε 1e-12 on the squared norm).
 */
import type { CategoryHead, TagHead } from "../../model/heads.js";
import { attr, type OnnxGraph } from "../graph.js";
import { emitDense } from "./layers.js";

export function exportCategoryHead(g: OnnxGraph, head: CategoryHead, fused: string): string {
  return g.op("Softmax", [emitDense(g, fused, head.dense)], { axis: attr.int(1) });
}

export function exportTagHead(g: OnnxGraph, head: TagHead, fused: string): string {
  return g.sigmoid(emitDense(g, fused, head.dense));
}

export function exportL2Normalize(g: OnnxGraph, x: string, epsilon = 1e-12): string {
  const sq = g.reduceSum(g.mul(x, x), [1], true);
  return g.div(x, g.op("Sqrt", [g.max(sq, g.f32(epsilon))]));
}

/** Each frame of [B, T, D] over its L2 norm (ε 1e-12 on the squared norm), as model.ts l2NormalizeFrames. */
export function exportL2NormalizeFrames(g: OnnxGraph, x: string, epsilon = 1e-12): string {
  const sq = g.reduceSum(g.mul(x, x), [2], true);
  return g.div(x, g.op("Sqrt", [g.max(sq, g.f32(epsilon))]));
}
