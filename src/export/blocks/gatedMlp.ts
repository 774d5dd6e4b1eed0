/**
 * Gated MLP (model/encoders/gatedMlp.ts):
 *   p = Σ_t Where(mask > 0, x, 0) / max(Σ_t mask, 1)
 *   y = CG(relu(p·W1')·W2')               both BNs folded into their dense layers
 */
import { GatedMlpEncoder } from "../../model/encoders/gatedMlp.js";
import type { SequenceEncoder } from "../../model/core.js";
import type { OnnxGraph } from "../graph.js";
import { emitContextGate, emitDenseBn } from "./layers.js";
import { wrongBlock } from "./types.js";

export function exportGatedMlp(g: OnnxGraph, encoder: SequenceEncoder, x: string, mask: string): string {
  if (!(encoder instanceof GatedMlpEncoder)) throw wrongBlock("gated_mlp", "GatedMlpEncoder", encoder);
  const enc = encoder;
  const x0 = g.where(g.op("Greater", [g.unsqueeze(mask, [2]), g.f32(0)]), x, g.f32(0));
  const count = g.max(g.reduceSum(mask, [1], true), g.f32(1)); // [B, 1]
  const pooled = g.div(g.reduceSum(x0, [1], false), count);
  const h = g.relu(emitDenseBn(g, pooled, enc.fc1, enc.bn1));
  return emitContextGate(g, emitDenseBn(g, h, enc.fc2, enc.bn2), enc.gate);
}
