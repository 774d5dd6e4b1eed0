/**
 * Warm start of a model over grown label spaces from a trained one: every
 * parameter below the heads is copied as is, and each head row (a label's
 * kernel column and bias) is copied from the old model's row of the label
 * with the same name. Labels the old model did not know start as a fresh
 * head's would: tags with a fresh kernel column and the prior bias; new
 * categories with a zero column and a bias below every old one, so the old
 * categories' probabilities barely move until the new ones are trained.
 * Before any fine-tuning, the new model's tag probabilities and category
 * logits for the old labels are the old model's exactly.
 */
import * as tf from "@tensorflow/tfjs";
import type { LabelSpaces } from "../model/config.js";
import { TagHead } from "../model/heads.js";
import type { VideoModel } from "../model/model.js";
import type { Checkpoint } from "./checkpoint.js";
import { isHeadParam } from "./fusedFeatures.js";

/** How far (in logits) below every old category's bias a new category starts: e^-5 ≈ 0.7% of the weakest one's odds. */
const NEW_CATEGORY_MARGIN = 5;

/** Placeholder names storeLabelSpaces gives unused indices. */
export function isPlaceholderLabel(name: string): boolean {
  return /^<unused:\d+>$/.test(name);
}

export interface LabelGrowth {
  /** New index → old index (-1: a label the old model did not know). */
  tags: Int32Array;
  categories: Int32Array;
  /** Names of labels the old model did not know (placeholders left out). */
  newTags: string[];
  newCategories: string[];
}

/**
 * Matches new label spaces to old ones by name. Every real old label must be
 * in the new spaces (label spaces only grow); placeholders may disappear.
 */
export function labelGrowth(oldLabels: LabelSpaces, newLabels: LabelSpaces): LabelGrowth {
  const match = (what: string, oldNames: readonly string[], newNames: readonly string[]) => {
    const oldIndex = new Map(oldNames.map((n, i) => [n, i]));
    const newSet = new Set(newNames);
    for (const n of oldNames) {
      if (!isPlaceholderLabel(n) && !newSet.has(n)) throw new Error(`${what} label "${n}" of the old model is not in the new label space (label spaces only grow; was it trained on another database?)`);
    }
    const map = new Int32Array(newNames.length).fill(-1);
    const added: string[] = [];
    newNames.forEach((n, i) => {
      const j = oldIndex.get(n);
      if (j !== undefined) map[i] = j;
      else if (!isPlaceholderLabel(n)) added.push(n);
    });
    return { map, added };
  };
  const t = match("tag", oldLabels.tags, newLabels.tags);
  const c = match("category", oldLabels.categories, newLabels.categories);
  return { tags: t.map, categories: c.map, newTags: t.added, newCategories: c.added };
}

/** Copies columns `map[i]` (≥ 0) of `old` [D, O] into `target` [D, N]; other columns keep `fill`'s value. */
function copyColumns(old: Float32Array, oldCols: number, fill: Float32Array, newCols: number, rows: number, map: Int32Array): Float32Array {
  const out = fill.slice();
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < newCols; i++) if (map[i] >= 0) out[r * newCols + i] = old[r * oldCols + map[i]];
  }
  return out;
}

/**
 * Loads `checkpoint` (the old model, labels `checkpoint.header.labels`) into
 * `model` (built with grown label spaces and the same backbone config).
 * Returns the label growth it applied.
 */
export function warmStart(model: VideoModel, checkpoint: Checkpoint, source: string): LabelGrowth {
  const oldLabels = checkpoint.header.labels;
  const growth = labelGrowth(oldLabels, model.labels);
  const byName = new Map(checkpoint.tensors.filter((t) => t.kind === "param").map((t) => [t.name, t]));
  for (const [name, info] of model.params.entries()) {
    if (isHeadParam(name)) continue;
    const t = byName.get(name);
    if (!t) throw new Error(`${source}: no values for parameter ${name} (is the backbone config the same?)`);
    if (t.shape.join("x") !== info.variable.shape.join("x")) throw new Error(`${source}: parameter ${name} has shape ${t.shape.join("x")}, the new model expects ${info.variable.shape.join("x")}`);
    tf.tidy(() => info.variable.assign(tf.tensor(t.values, t.shape)));
  }
  const head = (dense: { kernel: tf.Variable; bias?: tf.Variable } | undefined, scope: string, map: Int32Array, isCategory: boolean) => {
    if (!dense) return;
    const kernel = byName.get(`model/${scope}/dense/kernel`);
    const bias = byName.get(`model/${scope}/dense/bias`);
    if (!kernel) throw new Error(`${source}: the old model has no ${scope} (heads.mode differs?)`);
    const [rows, oldCols] = kernel.shape;
    const [, newCols] = dense.kernel.shape;
    if (rows !== dense.kernel.shape[0]) throw new Error(`${source}: ${scope} reads ${rows}-d features, the new model ${dense.kernel.shape[0]}-d`);
    const fresh = dense.kernel.dataSync() as Float32Array;
    if (isCategory) for (let r = 0; r < rows; r++) for (let i = 0; i < newCols; i++) if (map[i] < 0) fresh[r * newCols + i] = 0;
    const k = copyColumns(kernel.values, oldCols, fresh, newCols, rows, map);
    tf.tidy(() => dense.kernel.assign(tf.tensor(k, [rows, newCols])));
    if (dense.bias && bias) {
      const b = (dense.bias.dataSync() as Float32Array).slice();
      let low = Infinity;
      for (const v of bias.values) low = Math.min(low, v);
      for (let i = 0; i < newCols; i++) {
        if (map[i] >= 0) b[i] = bias.values[map[i]];
        else if (isCategory) b[i] = (Number.isFinite(low) ? low : 0) - Math.log(newCols) - NEW_CATEGORY_MARGIN;
      }
      tf.tidy(() => dense.bias!.assign(tf.tensor1d(b)));
    }
  };
  // Any other head parameter (a head type with more than one dense layer) must not depend on the label count.
  const handled = new Set(["head_tags", "head_category"].flatMap((s) => [`model/${s}/dense/kernel`, `model/${s}/dense/bias`]));
  for (const [name, info] of model.params.entries()) {
    if (!isHeadParam(name) || handled.has(name)) continue;
    const t = byName.get(name);
    if (!t || t.shape.join("x") !== info.variable.shape.join("x")) throw new Error(`${source}: head parameter ${name} cannot be warm-started over grown label spaces (missing or shaped by the label count); retrain with --mode scratch`);
    tf.tidy(() => info.variable.assign(tf.tensor(t.values, t.shape)));
  }
  // A logistic tag head grows by rows; other head types (mixture of experts) were copied above, which needs unchanged label spaces.
  head(model.tagHead instanceof TagHead ? model.tagHead.dense : undefined, "head_tags", growth.tags, false);
  head(model.categoryHead?.dense, "head_category", growth.categories, true);
  return growth;
}
