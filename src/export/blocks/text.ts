/**
 * The title branch (model/encoders/text.ts): the configured branches
 * (TextCNN, Bi-LSTM or both, concatenated in that order) → Dense·BN folded →
 * zeroed for titles with no tokens (min(Σ mask, 1)).
 */
import type { SequenceEncoder } from "../../model/core.js";
import { TitleEncoder, type TextEncoderConfig } from "../../model/encoders/text.js";
import type { OnnxGraph } from "../graph.js";
import { TEXT_BRANCH_EXPORTERS, exporterFor } from "../registry.js";
import { emitDenseBn, paramName } from "./layers.js";
import type { ExportEnv } from "./types.js";
import { wrongBlock } from "./types.js";

/** x [B, L, E] (looked-up embeddings), mask [B, L] → [B, hidden]. */
export function exportTitleEncoder(g: OnnxGraph, encoder: SequenceEncoder, config: TextEncoderConfig, x: string, mask: string, env: ExportEnv): string {
  if (!(encoder instanceof TitleEncoder)) throw wrongBlock("title", "TitleEncoder", encoder);
  // Branch order is the title encoder's: textcnn before bilstm, as "textcnn+bilstm" spells it.
  const types = String(config.type).split("+");
  const exporters = types.map((t) => exporterFor(TEXT_BRANCH_EXPORTERS, "title encoder", t, "title.encoder.type"));
  if (exporters.length !== encoder.branches.length) {
    throw new Error(`ONNX export: title encoder "${config.type}" has ${encoder.branches.length} branches, expected ${exporters.length}`);
  }
  const scope = paramName(encoder.dense.kernel).replace(/\/dense\/kernel$/, "");
  const parts = encoder.branches.map((branch, i) => exporters[i](g.scope(types[i]), branch, x, mask, { ...env, scope: `${scope}/${types[i]}` }));
  const joined = g.concat(parts, 1);
  const h = emitDenseBn(g, joined, encoder.dense, encoder.bn);
  const hasTokens = g.min(g.reduceSum(mask, [1], true), g.f32(1)); // [B, 1]
  return g.mul(h, hasTokens);
}
