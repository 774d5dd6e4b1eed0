/**
 * Holdout metrics for comparing a candidate model with its parent on the
 * fixed holdout (the store's `validate` split), label by name:
 *
 * - old labels (the parent's): GAP@20 over the old tags only (new tags are
 *   left out of both scores and targets) and category accuracy over videos
 *   whose category is an old one (argmax over all of the model's categories:
 *   predicting a new category for such a video is a miss);
 * - new labels (the candidate's, not the parent's): AP of each on its own,
 *   with its number of holdout positives. A model without a label scores
 *   AP 0 for it (by construction: it cannot rank it).
 *
 * Both models are fed the same videos; targets come from the store.
 */
import type { Label } from "../data/store.js";
import { GlobalAveragePrecision } from "../metrics/gap.js";
import { MeanAveragePrecision } from "../metrics/map.js";

export interface HoldoutLabels {
  oldTags: readonly string[];
  oldCategories: readonly string[];
  newTags: readonly string[];
  newCategories: readonly string[];
  /** The store's label spaces (targets are store indices). */
  storeTags: readonly Label[];
  storeCategories: readonly Label[];
}

export interface NewLabelMetric {
  /** null when the holdout has no positive. */
  ap: number | null;
  positives: number;
}

export interface HoldoutMetrics {
  videos: number;
  old: {
    tags: number;
    gap20: number | null;
    categories: number;
    /** null when the model has no category head or no holdout video has an old category. */
    category_accuracy: number | null;
    category_videos: number;
  };
  /** GAP@20 over old and new tags together. */
  all_gap20: number | null;
  new_tags: Record<string, NewLabelMetric>;
  new_categories: Record<string, NewLabelMetric>;
}

export interface HoldoutTargets {
  /** Store category index per video, -1 none. */
  category: ArrayLike<number>;
  /** Store tag indices per video. */
  tags: readonly (readonly number[])[];
}

export interface HoldoutPredictions {
  /** [B, model tags] sigmoid probabilities. */
  tags?: Float32Array;
  /** [B, model categories] softmax probabilities. */
  category?: Float32Array;
}

function columns(wanted: readonly string[], have: readonly string[]): Int32Array {
  const at = new Map(have.map((n, i) => [n, i]));
  return Int32Array.from(wanted, (n) => at.get(n) ?? -1);
}

function positions(store: readonly Label[], names: readonly string[]): Map<number, number> {
  const at = new Map(names.map((n, i) => [n, i]));
  const out = new Map<number, number>();
  for (const l of store) {
    const p = at.get(l.name);
    if (p !== undefined) out.set(l.index, p);
  }
  return out;
}

export class HoldoutEvaluator {
  private readonly oldTagCol: Int32Array;
  private readonly newTagCol: Int32Array;
  private readonly tagOldPos: Map<number, number>;
  private readonly tagNewPos: Map<number, number>;
  private readonly catOld: Map<number, number>;
  private readonly catNewPos: Map<number, number>;
  private readonly newCatCol: Int32Array;
  private readonly gapOld?: GlobalAveragePrecision;
  private readonly gapAll?: GlobalAveragePrecision;
  private readonly apNew?: MeanAveragePrecision;
  private readonly apNewCat?: MeanAveragePrecision;
  private readonly newTagPositives: Float64Array;
  private readonly newCatPositives: Float64Array;
  private videos = 0;
  private catLabelled = 0;
  private catCorrect = 0;

  constructor(
    readonly labels: HoldoutLabels,
    /** The evaluated model's label spaces (column names). */
    readonly model: { tags: readonly string[]; categories: readonly string[] },
  ) {
    this.oldTagCol = columns(labels.oldTags, model.tags);
    this.newTagCol = columns(labels.newTags, model.tags);
    this.newCatCol = columns(labels.newCategories, model.categories);
    this.tagOldPos = positions(labels.storeTags, labels.oldTags);
    this.tagNewPos = positions(labels.storeTags, labels.newTags);
    this.catOld = positions(labels.storeCategories, labels.oldCategories);
    this.catNewPos = positions(labels.storeCategories, labels.newCategories);
    if (labels.oldTags.length > 0) this.gapOld = new GlobalAveragePrecision(labels.oldTags.length, 20);
    if (labels.oldTags.length + labels.newTags.length > 0) this.gapAll = new GlobalAveragePrecision(labels.oldTags.length + labels.newTags.length, 20);
    if (labels.newTags.length > 0) this.apNew = new MeanAveragePrecision(labels.newTags.length);
    if (labels.newCategories.length > 0) this.apNewCat = new MeanAveragePrecision(labels.newCategories.length);
    this.newTagPositives = new Float64Array(labels.newTags.length);
    this.newCatPositives = new Float64Array(labels.newCategories.length);
  }

  update(targets: HoldoutTargets, p: HoldoutPredictions): void {
    const B = targets.tags.length;
    if (targets.category.length !== B) throw new Error(`holdout batch: ${targets.category.length} category targets for ${B} videos`);
    this.videos += B;
    const nOld = this.labels.oldTags.length;
    const nNew = this.labels.newTags.length;
    const T = this.model.tags.length;
    if (p.tags && p.tags.length !== B * T) throw new Error(`holdout batch: ${p.tags.length} tag scores, expected ${B} × ${T}`);
    if (this.gapAll) {
      const n = nOld + nNew;
      const pred = new Float32Array(B * n);
      const targ = new Uint8Array(B * n);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < nOld; k++) if (p.tags && this.oldTagCol[k] >= 0) pred[b * n + k] = p.tags[b * T + this.oldTagCol[k]];
        for (let k = 0; k < nNew; k++) if (p.tags && this.newTagCol[k] >= 0) pred[b * n + nOld + k] = p.tags[b * T + this.newTagCol[k]];
        for (const t of targets.tags[b]) {
          const o = this.tagOldPos.get(t);
          if (o !== undefined) targ[b * n + o] = 1;
          const w = this.tagNewPos.get(t);
          if (w !== undefined) {
            targ[b * n + nOld + w] = 1;
            this.newTagPositives[w]++;
          }
        }
      }
      this.gapAll.update(pred, targ);
      if (this.gapOld) {
        const po = new Float32Array(B * nOld);
        const to = new Uint8Array(B * nOld);
        for (let b = 0; b < B; b++) {
          po.set(pred.subarray(b * n, b * n + nOld), b * nOld);
          to.set(targ.subarray(b * n, b * n + nOld), b * nOld);
        }
        this.gapOld.update(po, to);
      }
      if (this.apNew) {
        const pn = new Float32Array(B * nNew);
        const tn = new Uint8Array(B * nNew);
        for (let b = 0; b < B; b++) {
          pn.set(pred.subarray(b * n + nOld, (b + 1) * n), b * nNew);
          tn.set(targ.subarray(b * n + nOld, (b + 1) * n), b * nNew);
        }
        this.apNew.update(pn, tn);
      }
    }
    const C = this.model.categories.length;
    if (p.category && p.category.length !== B * C) throw new Error(`holdout batch: ${p.category.length} category scores, expected ${B} × ${C}`);
    for (let b = 0; b < B; b++) {
      const c = targets.category[b];
      if (c < 0) continue;
      const w = this.catNewPos.get(c);
      if (w !== undefined) this.newCatPositives[w]++;
      if (!this.catOld.has(c) || !p.category) continue;
      this.catLabelled++;
      let best = 0;
      for (let j = 1; j < C; j++) if (p.category[b * C + j] > p.category[b * C + best]) best = j;
      if (this.model.categories[best] === this.labels.oldCategories[this.catOld.get(c)!]) this.catCorrect++;
    }
    if (this.apNewCat) {
      const nc = this.labels.newCategories.length;
      const pn = new Float32Array(B * nc);
      const tn = new Uint8Array(B * nc);
      for (let b = 0; b < B; b++) {
        for (let k = 0; k < nc; k++) if (p.category && this.newCatCol[k] >= 0) pn[b * nc + k] = p.category[b * C + this.newCatCol[k]];
        const w = targets.category[b] >= 0 ? this.catNewPos.get(targets.category[b]) : undefined;
        if (w !== undefined) tn[b * nc + w] = 1;
      }
      this.apNewCat.update(pn, tn);
    }
  }

  compute(): HoldoutMetrics {
    if (this.videos === 0) throw new Error("the holdout (validate split) has no videos");
    const num = (x: number) => (Number.isFinite(x) ? x : null);
    const perLabel = (names: readonly string[], cols: Int32Array, metric: MeanAveragePrecision | undefined, positives: Float64Array) => {
      const aps = metric?.computePerClass();
      const out: Record<string, NewLabelMetric> = {};
      names.forEach((name, k) => {
        // A model without the label cannot rank it: AP 0 by construction.
        const ap = positives[k] === 0 ? null : cols[k] < 0 ? 0 : num(aps![k]);
        out[name] = { ap, positives: positives[k] };
      });
      return out;
    };
    return {
      videos: this.videos,
      old: {
        tags: this.labels.oldTags.length,
        gap20: this.gapOld ? num(this.gapOld.compute()) : null,
        categories: this.labels.oldCategories.length,
        category_accuracy: this.catLabelled > 0 ? this.catCorrect / this.catLabelled : null,
        category_videos: this.catLabelled,
      },
      all_gap20: this.gapAll ? num(this.gapAll.compute()) : null,
      new_tags: perLabel(this.labels.newTags, this.newTagCol, this.apNew, this.newTagPositives),
      new_categories: perLabel(this.labels.newCategories, this.newCatCol, this.apNewCat, this.newCatPositives),
    };
  }
}
