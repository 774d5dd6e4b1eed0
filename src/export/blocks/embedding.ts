/**
 * Token embedding lookup (model/encoders/embedding.ts): Gather rows of the
 * table, then zero the pad positions (id 0) whatever row 0 holds. Ids must be
 * in [0, vocabSize): ORT rejects ids ≥ vocabSize; a negative id would wrap
 * (Gather semantics), so callers must not send them.
 */
import { PAD_ID, type TokenEmbedding } from "../../model/encoders/embedding.js";
import { attr, type OnnxGraph } from "../graph.js";
import { paramName, valuesOf } from "./layers.js";

/** ids [B, L] int64 → [B, L, E]. */
export function exportEmbedding(g: OnnxGraph, embedding: TokenEmbedding, ids: string): string {
  const table = g.weight(paramName(embedding.table), valuesOf(embedding.table), [embedding.vocabSize, embedding.dim]);
  const rows = g.op("Gather", [table, ids], { axis: attr.int(0) });
  const notPad = g.cast(g.op("Not", [g.op("Equal", [ids, g.i64(PAD_ID)])]), "float32");
  return g.mul(rows, g.unsqueeze(notPad, [2]));
}
