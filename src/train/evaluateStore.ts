/**
 * A trained model evaluated on videos of a store (`vidrecall eval`, `bench
 * quality`): labels matched by name, and — when the model's config turns
 * neighbour-label voting on — tag probabilities blended with the votes of the
 * videos the model was trained on (the train split, plus the validate split
 * after a no-holdout fit; never the video itself).
 */
import type { VideoStore } from "../data/store.js";
import type { Split } from "../data/split.js";
import type { TokenVocabulary } from "../data/tokenize.js";
import type { VideoModel } from "../model/model.js";
import { evaluationStream } from "./batches.js";
import { evaluateModel, evaluateWithNeighbours, type EvalMetrics } from "./evaluate.js";
import { NeighbourReference } from "./neighbourReference.js";

export interface StoreEvaluation {
  /** What the model answers: with neighbour votes when they are on. */
  metrics: EvalMetrics;
  /** With votes on: the tag head alone, for comparison. */
  modelOnly?: EvalMetrics;
  neighbours?: { k: number; temperature: number; model_weight: number; reference_splits: Split[]; reference_videos: number };
  /** Why votes configured on were not used (e.g. no labelled training videos). */
  note?: string;
}

export function evaluateOnStore(
  model: VideoModel,
  store: VideoStore,
  target: { split: Split } | { ids: readonly string[] },
  options: { vocabulary?: TokenVocabulary; neighbours?: boolean } = {},
): StoreEvaluation {
  const stream = evaluationStream(store, model, target, options.vocabulary);
  if (stream.videoCount === 0) throw new Error(`no videos to evaluate (${"split" in target ? `split "${target.split}"` : "empty id list"})`);
  const config = model.config.neighbours;
  if (!(options.neighbours ?? true) || !config.enabled || !model.tagHead) return { metrics: evaluateModel(model, stream.epoch(0)) };
  const referenceSplits: Split[] = model.config.training.holdout ? ["train"] : ["train", "validate"];
  const reference = NeighbourReference.build(model, store, referenceSplits.flatMap((s) => store.videoIds(s)), options.vocabulary);
  try {
    if (reference.size === 0) {
      return { metrics: evaluateModel(model, stream.epoch(0)), note: `neighbour votes are on, but the ${referenceSplits.join(" and ")} split${referenceSplits.length > 1 ? "s have" : " has"} no video with a tag the model knows: the model's own probabilities were evaluated` };
    }
    const { blended, modelOnly } = evaluateWithNeighbours(model, stream.epoch(0), reference, config);
    return {
      metrics: blended,
      modelOnly,
      neighbours: { k: config.k, temperature: config.temperature, model_weight: config.modelWeight, reference_splits: referenceSplits, reference_videos: reference.size },
    };
  } finally {
    reference.dispose();
  }
}
