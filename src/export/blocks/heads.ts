/**
 * Heads (model/heads.ts) as probabilities: Softmax over categories, an
 * independent Sigmoid per tag. The embedding output is the L2-normalised
 * fused vector, as model/fusion.ts l2Normalize (ε 1e-12 on the squared norm).
 */
import { MoeTagHead, type AnyTagHead, type CategoryHead } from "../../model/heads.js";
import { attr, type OnnxGraph } from "../graph.js";
import { emitDense } from "./layers.js";

export function exportCategoryHead(g: OnnxGraph, head: CategoryHead, fused: string): string {
  return g.op("Softmax", [emitDense(g, fused, head.dense)], { axis: attr.int(1) });
}

export function exportTagHead(g: OnnxGraph, head: AnyTagHead, fused: string): string {
  if (head instanceof MoeTagHead) return exportMoeTagHead(g, head, fused);
  return g.sigmoid(emitDense(g, fused, head.dense));
}

/**
 * The mixture-of-experts tag head as its probability, p_t = Σ_{j<k}
 * softmax(gate_t)_j · σ(expert_tj) (the "none" choice adds 0), the same
 * value as σ(MoeTagHead.logits) in tfjs.
 */
export function exportMoeTagHead(g: OnnxGraph, head: MoeTagHead, fused: string): string {
  const k = head.numExperts;
  const T = head.numTags;
  // Reshape's 0 copies the (dynamic) batch dimension.
  const gates = g.op("Softmax", [g.reshape(emitDense(g, fused, head.gate), [0, T, k + 1])], { axis: attr.int(2) });
  const experts = g.sigmoid(g.reshape(emitDense(g, fused, head.experts), [0, T, k]));
  return g.reduceSum(g.mul(g.slice(gates, 2, 0, k), experts), [2], false);
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
