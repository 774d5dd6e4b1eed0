import { seededRandom } from "../src/util/random.js";
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  averagePrecision,
  CategoryAccuracy,
  CategoryMacroF1,
  createTagMetrics,
  evaluate,
  evaluateAsync,
  GlobalAveragePrecision,
  HitAtOne,
  MeanAveragePrecision,
  MetricCollection,
  MicroF1,
  MicroPrecision,
  MicroRecall,
  PrecisionAtEqualRecallRate,
  VideoEvaluator,
  type VideoBatch,
} from "../src/metrics/index.js";

const close = (actual: number, expected: number, what: string): void => {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: expected ${expected}, got ${actual}`);
};

/*
 * Fixture A: 3 videos x 4 tags (scores, then multi-hot labels).
 *   V0 [0.90, 0.80, 0.30, 0.10]  labels [1, 0, 1, 0]
 *   V1 [0.20, 0.60, 0.70, 0.40]  labels [0, 1, 0, 0]
 *   V2 [0.50, 0.05, 0.85, 0.95]  labels [0, 0, 1, 1]
 * Positives: 2 + 1 + 2 = 5.
 *
 * GAP@2: top-2 per video: V0 {.90+, .80-}, V1 {.70-, .60+}, V2 {.95+, .85+}.
 *   pooled, sorted: .95+ .90+ .85+ .80- .70- .60+
 *   precision at positives: 1/1, 2/2, 3/3, 4/6 -> sum 11/3; / 5 positives = 11/15.
 * GAP@1: pooled .95+ .90+ .70- -> (1 + 1) / 5 = 2/5 (V0's and V2's second positives still count in the 5).
 * GAP@4 (whole rows): .95+ .90+ .85+ .80- .70- .60+ .50- .40- .30+ .20- .10- .05-
 *   positives at ranks 1,2,3,6,9: 1 + 1 + 1 + 4/6 + 5/9 = 38/9; / 5 = 38/45. Same for any k >= 4.
 * mAP, each class over all 3 videos:
 *   c0: .90+ .50- .20-            -> AP 1
 *   c1: .80- .60+ .05-            -> AP 1/2
 *   c2: .85+ .70- .30+            -> (1 + 2/3) / 2 = 5/6
 *   c3: .95+ .40- .10-            -> AP 1
 *   mean = (1 + 1/2 + 5/6 + 1) / 4 = 5/6.
 * mAP with topK=2 (upstream eval.py variant): class lists hold only top-2 entries:
 *   c0 [.90+] -> 1; c1 [.80- .60+] -> 1/2; c2 [.85+ .70-] with 2 positives (V0's .30 dropped) -> 1/2;
 *   c3 [.95+] -> 1; mean = 3/4.
 * Hit@1: V0 top .90 (c0, +), V1 top .70 (c2, -), V2 top .95 (c3, +) -> 2/3.
 * PERR: V0 r=2 {.90+, .80-} -> 1/2; V1 r=1 {.70-} -> 0; V2 r=2 {.95+, .85+} -> 1; mean 1/2.
 * Micro @0.5 (score > 0.5): predicted .90+ .80- | .60+ .70- | .85+ .95+ (V2's 0.50 is not > 0.5)
 *   tp 4, fp 2, fn 1 (V0's c2 at .30) -> precision 4/6, recall 4/5, F1 8/(8+2+1) = 8/11.
 */
const A_SCORES = new Float32Array([0.9, 0.8, 0.3, 0.1, 0.2, 0.6, 0.7, 0.4, 0.5, 0.05, 0.85, 0.95]);
const A_LABELS = new Uint8Array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1]);

/*
 * Fixture B: 5 videos x 4 categories.
 *   v0 [.7 .2 .1 0]  target 0 -> predicted 0 (correct)
 *   v1 [.1 .3 .6 0]  target 1 -> predicted 2
 *   v2 [.2 .5 .3 0]  target 1 -> predicted 1 (correct)
 *   v3 [.4 .4 .2 0]  target 0 -> 0 and 1 tie at the top; ties go against the model -> predicted 1
 *   v4 [0  0  0 .9]  target -1 -> skipped entirely (its class-3 prediction counts nowhere)
 * Accuracy 2/4 = 1/2.
 * Per class: c0 tp1 fn1 fp0 -> 2/3; c1 tp1 fn1 fp1 -> 2/4 = 1/2; c2 tp0 fp1 -> 0; c3 never occurs -> left out.
 * Macro-F1 = (2/3 + 1/2 + 0) / 3 = 7/18 (it would be 7/24 if class 3 counted as 0).
 */
const B_SCORES = new Float32Array([
  0.7, 0.2, 0.1, 0, 0.1, 0.3, 0.6, 0, 0.2, 0.5, 0.3, 0, 0.4, 0.4, 0.2, 0, 0, 0, 0, 0.9,
]);
const B_TARGETS = new Int32Array([0, 1, 1, 0, -1]);


interface Fixture {
  videos: number;
  numTags: number;
  numCategories: number;
  tagScores: Float32Array;
  tagTargets: Uint8Array;
  categoryScores: Float32Array;
  categoryTargets: Int32Array;
}

/** Random fixture; `levels` > 0 quantises scores to that many steps so ties are common. */
function randomFixture(seed: number, videos: number, numTags: number, numCategories: number, levels: number): Fixture {
  const r = seededRandom("metrics", seed);
  const score = (): number => (levels > 0 ? Math.floor(r() * levels) / levels : r());
  const tagScores = new Float32Array(videos * numTags).map(score);
  // About 1 in 4 videos has no positive tag at all.
  const tagTargets = new Uint8Array(videos * numTags);
  for (let v = 0; v < videos; v++) {
    if (r() < 0.25) continue;
    for (let c = 0; c < numTags; c++) tagTargets[v * numTags + c] = r() < 0.3 ? 1 : 0;
  }
  const categoryScores = new Float32Array(videos * numCategories).map(score);
  const categoryTargets = new Int32Array(videos).map(() => (r() < 0.15 ? -1 : Math.floor(r() * numCategories)));
  return { videos, numTags, numCategories, tagScores, tagTargets, categoryScores, categoryTargets };
}

function sliceBatch(f: Fixture, from: number, to: number): VideoBatch {
  return {
    tagScores: f.tagScores.slice(from * f.numTags, to * f.numTags),
    tagTargets: f.tagTargets.slice(from * f.numTags, to * f.numTags),
    categoryScores: f.categoryScores.slice(from * f.numCategories, to * f.numCategories),
    categoryTargets: f.categoryTargets.slice(from, to),
  };
}

function permuteVideos(f: Fixture, seed: number): Fixture {
  const r = seededRandom("metrics", seed);
  const order = Array.from({ length: f.videos }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const out: Fixture = {
    ...f,
    tagScores: new Float32Array(f.tagScores.length),
    tagTargets: new Uint8Array(f.tagTargets.length),
    categoryScores: new Float32Array(f.categoryScores.length),
    categoryTargets: new Int32Array(f.videos),
  };
  order.forEach((src, dst) => {
    out.tagScores.set(f.tagScores.subarray(src * f.numTags, (src + 1) * f.numTags), dst * f.numTags);
    out.tagTargets.set(f.tagTargets.subarray(src * f.numTags, (src + 1) * f.numTags), dst * f.numTags);
    out.categoryScores.set(
      f.categoryScores.subarray(src * f.numCategories, (src + 1) * f.numCategories),
      dst * f.numCategories,
    );
    out.categoryTargets[dst] = f.categoryTargets[src];
  });
  return out;
}

// ---- Brute-force references: full sorts, no heaps, no split positive/negative lists. ----

interface Pair {
  score: number;
  positive: boolean;
}

/** Score descending; at equal scores negatives first (the documented tie policy). */
const byRank = (a: Pair, b: Pair): number => b.score - a.score || Number(a.positive) - Number(b.positive);

function rankedRow(scores: Float32Array, labels: ArrayLike<number>, v: number, n: number): Pair[] {
  const row: Pair[] = [];
  for (let c = 0; c < n; c++) row.push({ score: scores[v * n + c], positive: labels[v * n + c] === 1 });
  return row.sort(byRank);
}

function bruteAp(list: Pair[], totalPositives: number): number {
  if (totalPositives === 0) return NaN;
  const sorted = [...list].sort(byRank);
  let hits = 0;
  let sum = 0;
  sorted.forEach((p, i) => {
    if (p.positive) {
      hits++;
      sum += hits / (i + 1);
    }
  });
  return sum / totalPositives;
}

function bruteGap(scores: Float32Array, labels: Uint8Array, n: number, k: number): number {
  const pooled: Pair[] = [];
  let positives = 0;
  for (let v = 0; v < scores.length / n; v++) {
    const row = rankedRow(scores, labels, v, n);
    positives += row.filter((p) => p.positive).length;
    pooled.push(...row.slice(0, k));
  }
  return bruteAp(pooled, positives);
}

function bruteMap(scores: Float32Array, labels: Uint8Array, n: number): number {
  const aps: number[] = [];
  for (let c = 0; c < n; c++) {
    const col: Pair[] = [];
    for (let v = 0; v < scores.length / n; v++) col.push({ score: scores[v * n + c], positive: labels[v * n + c] === 1 });
    const positives = col.filter((p) => p.positive).length;
    if (positives > 0) aps.push(bruteAp(col, positives));
  }
  return aps.reduce((a, b) => a + b, 0) / aps.length;
}

function bruteHitAndPerr(scores: Float32Array, labels: Uint8Array, n: number): { hit1: number; perr: number } {
  const videos = scores.length / n;
  let hits = 0;
  let perrSum = 0;
  let labelled = 0;
  for (let v = 0; v < videos; v++) {
    const row = rankedRow(scores, labels, v, n);
    if (row[0].positive) hits++;
    const r = row.filter((p) => p.positive).length;
    if (r === 0) continue;
    perrSum += row.slice(0, r).filter((p) => p.positive).length / r;
    labelled++;
  }
  return { hit1: hits / videos, perr: perrSum / labelled };
}

function tagMetricsOf(scores: Float32Array, labels: Uint8Array, n: number, k: number): Record<string, number> {
  const tags = createTagMetrics(n, { k });
  tags.update(scores, labels);
  return tags.compute();
}

describe("hand-computed fixture A (3 videos x 4 tags)", () => {
  it("GAP@2 = 11/15, GAP@1 = 2/5, GAP@4 = 38/45", () => {
    for (const [k, expected] of [
      [2, 11 / 15],
      [1, 2 / 5],
      [4, 38 / 45],
    ]) {
      const gap = new GlobalAveragePrecision(4, k);
      gap.update(A_SCORES, A_LABELS);
      close(gap.compute(), expected, `GAP@${k}`);
    }
  });

  it("k larger than numClasses keeps whole rows (GAP@20 = GAP@4 = 38/45)", () => {
    const gap = new GlobalAveragePrecision(4);
    assert.equal(gap.k, 20);
    gap.update(A_SCORES, A_LABELS);
    close(gap.compute(), 38 / 45, "GAP@20");
  });

  it("mAP = 5/6 with per-class AP [1, 1/2, 5/6, 1]", () => {
    const map = new MeanAveragePrecision(4);
    map.update(A_SCORES, A_LABELS);
    close(map.compute(), 5 / 6, "mAP");
    const perClass = map.computePerClass();
    [1, 0.5, 5 / 6, 1].forEach((ap, c) => close(perClass[c], ap, `AP of class ${c}`));
    assert.deepEqual([...map.positivesPerClass()], [1, 1, 2, 1]);
  });

  it("mAP restricted to each video's top-2 (upstream eval.py variant) = 3/4", () => {
    const map = new MeanAveragePrecision(4, { topK: 2 });
    map.update(A_SCORES, A_LABELS);
    close(map.compute(), 3 / 4, "mAP topK=2");
    close(map.computePerClass()[2], 1 / 2, "AP of class 2 with topK=2");
  });

  it("Hit@1 = 2/3 and PERR = 1/2", () => {
    const hit = new HitAtOne(4);
    const perr = new PrecisionAtEqualRecallRate(4);
    hit.update(A_SCORES, A_LABELS);
    perr.update(A_SCORES, A_LABELS);
    close(hit.compute(), 2 / 3, "Hit@1");
    close(perr.compute(), 1 / 2, "PERR");
  });

  it("micro precision 2/3, recall 4/5, F1 8/11 at 0.5 (a score of exactly 0.5 is not predicted)", () => {
    const p = new MicroPrecision(4);
    const r = new MicroRecall(4);
    const f = new MicroF1(4);
    for (const m of [p, r, f]) m.update(A_SCORES, A_LABELS);
    close(p.compute(), 2 / 3, "precision");
    close(r.compute(), 4 / 5, "recall");
    close(f.compute(), 8 / 11, "F1");
    // At 0.45 V2's 0.50 (a negative) is predicted too: tp 4, fp 3 -> precision 4/7.
    const p45 = new MicroPrecision(4, 0.45);
    p45.update(A_SCORES, A_LABELS);
    close(p45.compute(), 4 / 7, "precision@0.45");
  });

  it("a video with no positives adds its top-k negatives to GAP, a Hit@1 miss, and no PERR term", () => {
    // V3 [.99 0 0 0], no labels. GAP@2 pooled: .99- .95+ .90+ .85+ .80- .70- .60+ 0-
    //   positives at ranks 2,3,4,7 -> (1/2 + 2/3 + 3/4 + 4/7) / 5 = (209/84) / 5 = 209/420.
    const scores = new Float32Array([...A_SCORES, 0.99, 0, 0, 0]);
    const labels = new Uint8Array([...A_LABELS, 0, 0, 0, 0]);
    const m = tagMetricsOf(scores, labels, 4, 2);
    close(m.gap2, 209 / 420, "GAP@2");
    close(m.hit1, 2 / 4, "Hit@1 counts the label-less video as a miss");
    close(m.perr, 1 / 2, "PERR averages the 3 labelled videos only");
  });
});

describe("edge cases", () => {
  it("a label-less video scoring above every positive lowers that class's AP", () => {
    // Same extra video as above: c0's list becomes .99- .90+ .50- .20- -> AP 1/2;
    // the others gain a 0 negative at the bottom (no change). mAP = (1/2 + 1/2 + 5/6 + 1) / 4 = 17/24.
    const map = new MeanAveragePrecision(4);
    map.update(new Float32Array([...A_SCORES, 0.99, 0, 0, 0]), new Uint8Array([...A_LABELS, 0, 0, 0, 0]));
    close(map.compute(), 17 / 24, "mAP");
  });

  it("all-zero predictions earn nothing from ties", () => {
    // 2 videos x 3 tags, labels [1 0 0] and [0 1 1], every score 0.
    // GAP@2: V0 keeps its two negatives, V1 its negative then c1; pooled 3 negatives ahead of 1 positive
    //   -> (1/4) / 3 positives = 1/12.
    // mAP: each class has one positive tied with one negative -> AP 1/2 each -> 1/2.
    // Hit@1 0; PERR: V0 0/1, V1 1/2 -> 1/4; nothing exceeds 0.5 -> precision/recall/F1 0.
    const scores = new Float32Array(6);
    const labels = new Uint8Array([1, 0, 0, 0, 1, 1]);
    const m = tagMetricsOf(scores, labels, 3, 2);
    close(m.gap2, 1 / 12, "GAP@2");
    close(m.map, 1 / 2, "mAP");
    close(m.hit1, 0, "Hit@1");
    close(m.perr, 1 / 4, "PERR");
    assert.equal(m.tag_precision, 0);
    assert.equal(m.tag_recall, 0);
    assert.equal(m.tag_f1, 0);

    const acc = new CategoryAccuracy(3);
    acc.update(new Float32Array(6), new Int32Array([0, 2]));
    assert.equal(acc.compute(), 0, "a tie at the top is never a correct category");
  });

  it("mAP skips classes without positives and reports NaN for them", () => {
    // Fixture A plus a fifth tag that is never positive but scores highest everywhere.
    const scores = new Float32Array(15);
    const labels = new Uint8Array(15);
    for (let v = 0; v < 3; v++) {
      scores.set(A_SCORES.subarray(v * 4, v * 4 + 4), v * 5);
      labels.set(A_LABELS.subarray(v * 4, v * 4 + 4), v * 5);
      scores[v * 5 + 4] = 1;
    }
    const map = new MeanAveragePrecision(5);
    map.update(scores, labels);
    close(map.compute(), 5 / 6, "mAP over the 4 classes with positives");
    const perClass = map.computePerClass();
    assert.ok(Number.isNaN(perClass[4]), "class 4 has no positives");
    assert.equal(map.positivesPerClass()[4], 0);
  });

  it("metrics with nothing to average return NaN; compute() before any video throws", () => {
    const gap = new GlobalAveragePrecision(3, 2);
    assert.throws(() => gap.compute(), /GAP@2: compute\(\) called before any video/);
    gap.update(new Float32Array([0.5, 0.2, 0.1]), new Uint8Array(3));
    assert.ok(Number.isNaN(gap.compute()), "GAP with zero positives");
    const map = new MeanAveragePrecision(3);
    map.update(new Float32Array([0.5, 0.2, 0.1]), new Uint8Array(3));
    assert.ok(Number.isNaN(map.compute()), "mAP with no class having a positive");
    const acc = new CategoryAccuracy(3);
    acc.update(new Float32Array([0.5, 0.2, 0.1]), new Int32Array([-1]));
    assert.ok(Number.isNaN(acc.compute()), "accuracy with only unlabelled videos");
    // An empty batch is valid but is not a video.
    const hit = new HitAtOne(3);
    hit.update(new Float32Array(0), new Uint8Array(0));
    assert.throws(() => hit.compute(), /Hit@1: compute\(\) called before any video/);
  });

  it("reset() forgets everything", () => {
    const gap = new GlobalAveragePrecision(4, 2);
    gap.update(new Float32Array([0.99, 0, 0, 0]), new Uint8Array([0, 0, 0, 1]));
    gap.reset();
    assert.throws(() => gap.compute(), /before any video/);
    gap.update(A_SCORES, A_LABELS);
    close(gap.compute(), 11 / 15, "GAP@2 after reset");
  });

  it("averagePrecision refuses a positive count below the positives in the list", () => {
    assert.throws(
      () => averagePrecision(new Float32Array([0.9, 0.8]), new Float32Array(0), 1),
      /totalPositives=1 is smaller than the 2 positives/,
    );
  });
});

describe("category metrics (fixture B, 5 videos x 4 categories)", () => {
  it("accuracy 1/2 and macro-F1 7/18 over the classes that occur", () => {
    const acc = new CategoryAccuracy(4);
    const f1 = new CategoryMacroF1(4);
    acc.update(B_SCORES, B_TARGETS);
    f1.update(B_SCORES, B_TARGETS);
    close(acc.compute(), 1 / 2, "accuracy");
    close(f1.compute(), 7 / 18, "macro-F1");
    const perClass = f1.computePerClass();
    [2 / 3, 1 / 2, 0].forEach((v, c) => close(perClass[c], v, `F1 of class ${c}`));
    assert.ok(Number.isNaN(perClass[3]), "class 3 appears only in an unlabelled video's prediction");
  });
});

describe("random fixtures against brute force", () => {
  for (const [seed, levels] of [
    [1, 0],
    [2, 10],
    [3, 4],
  ]) {
    it(`seed ${seed}, ${levels === 0 ? "continuous scores" : `scores on ${levels} levels (many ties)`}`, () => {
      const f = randomFixture(seed, 60, 9, 5, levels);
      for (const k of [1, 3, 9, 20]) {
        const gap = new GlobalAveragePrecision(f.numTags, k);
        gap.update(f.tagScores, f.tagTargets);
        close(gap.compute(), bruteGap(f.tagScores, f.tagTargets, f.numTags, k), `GAP@${k}`);
      }
      const map = new MeanAveragePrecision(f.numTags);
      map.update(f.tagScores, f.tagTargets);
      close(map.compute(), bruteMap(f.tagScores, f.tagTargets, f.numTags), "mAP");
      const { hit1, perr } = bruteHitAndPerr(f.tagScores, f.tagTargets, f.numTags);
      const m = tagMetricsOf(f.tagScores, f.tagTargets, f.numTags, 20);
      close(m.hit1, hit1, "Hit@1");
      close(m.perr, perr, "PERR");
    });
  }

  it("GAP@k pools exactly k pairs per video when k is well below numClasses", () => {
    // Pooling one pair too many or too few changes the value: match brute force @5 and differ from @6.
    const f = randomFixture(4, 200, 50, 3, 0);
    const gap = new GlobalAveragePrecision(50, 5);
    gap.update(f.tagScores, f.tagTargets);
    close(gap.compute(), bruteGap(f.tagScores, f.tagTargets, 50, 5), "GAP@5");
    assert.notEqual(
      gap.compute(),
      bruteGap(f.tagScores, f.tagTargets, 50, 6),
      "GAP@5 must differ from GAP@6 on this fixture",
    );
  });
});

describe("batching and order invariance", () => {
  const f = randomFixture(7, 50, 8, 6, 5);
  const options = { numTags: f.numTags, numCategories: f.numCategories, k: 3 };

  it("1 batch, 3 uneven batches (one empty) and shuffled videos give identical results", () => {
    const whole = evaluate([sliceBatch(f, 0, f.videos)], options);
    const split = evaluate([sliceBatch(f, 0, 17), sliceBatch(f, 17, 17), sliceBatch(f, 17, 41), sliceBatch(f, 41, 50)], options);
    assert.deepEqual(split, whole);
    const shuffled = permuteVideos(f, 99);
    const perVideo = Array.from({ length: f.videos }, (_, v) => sliceBatch(shuffled, v, v + 1));
    assert.deepEqual(evaluate(perVideo, options), whole);

    assert.deepEqual(Object.keys(whole).sort(), [
      "category_accuracy",
      "category_macro_f1",
      "gap3",
      "hit1",
      "map",
      "perr",
      "tag_f1",
      "tag_precision",
      "tag_recall",
    ]);
    for (const [key, value] of Object.entries(whole)) {
      assert.ok(Number.isFinite(value) && value >= 0 && value <= 1, `${key} = ${value} should be in [0, 1]`);
    }
  });

  it("VideoEvaluator matches the individual metrics and exposes per-tag AP", async () => {
    const ev = new VideoEvaluator({ numTags: 4, numCategories: 4, k: 2 });
    // Fixture A has 3 videos; pair them with fixture B's first 3 category rows.
    const batch: VideoBatch = {
      tagScores: A_SCORES,
      tagTargets: A_LABELS,
      categoryScores: B_SCORES.slice(0, 12),
      categoryTargets: B_TARGETS.slice(0, 3),
    };
    ev.update(batch);
    const m = ev.compute();
    close(m.gap2, 11 / 15, "gap2");
    close(m.map, 5 / 6, "map");
    close(m.hit1, 2 / 3, "hit1");
    close(m.perr, 1 / 2, "perr");
    close(m.tag_precision, 2 / 3, "tag_precision");
    close(m.tag_recall, 4 / 5, "tag_recall");
    close(m.tag_f1, 8 / 11, "tag_f1");
    // v0 correct, v1 wrong (pred 2), v2 correct -> 2/3; F1: c0 1, c1 2/3, c2 0 -> 5/9.
    close(m.category_accuracy, 2 / 3, "category_accuracy");
    close(m.category_macro_f1, 5 / 9, "category_macro_f1");
    close(ev.tagAveragePrecision()[1], 1 / 2, "AP of tag 1");

    async function* stream(): AsyncGenerator<VideoBatch> {
      yield batch;
    }
    assert.deepEqual(await evaluateAsync(stream(), { numTags: 4, numCategories: 4, k: 2 }), m);
    ev.reset();
    assert.throws(() => ev.compute(), /before any video/);
  });
});

describe("input validation", () => {
  it("names a prediction row of the wrong width", () => {
    const gap = new GlobalAveragePrecision(4);
    assert.throws(
      () => gap.update(new Float32Array(10), new Uint8Array(10)),
      /GAP@20: predictions has 10 values, which is not a whole number of rows of numClasses=4 \(2 full rows and 2 left over\)/,
    );
  });

  it("rejects targets whose shape differs from the predictions", () => {
    assert.throws(
      () => new HitAtOne(4).update(new Float32Array(8), new Uint8Array(12)),
      /Hit@1: targets has 12 values but predictions are \[2 x 4\] = 8/,
    );
    assert.throws(
      () => new CategoryAccuracy(4).update(new Float32Array(8), new Int32Array(3)),
      /targets has 3 entries but predictions have 2 rows of numClasses=4/,
    );
  });

  it("rejects non-binary multi-hot targets, NaN scores and out-of-range categories", () => {
    assert.throws(
      () => new MicroF1(2).update(new Float32Array(4), new Float32Array([0, 1, 0.5, 0])),
      /targets\[row 1, class 0\] is 0.5; multi-hot targets must be exactly 0 or 1/,
    );
    assert.throws(
      () => new PrecisionAtEqualRecallRate(2).update(new Float32Array([0, 0, 0, NaN]), new Uint8Array(4)),
      /PERR: predictions\[row 1, class 1\] is NaN/,
    );
    assert.throws(
      () => new CategoryMacroF1(3).update(new Float32Array(6), new Int32Array([0, 3])),
      /targets\[1\] is 3; a category must be in \[0, 2\] or -1/,
    );
    assert.throws(
      () => new CategoryMacroF1(3).update(new Float32Array(3), new Int32Array([-2])),
      /targets\[0\] is -2/,
    );
  });

  it("rejects the wrong array types", () => {
    const map = new MeanAveragePrecision(2);
    assert.throws(
      () => map.update(new Float64Array(2) as unknown as Float32Array, new Uint8Array(2)),
      { name: "TypeError", message: /mAP: predictions must be a Float32Array, got Float64Array/ },
    );
    assert.throws(
      () => map.update(new Float32Array(2), [0, 1] as unknown as Uint8Array),
      { name: "TypeError", message: /multi-hot targets must be a Uint8Array or Float32Array, got Array/ },
    );
    assert.throws(
      () => new CategoryAccuracy(2).update(new Float32Array(2), new Uint8Array([1]) as unknown as Int32Array),
      { name: "TypeError", message: /category targets must be an Int32Array/ },
    );
  });

  it("rejects bad constructor arguments", () => {
    assert.throws(() => new GlobalAveragePrecision(0), /GAP@20: numClasses must be a positive integer, got 0/);
    assert.throws(() => new GlobalAveragePrecision(4, 0), /GAP@0: k must be a positive integer, got 0/);
    assert.throws(() => new MeanAveragePrecision(4, { topK: 1.5 }), /mAP: topK must be a positive integer/);
    assert.throws(() => new MicroPrecision(4, NaN), /threshold must be a finite number, got NaN/);
    assert.throws(
      () => new MetricCollection({ a: new HitAtOne(3), b: new HitAtOne(4) }),
      /metric "b" has numClasses=4 but "a" has 3/,
    );
  });

  it("a rejected batch leaves the metric unchanged", () => {
    const tags = createTagMetrics(4, { k: 2 });
    tags.update(A_SCORES, A_LABELS);
    const before = tags.compute();
    assert.throws(() => tags.update(new Float32Array(4), new Uint8Array([0, 2, 0, 0])), /is 2/);
    assert.deepEqual(tags.compute(), before);
  });

  it("VideoEvaluator rejects heads of different batch sizes without updating either", () => {
    const ev = new VideoEvaluator({ numTags: 4, numCategories: 4, k: 2 });
    assert.throws(
      () =>
        ev.update({
          tagScores: A_SCORES,
          tagTargets: A_LABELS,
          categoryScores: B_SCORES.slice(0, 8),
          categoryTargets: B_TARGETS.slice(0, 2),
        }),
      /tag batch has 3 videos but category batch has 2/,
    );
    assert.throws(
      () =>
        ev.update({
          tagScores: A_SCORES,
          tagTargets: A_LABELS,
          categoryScores: B_SCORES.slice(0, 12),
          categoryTargets: new Int32Array([0, 9, 0]),
        }),
      /VideoEvaluator category: targets\[1\] is 9/,
    );
    assert.throws(() => ev.compute(), /before any video/);
  });
});
