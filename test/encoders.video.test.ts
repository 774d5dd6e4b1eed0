/**
 * Frame/audio encoders: shapes, masking (padded frames change nothing), empty
 * videos, gradients, deferred batch-norm updates, determinism, a reference
 * check of the NeXtVLAD math, TRN tuple sampling and a learning sanity check.
 * Every assert.ok carries a message: without one, node builds it by re-parsing
 * the source, which under tsx can hang for minutes on a failure.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { applyStatUpdates, inferenceContext, ParamStore, trainingContext, type ForwardContext, type SequenceEncoder } from "../src/model/core.js";
import { Dense } from "../src/model/layers.js";
import { NeXtVladConfig, NeXtVladEncoder } from "../src/model/encoders/nextvlad.js";
import { sampleTuples, TrnEncoder } from "../src/model/encoders/trn.js";
import { AttentionPoolEncoder } from "../src/model/encoders/attentionPool.js";
import { GatedMlpEncoder } from "../src/model/encoders/gatedMlp.js";
import { buildVideoEncoder, VideoEncoderConfig } from "../src/model/encoders/video.js";
import type { z } from "zod";

before(async () => {
  await tf.setBackend("cpu");
});

interface Case {
  name: string;
  config: z.input<typeof VideoEncoderConfig>;
  inputDim: number;
}

const CASES: Case[] = [
  { name: "nextvlad", inputDim: 12, config: { type: "nextvlad", expansion: 2, groups: 4, clusters: 6, hidden: 16, dropout: 0.3, gatingReduction: 4 } },
  { name: "trn", inputDim: 10, config: { type: "trn", bottleneck: 8, maxScale: 4, tuplesPerScale: 3, relationDim: 10, hidden: 12, dropout: 0.3 } },
  { name: "attention", inputDim: 10, config: { type: "attention", attentionDim: 8, hidden: 12, dropout: 0.3 } },
  { name: "attention (no projection)", inputDim: 10, config: { type: "attention", attentionDim: 8, hidden: 0 } },
  { name: "gated_mlp", inputDim: 10, config: { type: "gated_mlp", hidden: 16, dropout: 0.3, gatingReduction: 4 } },
];

let storeSeed = 1000;
function build(c: Case, seed = storeSeed++): { store: ParamStore; enc: SequenceEncoder } {
  const store = new ParamStore(seed);
  return { store, enc: buildVideoEncoder(c.config, store.scope("enc"), c.inputDim) };
}

/** Seeded LCG for test data built on the CPU. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** x [B, T, D] standard-normal-ish and a mask whose video b has lengths[b] real frames at the front. */
function batch(lengths: number[], T: number, D: number, seed: number): { x: tf.Tensor3D; mask: tf.Tensor2D } {
  const B = lengths.length;
  const x = tf.randomNormal([B, T, D], 0, 1, "float32", seed) as tf.Tensor3D;
  const m = new Float32Array(B * T);
  lengths.forEach((n, b) => m.fill(1, b * T, b * T + n));
  return { x, mask: tf.tensor2d(m, [B, T]) };
}

/**
 * Inserts `extra` padded frames per video (mask 0) holding junk: huge random
 * values, one +Inf and one NaN. Where `interleave`, the junk goes between real
 * frames too (the mask is then not a prefix); otherwise it is appended.
 */
function withJunk(x: tf.Tensor3D, mask: tf.Tensor2D, extra: number, seed: number, interleave: boolean): { x: tf.Tensor3D; mask: tf.Tensor2D } {
  const [B, T, D] = x.shape;
  const xs = x.arraySync();
  const ms = mask.arraySync();
  const r = rng(seed);
  const junk = (): number[] => Array.from({ length: D }, () => (r() - 0.5) * 2e6);
  const outX: number[][][] = [];
  const outM: number[][] = [];
  for (let b = 0; b < B; b++) {
    const frames: number[][] = [];
    const fm: number[] = [];
    const junkAt: number[] = [];
    const insertAt = new Set<number>();
    while (interleave && insertAt.size < extra) insertAt.add(Math.floor(r() * (T + 1)));
    let inserted = 0;
    for (let t = 0; t <= T; t++) {
      if (insertAt.has(t)) {
        junkAt.push(frames.length);
        frames.push(junk());
        fm.push(0);
        inserted++;
      }
      if (t < T) {
        frames.push(xs[b][t]);
        fm.push(ms[b][t]);
      }
    }
    while (inserted < extra) {
      junkAt.push(frames.length);
      frames.push(junk());
      fm.push(0);
      inserted++;
    }
    // Non-finite junk: a multiply-by-mask would turn these into NaN.
    frames[junkAt[0]] = frames[junkAt[0]].map((v, i) => (i === 0 ? Infinity : i === 1 ? NaN : v));
    outX.push(frames);
    outM.push(fm);
  }
  return { x: tf.tensor3d(outX), mask: tf.tensor2d(outM) };
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function allFinite(t: tf.Tensor): boolean {
  return t.dataSync().every((v) => Number.isFinite(v));
}

/** Runs one clean training pass and applies its BN updates, so inference BN is not the identity. */
function warmStats(enc: SequenceEncoder, D: number, seed: number): void {
  const ctx = trainingContext(seed);
  tf.tidy(() => {
    const { x, mask } = batch([5, 3, 7, 1], 7, D, seed);
    enc.apply(tf.mul(x, 2).add(0.5) as tf.Tensor3D, mask, ctx);
  });
  applyStatUpdates(ctx);
}

function inferenceWithQueue(): ForwardContext {
  return { training: false, statUpdates: [], nextSeed: () => 0 };
}

for (const c of CASES) {
  describe(`video encoder: ${c.name}`, () => {
    const D = c.inputDim;

    test("output shape [B, outputDim] for several B and T, in both modes", () => {
      const { store, enc } = build(c);
      try {
        for (const [lengths, T] of [[[1], 1], [[3, 1, 5], 5], [[9, 2, 4, 9], 9], [[1, 1], 1]] as [number[], number][]) {
          tf.tidy(() => {
            const { x, mask } = batch(lengths, T, D, 7);
            for (const ctx of [inferenceContext(), trainingContext(3, false)]) {
              const y = enc.apply(x, mask, ctx);
              assert.deepEqual(y.shape, [lengths.length, enc.outputDim]);
              assert.ok(allFinite(y), `non-finite output for lengths ${lengths}`);
            }
          });
        }
        assert.ok(enc.outputDim > 0, "expected: enc.outputDim > 0");
      } finally {
        store.dispose();
      }
    });

    for (const interleave of [false, true]) {
      test(`padded frames with junk values change nothing (${interleave ? "interleaved" : "appended"}), inference and training`, () => {
        const { store, enc } = build(c);
        try {
          warmStats(enc, D, 11);
          tf.tidy(() => {
            const { x, mask } = batch([6, 2, 4, 1], 6, D, 21);
            const padded = withJunk(x, mask, 3, 5, interleave);
            assert.equal(padded.x.shape[1], 9);
            const ref = enc.apply(x, mask, inferenceContext());
            const got = enc.apply(padded.x, padded.mask, inferenceContext());
            assert.ok(allFinite(got), "expected: allFinite(got)");
            assert.ok(maxAbsDiff(ref, got) <= 1e-5, `inference differs by ${maxAbsDiff(ref, got)}`);
            // Training forward: masked BN statistics, same dropout seeds, same TRN tuple draws.
            const refT = enc.apply(x, mask, trainingContext(42, false));
            const gotT = enc.apply(padded.x, padded.mask, trainingContext(42, false));
            assert.ok(allFinite(gotT), "expected: allFinite(gotT)");
            assert.ok(maxAbsDiff(refT, gotT) <= 1e-5, `training differs by ${maxAbsDiff(refT, gotT)}`);
          });
        } finally {
          store.dispose();
        }
      });
    }

    test("a video with every frame masked gives a finite output and leaves the others alone", () => {
      const { store, enc } = build(c);
      try {
        warmStats(enc, D, 12);
        tf.tidy(() => {
          const { x, mask } = batch([0, 3, 5], 5, D, 31);
          const junked = withJunk(x, mask, 2, 9, false); // video 0 is now all junk, all masked
          for (const ctx of [inferenceContext(), trainingContext(8, false)]) {
            const y = enc.apply(junked.x, junked.mask, ctx);
            assert.ok(allFinite(y), "non-finite output with an all-masked video");
          }
          // In inference each row is independent: the empty video does not disturb video 1.
          const alone = batch([3], 5, D, 31);
          const y1 = enc.apply(junked.x, junked.mask, inferenceContext()).slice([1, 0], [1, -1]);
          const ref = enc.apply(x.slice([1, 0, 0], [1, -1, -1]) as tf.Tensor3D, alone.mask, inferenceContext());
          assert.ok(maxAbsDiff(y1, ref) <= 1e-5, "expected: maxAbsDiff(y1, ref) <= 1e-5");
        });
      } finally {
        store.dispose();
      }
    });

    test("every trainable variable gets a finite, non-zero gradient; padded frames get none", () => {
      const { store, enc } = build(c);
      try {
        const vars = store.trainableVariables();
        assert.ok(vars.length > 0, "expected: vars.length > 0");
        tf.tidy(() => {
          const { x, mask } = batch([5, 2, 4, 1, 3], 5, D, 41);
          const weights = tf.randomNormal([5, enc.outputDim], 0, 1, "float32", 4);
          const { value, grads } = tf.variableGrads(
            () => tf.sum(tf.mul(enc.apply(x, mask, trainingContext(5, false)), weights)) as tf.Scalar,
            vars,
          );
          assert.ok(Number.isFinite(value.dataSync()[0]), "expected: Number.isFinite(value.dataSync()[0])");
          for (const v of vars) {
            const g = grads[v.name];
            assert.ok(g, `no gradient for ${v.name}`);
            assert.ok(allFinite(g), `non-finite gradient for ${v.name}`);
            const peak = tf.max(tf.abs(g)).dataSync()[0];
            assert.ok(peak > 1e-6, `gradient of ${v.name} is (numerically) zero: ${peak}`);
          }
          // Gradient w.r.t. the frames (what an FGM perturbation uses) is zero on padding.
          const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(enc.apply(xi as tf.Tensor3D, mask, trainingContext(5, false)), weights)))(x);
          const padGrad = tf.sum(tf.abs(tf.mul(dx, tf.sub(1, mask).expandDims(2)))).dataSync()[0];
          const realGrad = tf.sum(tf.abs(tf.mul(dx, mask.expandDims(2)))).dataSync()[0];
          assert.equal(padGrad, 0);
          assert.ok(realGrad > 0, "expected: realGrad > 0");
        });
      } finally {
        store.dispose();
      }
    });

    test("training queues batch-norm updates on the context; inference queues none and changes nothing", () => {
      const { store, enc } = build(c);
      try {
        const nonTrainable = store.entries().filter(([, p]) => !p.trainable).map(([, p]) => p.variable);
        const hasBn = nonTrainable.length > 0;
        tf.tidy(() => {
          const { x, mask } = batch([4, 2, 3], 4, D, 51);
          const before = nonTrainable.map((v) => v.dataSync().slice());
          const inf = inferenceWithQueue();
          enc.apply(x, mask, inf);
          assert.equal(inf.statUpdates?.length, 0);
          nonTrainable.forEach((v, i) => assert.deepEqual(v.dataSync(), before[i]));

          const tr = trainingContext(6);
          enc.apply(x, mask, tr);
          const updates = tr.statUpdates ?? [];
          // Each BN queues its moving mean and variance; nothing is assigned until applyStatUpdates.
          assert.equal(updates.length, nonTrainable.length);
          assert.equal(hasBn, c.name !== "attention (no projection)");
          for (const u of updates) assert.ok(nonTrainable.includes(u.variable), "expected: nonTrainable.includes(u.variable)");
          nonTrainable.forEach((v, i) => assert.deepEqual(v.dataSync(), before[i]));
          applyStatUpdates(tr);
          if (hasBn) assert.ok(nonTrainable.some((v, i) => maxAbsDiff(v, tf.tensor(before[i], v.shape)) > 0), "expected: nonTrainable.some((v, i) => maxAbsDiff(v, tf.tensor(before[i], v.sh...");
        });
      } finally {
        store.dispose();
      }
    });

    test("deterministic for the same seeds", () => {
      const seed = 777;
      const run = (ctxSeed: number, training: boolean): Float32Array => {
        const { store, enc } = build(c, seed);
        try {
          return tf.tidy(() => {
            const { x, mask } = batch([6, 3, 5, 1], 6, D, 61);
            const ctx = training ? trainingContext(ctxSeed, false) : inferenceContext();
            return enc.apply(x, mask, ctx).dataSync() as Float32Array;
          });
        } finally {
          store.dispose();
        }
      };
      assert.deepEqual(run(1, false), run(1, false));
      assert.deepEqual(run(1, true), run(1, true));
      const usesRandomness = c.name !== "attention (no projection)";
      if (usesRandomness) assert.notDeepEqual(run(1, true), run(2, true), "a different seed should change dropout/sampling");
    });
  });
}

describe("NeXtVLAD", () => {
  test("aggregate matches a plain-JavaScript reference of the paper's formula", () => {
    const D = 6;
    const cfg = { expansion: 2, groups: 3, clusters: 4, hidden: 8, dropout: 0, gatingReduction: 2 };
    const store = new ParamStore(3);
    try {
      const enc = new NeXtVladEncoder(cfg, store.scope("nv"), D);
      // Non-trivial moving statistics and affine parameters for the assignment BN.
      const bn = enc.assignBn;
      const C = bn.channels;
      bn.movingMean.assign(tf.randomNormal([C], 0, 0.3, "float32", 1));
      bn.movingVariance.assign(tf.randomUniform([C], 0.5, 2, "float32", 2));
      bn.gamma.assign(tf.randomUniform([C], 0.5, 1.5, "float32", 3));
      bn.beta.assign(tf.randomNormal([C], 0, 0.3, "float32", 4));
      const { x, mask } = batch([3, 1, 0], 4, D, 71);
      const got = tf.tidy(() => enc.aggregate(x, mask, inferenceContext()).arraySync());

      const X = x.arraySync();
      const M = mask.arraySync();
      const We = enc.expand.kernel.arraySync() as number[][];
      const be = enc.expand.bias!.arraySync() as number[];
      const Wa = enc.attention.kernel.arraySync() as number[][];
      const ba = enc.attention.bias!.arraySync() as number[];
      const Ws = enc.assign.kernel.arraySync() as number[][];
      const [mm, mv, ga, bt] = [bn.movingMean, bn.movingVariance, bn.gamma, bn.beta].map((v) => v.arraySync() as number[]);
      const cen = enc.centres.arraySync() as number[][];
      const { groups: G, clusters: K } = enc.config;
      const F = enc.groupDim;
      const L = enc.expandedDim;
      const dot = (v: number[], W: number[][], j: number): number => v.reduce((s, vi, i) => s + vi * W[i][j], 0);
      for (let b = 0; b < X.length; b++) {
        const acc = Array.from({ length: K }, () => new Array<number>(F).fill(0));
        const mass = new Array<number>(K).fill(0);
        for (let t = 0; t < X[b].length; t++) {
          if (M[b][t] === 0) continue;
          const e = Array.from({ length: L }, (_, j) => dot(X[b][t], We, j) + be[j]);
          for (let g = 0; g < G; g++) {
            const alpha = 1 / (1 + Math.exp(-(dot(e, Wa, g) + ba[g])));
            const z = Array.from({ length: K }, (_, k) => {
              const j = g * K + k;
              return ((dot(e, Ws, j) - mm[j]) / Math.sqrt(mv[j] + bn.epsilon)) * ga[j] + bt[j];
            });
            const zmax = Math.max(...z);
            const ez = z.map((v) => Math.exp(v - zmax));
            const sum = ez.reduce((s, v) => s + v, 0);
            for (let k = 0; k < K; k++) {
              const w = (alpha * ez[k]) / sum;
              mass[k] += w;
              for (let f = 0; f < F; f++) acc[k][f] += w * e[g * F + f];
            }
          }
        }
        for (let k = 0; k < K; k++) {
          const v = acc[k].map((s, f) => s - mass[k] * cen[k][f]);
          const n = Math.sqrt(Math.max(v.reduce((s, q) => s + q * q, 0), 1e-12));
          for (let f = 0; f < F; f++) {
            const want = v[f] / n;
            assert.ok(Math.abs(got[b][k * F + f] - want) < 1e-4, `b=${b} k=${k} f=${f}: ${got[b][k * F + f]} vs ${want}`);
          }
        }
      }
      // Real frames give unit-norm clusters; the empty video gives exact zeros.
      assert.ok(got[2].every((v) => v === 0), "expected: got[2].every((v) => v === 0)");
      x.dispose();
      mask.dispose();
    } finally {
      store.dispose();
    }
  });

  test("config: defaults, audio-style halving, and a λ·D not divisible by G is rejected", () => {
    const d = NeXtVladConfig.parse({});
    assert.deepEqual(d, { expansion: 2, groups: 8, clusters: 64, hidden: 1024, dropout: 0.5, gatingReduction: 8 });
    const store = new ParamStore(1);
    try {
      const audio = new NeXtVladEncoder({ clusters: 16, groups: 4, hidden: 8 }, store.scope("audio"), 8);
      assert.equal(audio.groupDim, 4);
      assert.deepEqual(audio.centres.shape, [16, 4]);
      assert.throws(() => new NeXtVladEncoder({ groups: 5 }, store.scope("bad"), 6), /not divisible/);
      assert.throws(() => NeXtVladConfig.parse({ clusters: 0 }));
    } finally {
      store.dispose();
    }
  });

  test("trainable parameter count follows the layer formula", () => {
    const store = new ParamStore(1);
    try {
      const [D, lam, G, K, H, r] = [12, 2, 4, 6, 16, 4];
      new NeXtVladEncoder({ expansion: lam, groups: G, clusters: K, hidden: H, gatingReduction: r }, store.scope("nv"), D);
      const L = lam * D;
      const F = L / G;
      const want = D * L + L + (L * G + G) + L * G * K + 2 * G * K + K * F + 2 * K * F + K * F * H + 2 * H + (H * (H / r) + 2 * (H / r) + (H / r) * H + H);
      assert.equal(store.countTrainable(), want);
    } finally {
      store.dispose();
    }
  });
});

describe("TRN tuple sampling", () => {
  test("evaluation tuples are strictly increasing, in range and spread over the video", () => {
    for (const n of [2, 3, 4, 7, 16, 64]) {
      for (const d of [2, 3, 4].filter((q) => q <= n)) {
        const tuples = sampleTuples(n, d, 3);
        assert.equal(tuples.length, 3);
        for (const t of tuples) {
          assert.equal(t.length, d);
          for (let i = 0; i < d; i++) {
            assert.ok(t[i] >= 0 && t[i] < n, "expected: t[i] >= 0 && t[i] < n");
            if (i > 0) assert.ok(t[i] > t[i - 1], `n=${n} d=${d}: ${t}`);
          }
        }
        assert.deepEqual(sampleTuples(n, d, 3), tuples);
      }
    }
    assert.deepEqual(sampleTuples(8, 2, 2), [[1, 5], [3, 7]]);
  });

  test("fewer real frames than the scale: frames repeat in order", () => {
    assert.deepEqual(sampleTuples(1, 3, 2), [[0, 0, 0], [0, 0, 0]]);
    assert.deepEqual(sampleTuples(2, 4, 1), [[0, 0, 1, 1]]);
    assert.deepEqual(sampleTuples(3, 4, 1, rng(1)), [[0, 1, 1, 2]]);
  });

  test("training tuples are seeded uniform ordered subsets", () => {
    const a = sampleTuples(10, 3, 200, rng(5));
    assert.deepEqual(sampleTuples(10, 3, 200, rng(5)), a);
    assert.notDeepEqual(sampleTuples(10, 3, 200, rng(6)), a);
    const seen = new Set<number>();
    for (const t of a) {
      assert.ok(t[0] < t[1] && t[1] < t[2] && t[0] >= 0 && t[2] < 10, "expected: t[0] < t[1] && t[1] < t[2] && t[0] >= 0 && t[2] < 10");
      t.forEach((i) => seen.add(i));
    }
    assert.equal(seen.size, 10, "every frame should be drawn at some point");
  });

  test("the output depends on the frames' order (relations are ordered)", () => {
    const store = new ParamStore(9);
    try {
      const enc = new TrnEncoder({ bottleneck: 6, maxScale: 3, tuplesPerScale: 2, relationDim: 8, hidden: 8 }, store.scope("trn"), 5);
      warmStats(enc, 5, 3);
      tf.tidy(() => {
        const { x, mask } = batch([4, 4], 4, 5, 81);
        const reversed = tf.reverse(x, 1) as tf.Tensor3D;
        assert.ok(maxAbsDiff(enc.apply(x, mask, inferenceContext()), enc.apply(reversed, mask, inferenceContext())) > 1e-4, "expected: maxAbsDiff(enc.apply(x, mask, inferenceContext()), enc.apply(revers...");
      });
    } finally {
      store.dispose();
    }
  });
  test("a video with no real frame gets a zero relation vector: its output is BN(0)", () => {
    const store = new ParamStore(10);
    try {
      const enc = new TrnEncoder({ bottleneck: 6, maxScale: 3, tuplesPerScale: 2, relationDim: 8, hidden: 8 }, store.scope("trn"), 5);
      // Positive biases (as after training), so a zeroed frame would still give g ≠ 0.
      for (const d of [enc.proj, ...enc.g]) d.bias!.assign(tf.randomUniform(d.bias!.shape, 0.1, 0.5, "float32", 7));
      warmStats(enc, 5, 4);
      tf.tidy(() => {
        const { x, mask } = batch([0, 3], 4, 5, 82);
        const y = enc.apply(x, mask, inferenceContext()).slice([0, 0], [1, -1]);
        const want = enc.outBn.apply(tf.zeros([1, 8]), inferenceContext());
        assert.ok(maxAbsDiff(y, want) < 1e-6, `empty video output differs from BN(0) by ${maxAbsDiff(y, want)}`);
      });
    } finally {
      store.dispose();
    }
  });

  test("training draws tuples from the context's seed (no dropout involved)", () => {
    const store = new ParamStore(11);
    try {
      const enc = new TrnEncoder({ bottleneck: 6, maxScale: 4, tuplesPerScale: 2, relationDim: 8, hidden: 8, dropout: 0 }, store.scope("trn"), 5);
      tf.tidy(() => {
        const { x, mask } = batch([12, 9, 12], 12, 5, 83);
        const run = (seed: number): tf.Tensor => enc.apply(x, mask, trainingContext(seed, false));
        assert.equal(maxAbsDiff(run(1), run(1)), 0);
        assert.ok(maxAbsDiff(run(1), run(2)) > 1e-4, "different seeds should sample different tuples");
      });
    } finally {
      store.dispose();
    }
  });
});

describe("attention pooling and gated MLP specifics", () => {
  test("attention weights: zero on padding, sum to one over real frames, zero for an empty video", () => {
    const store = new ParamStore(4);
    try {
      const enc = new AttentionPoolEncoder({ attentionDim: 6, hidden: 0 }, store.scope("att"), 5);
      tf.tidy(() => {
        const { x, mask } = batch([3, 1, 0], 4, 5, 91);
        const a = enc.weights(x, mask).arraySync();
        const m = mask.arraySync();
        a.forEach((row, b) => {
          row.forEach((v, t) => (m[b][t] === 0 ? assert.equal(v, 0) : assert.ok(v > 0, "expected: v > 0")));
          const s = row.reduce((p, q) => p + q, 0);
          assert.ok(Math.abs(s - (b === 2 ? 0 : 1)) < 1e-6, "expected: Math.abs(s - (b === 2 ? 0 : 1)) < 1e-6");
        });
        // One real frame: the pooled output is that frame; no frame: exactly zero.
        const y = enc.apply(x, mask, inferenceContext());
        assert.ok(maxAbsDiff(y.slice([1, 0], [1, -1]), x.slice([1, 0, 0], [1, 1, -1]).reshape([1, 5])) < 1e-6, "expected: maxAbsDiff(y.slice([1, 0], [1, -1]), x.slice([1, 0, 0], [1, 1, -1])...");
        assert.ok(y.slice([2, 0], [1, -1]).dataSync().every((v) => v === 0), "expected: y.slice([2, 0], [1, -1]).dataSync().every((v) => v === 0)");
      });
    } finally {
      store.dispose();
    }
  });

  test("attention softmax runs over real frames only, even when padding would out-score them", () => {
    const store = new ParamStore(6);
    try {
      const A = 6;
      const enc = new AttentionPoolEncoder({ attentionDim: A, hidden: 0 }, store.scope("att"), 5);
      // tanh branch: V = 1, no bias; sigmoid branch: U = 0 (σ = ½); w = 100. A zeroed
      // padded frame scores 0, a real frame of −10s scores about −50·A = −300, far
      // past exp's range: a max over all frames would underflow every real weight.
      enc.v.kernel.assign(tf.ones([5, A]));
      enc.u.kernel.assign(tf.zeros([5, A]));
      enc.w.kernel.assign(tf.fill([A, 1], 100));
      tf.tidy(() => {
        const x = tf.concat([tf.fill([1, 2, 5], -10), tf.fill([1, 1, 5], -12), tf.zeros([1, 2, 5])], 1) as tf.Tensor3D;
        const mask = tf.tensor2d([[1, 1, 1, 0, 0]]);
        const a = Array.from(enc.weights(x, mask).dataSync());
        const sum = a.reduce((p, q) => p + q, 0);
        assert.ok(Math.abs(sum - 1) < 1e-6, `weights sum to ${sum}`);
        assert.ok(a[0] > 0.3 && a[1] > 0.3, `weights ${a}`);
        assert.equal(a[3], 0);
      });
    } finally {
      store.dispose();
    }
  });

  test("gated MLP on a single video-level frame equals the mean over repeated frames", () => {
    const store = new ParamStore(5);
    try {
      const enc = new GatedMlpEncoder({ hidden: 8, gatingReduction: 2 }, store.scope("mlp"), 6);
      warmStats(enc, 6, 4);
      tf.tidy(() => {
        const one = tf.randomNormal([3, 1, 6], 0, 1, "float32", 3) as tf.Tensor3D;
        const rep = tf.tile(one, [1, 4, 1]) as tf.Tensor3D;
        const y1 = enc.apply(one, tf.ones([3, 1]), inferenceContext());
        const y4 = enc.apply(rep, tf.ones([3, 4]), inferenceContext());
        assert.ok(maxAbsDiff(y1, y4) < 1e-5, "expected: maxAbsDiff(y1, y4) < 1e-5");
      });
    } finally {
      store.dispose();
    }
  });
});

describe("gated MLP input dropout", () => {
  test("drops input features while training only; off, it leaves the encoder as it was", () => {
    // Same seed, same weights: the two encoders differ only in inputDropout.
    const plainStore = new ParamStore(9);
    const dropStore = new ParamStore(9);
    try {
      const plain = new GatedMlpEncoder({ hidden: 8, dropout: 0, gatingReduction: 2 }, plainStore.scope("mlp"), 6);
      const dropped = new GatedMlpEncoder({ hidden: 8, dropout: 0, gatingReduction: 2, inputDropout: 0.5 }, dropStore.scope("mlp"), 6);
      tf.tidy(() => {
        const x = tf.randomNormal([4, 1, 6], 0, 1, "float32", 11) as tf.Tensor3D;
        const mask = tf.ones([4, 1]) as tf.Tensor2D;
        const atInference = maxAbsDiff(plain.apply(x, mask, inferenceContext()), dropped.apply(x, mask, inferenceContext()));
        assert.ok(atInference < 1e-6, `inference outputs differ by ${atInference}: input dropout must be the identity there`);
        const inTraining = maxAbsDiff(plain.apply(x, mask, trainingContext(3, false)), dropped.apply(x, mask, trainingContext(3, false)));
        assert.ok(inTraining > 1e-3, `training outputs differ by only ${inTraining}: half the input features should have been dropped`);
      });
      assert.throws(() => new GatedMlpEncoder({ inputDropout: 1 }, plainStore.scope("bad"), 6), /inputDropout|too_big|<=0.95/i);
    } finally {
      plainStore.dispose();
      dropStore.dispose();
    }
  });
});

describe("factory", () => {
  test("fills each block's defaults and rejects unknown types", () => {
    const c = VideoEncoderConfig.parse({ type: "trn" });
    assert.equal(c.type, "trn");
    if (c.type === "trn") assert.equal(c.maxScale, 4);
    assert.throws(() => VideoEncoderConfig.parse({ type: "lstm" }));
    assert.throws(() => VideoEncoderConfig.parse({ type: "nextvlad", clusters: -1 }));
    const store = new ParamStore(2);
    try {
      assert.ok(buildVideoEncoder({ type: "nextvlad", clusters: 4, hidden: 8 }, store.scope("a"), 8) instanceof NeXtVladEncoder, "expected: buildVideoEncoder({ type: 'nextvlad', clusters: 4, hidden: 8 }, sto...");
      assert.ok(buildVideoEncoder({ type: "trn", hidden: 8 }, store.scope("b"), 8) instanceof TrnEncoder, "expected: buildVideoEncoder({ type: 'trn', hidden: 8 }, store.scope('b'), 8) ...");
      assert.ok(buildVideoEncoder({ type: "attention", hidden: 0 }, store.scope("c"), 8) instanceof AttentionPoolEncoder, "expected: buildVideoEncoder({ type: 'attention', hidden: 0 }, store.scope('c'...");
      const g = buildVideoEncoder({ type: "gated_mlp", hidden: 8 }, store.scope("d"), 8);
      assert.ok(g instanceof GatedMlpEncoder, "expected: g instanceof GatedMlpEncoder");
      assert.equal(g.outputDim, 8);
    } finally {
      store.dispose();
    }
  });
});

/** A few dozen Adam steps of encoder + logistic head on a toy problem; returns mean loss of the first and last 5 steps. */
function trainToy(
  makeEnc: (store: ParamStore) => SequenceEncoder,
  data: () => { x: tf.Tensor3D; mask: tf.Tensor2D; y: tf.Tensor2D },
  steps: number,
): { first: number; last: number; accuracy: number } {
  const store = new ParamStore(17);
  const optimizer = tf.train.adam(3e-3);
  try {
    const enc = makeEnc(store);
    const head = new Dense(store.scope("head"), enc.outputDim, 1);
    const { x, mask, y } = data();
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) {
      const ctx = trainingContext(100 + s);
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const logits = head.apply(enc.apply(x, mask, ctx));
          return tf.losses.sigmoidCrossEntropy(y, logits) as tf.Scalar;
        }, store.trainableVariables());
        optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
        losses.push(value.dataSync()[0]);
      });
      applyStatUpdates(ctx);
    }
    // Accuracy in training-mode normalisation (moving averages are still warming up after so few steps).
    const accuracy = tf.tidy(() => {
      const logits = head.apply(enc.apply(x, mask, trainingContext(1, false)));
      return tf.mean(tf.cast(tf.equal(tf.greater(logits, 0), tf.greater(y, 0.5)), "float32")).dataSync()[0];
    });
    tf.dispose([x, mask, y]);
    const avg = (a: number[]): number => a.reduce((p, q) => p + q, 0) / a.length;
    return { first: avg(losses.slice(0, 5)), last: avg(losses.slice(-5)), accuracy };
  } finally {
    optimizer.dispose();
    store.dispose();
  }
}

describe("learning sanity", () => {
  after(() => tf.disposeVariables());

  test("gated MLP learns a linearly separable rule on 1152-d video-level features", () => {
    const D = 1152;
    const { first, last, accuracy } = trainToy(
      (store) => new GatedMlpEncoder({ hidden: 32, dropout: 0.1, gatingReduction: 4 }, store.scope("mlp"), D),
      () =>
        tf.tidy(() => {
          const B = 64;
          // Video-level features mix scales, like mean RGB next to mean audio.
          const scale = tf.concat([tf.fill([1024], 0.3), tf.fill([128], 3)]);
          const x = tf.mul(tf.randomNormal([B, 1, D], 0, 1, "float32", 1), scale) as tf.Tensor3D;
          const w = tf.randomNormal([D, 1], 0, 1, "float32", 2);
          const y = tf.cast(tf.greater(tf.matMul(x.reshape([B, D]), w), 0), "float32") as tf.Tensor2D;
          return { x, mask: tf.ones([B, 1]) as tf.Tensor2D, y };
        }),
      40,
    );
    assert.ok(last < 0.5 * first, `loss ${first} → ${last}`);
    assert.ok(accuracy > 0.9, `accuracy ${accuracy}`);
  });

  test("NeXtVLAD learns which frame distribution a variable-length video came from", () => {
    const D = 8;
    const { first, last, accuracy } = trainToy(
      (store) => new NeXtVladEncoder({ expansion: 2, groups: 4, clusters: 8, hidden: 16, dropout: 0.1, gatingReduction: 4 }, store.scope("nv"), D),
      () =>
        tf.tidy(() => {
          const B = 48;
          const T = 6;
          const lengths = Array.from({ length: B }, (_, b) => 1 + (b % T));
          const labels = Array.from({ length: B }, (_, b) => (Math.floor(b / 2) % 2 === 0 ? 0 : 1));
          const centre = tf.randomNormal([2, D], 0, 1, "float32", 5);
          const base = tf.gather(centre, tf.tensor1d(labels, "int32")).reshape([B, 1, D]);
          const noise = batch(lengths, T, D, 6);
          const x = tf.add(base, tf.mul(noise.x, 0.7)) as tf.Tensor3D;
          return { x, mask: noise.mask, y: tf.tensor2d(labels, [B, 1]) };
        }),
      40,
    );
    assert.ok(last < 0.5 * first, `loss ${first} → ${last}`);
    assert.ok(accuracy > 0.9, `accuracy ${accuracy}`);
  });
});
