/**
 * ONNX export parity: small random models covering every block, run through
 * tfjs (cpu backend, inference context) and onnxruntime-node on the same
 * inputs.
 *
 * Error measure, per output: rel = max|onnx − tfjs| / max(1e-6, max|tfjs|)
 * (src/export/verify.ts relativeError); required ≤ 1e-4 for category_probs,
 * tag_probs and embedding. Weights are random, biases non-zero and every batch
 * norm has perturbed γ, β and moving statistics, so the BN folds matter: each
 * config also checks that the same graph does NOT match the model with its
 * moving statistics reset (error ≫ tolerance).
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { Command } from "commander";
import { parseModelConfig, type ModelConfigInput } from "../src/model/config.js";
import { VideoModel } from "../src/model/model.js";
import { inferenceContext } from "../src/model/core.js";
import type { TitleEncoder } from "../src/model/encoders/text.js";
import { PAD_TOKEN, UNK_TOKEN } from "../src/data/tokenize.js";
import { writeCheckpoint } from "../src/train/checkpoint.js";
import { loadTrainedModel } from "../src/train/modelFiles.js";
import { buildOnnxModel, exportModel, METADATA_FORMAT } from "../src/export/exportModel.js";
import { FUSION_EXPORTERS, TEXT_BRANCH_EXPORTERS, UnsupportedBlockError, VIDEO_ENCODER_EXPORTERS } from "../src/export/registry.js";
import { OnnxGraph } from "../src/export/graph.js";
import { exportEmbedding } from "../src/export/blocks/embedding.js";
import { exportTitleEncoder } from "../src/export/blocks/text.js";
import { checkParity, prng, randomFeeds, type Feeds, relativeError } from "../src/export/verify.js";
import { registerExportCommand } from "../src/cli/exportCommand.js";
import { onnxType } from "../src/train/accel/onnxSchema.js";
import { tempDir } from "./helpers/tmp.js";

const TOL = 1e-4;
const VOCAB = 12;
const LABELS = { categories: ["c0", "c1", "c2"], tags: ["t0", "t1", "t2", "t3"] };

const base = {
  input: {
    features: { rgb: { frames: 6, dim: 8 }, audio: { frames: 5, dim: 4 } },
    modalities: ["rgb", "audio"],
    useTitle: true,
    titleMaxTokens: 6,
  },
  title: { embeddingDim: 6 },
  training: { seed: 3 },
} satisfies ModelConfigInput;

interface Case {
  name: string;
  config: ModelConfigInput;
}

const CASES: Case[] = [
  {
    name: "nextvlad + attention pool, textcnn, concat_se, category+tags",
    config: {
      ...base,
      encoders: {
        rgb: { type: "nextvlad", expansion: 2, groups: 2, clusters: 4, hidden: 8, gatingReduction: 2 },
        audio: { type: "attention", attentionDim: 4, hidden: 6 },
      },
      title: { embeddingDim: 6, encoder: { type: "textcnn", textcnn: { widths: [2, 3, 4], filters: 3 }, hidden: 5 } },
      fusion: { type: "concat_se", embeddingDim: 8, seReduction: 2 },
      heads: { mode: "multi" },
    },
  },
  {
    name: "trn + gated MLP, bilstm, gate, category only",
    config: {
      ...base,
      encoders: {
        rgb: { type: "trn", bottleneck: 4, maxScale: 4, tuplesPerScale: 3, relationDim: 5, hidden: 6 },
        audio: { type: "gated_mlp", hidden: 6, gatingReduction: 2 },
      },
      title: { embeddingDim: 6, encoder: { type: "bilstm", bilstm: { hidden: 3, attentionDim: 4, forgetBias: 1 }, hidden: 5 } },
      fusion: { type: "gate", embeddingDim: 7 },
      heads: { mode: "category" },
    },
  },
  {
    name: "attention pool (no projection) + nextvlad, textcnn+bilstm, gate, tags only",
    config: {
      ...base,
      encoders: {
        rgb: { type: "attention", attentionDim: 3, hidden: 0 },
        audio: { type: "nextvlad", expansion: 2, groups: 2, clusters: 3, hidden: 5, gatingReduction: 2 },
      },
      title: { embeddingDim: 6, encoder: { type: "textcnn+bilstm", textcnn: { widths: [2, 3], filters: 3 }, bilstm: { hidden: 3, attentionDim: 3, forgetBias: 0.5 }, hidden: 5 } },
      fusion: { type: "gate", embeddingDim: 6 },
      heads: { mode: "tags" },
    },
  },
  {
    name: "video-level gated MLP, L2-normalised frames, no title, concat_se, category+tags",
    config: {
      input: { features: { rgb: { frames: 1, dim: 10 }, audio: { frames: 1, dim: 4 } }, modalities: ["rgb", "audio"], useTitle: false, normalize: "l2" },
      encoders: { rgb: { type: "gated_mlp", hidden: 8, gatingReduction: 4 }, audio: { type: "gated_mlp", hidden: 4, gatingReduction: 2 } },
      fusion: { type: "concat_se", embeddingDim: 6, seReduction: 4 },
      heads: { mode: "multi" },
      training: { seed: 5 },
    },
  },
  {
    name: "video-level gated MLP, mixture-of-experts tag head (3 experts), concat_se, category+tags",
    config: {
      input: { features: { rgb: { frames: 1, dim: 10 }, audio: { frames: 1, dim: 4 } }, modalities: ["rgb", "audio"], useTitle: false, normalize: "l2" },
      encoders: { rgb: { type: "gated_mlp", hidden: 8, gatingReduction: 4 }, audio: { type: "gated_mlp", hidden: 4, gatingReduction: 2 } },
      fusion: { type: "concat_se", embeddingDim: 6, seReduction: 4 },
      heads: { mode: "multi", tagHead: { type: "moe", experts: 3 } },
      training: { seed: 13 },
    },
  },
  {
    name: "title only, textcnn+bilstm, concat_se, category+tags",
    config: {
      input: { features: {}, modalities: [], useTitle: true, titleMaxTokens: 7 },
      encoders: {},
      title: { embeddingDim: 5, encoder: { type: "textcnn+bilstm", textcnn: { widths: [1, 3], filters: 2 }, bilstm: { hidden: 4, attentionDim: 3 }, hidden: 6 } },
      fusion: { type: "concat_se", embeddingDim: 5, seReduction: 2 },
      heads: { mode: "multi" },
      training: { seed: 7 },
    },
  },
  {
    name: "trn (scales 2-5) alone, textcnn wider than short titles, concat_se, tags only",
    config: {
      input: { features: { rgb: { frames: 9, dim: 6 } }, modalities: ["rgb"], useTitle: true, titleMaxTokens: 6 },
      encoders: { rgb: { type: "trn", bottleneck: 3, maxScale: 5, tuplesPerScale: 4, relationDim: 4, hidden: 5 } },
      title: { embeddingDim: 4, encoder: { type: "textcnn", textcnn: { widths: [2, 5], filters: 3 }, hidden: 4 } },
      fusion: { type: "concat_se", embeddingDim: 6, seReduction: 2 },
      heads: { mode: "tags" },
      training: { seed: 11 },
    },
  },
];

/** Random weights everywhere, non-zero biases, and batch norms far from identity (so folding matters). */
function perturb(model: VideoModel, seed: number): void {
  const rand = prng(seed);
  for (const [name, { variable }] of model.params.entries()) {
    const n = variable.size;
    const draw = (lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
    let values: Float32Array | undefined;
    if (name.endsWith("/moving_mean")) values = draw(-0.5, 0.5);
    else if (name.endsWith("/moving_variance")) values = draw(0.2, 3);
    else if (name.endsWith("/gamma")) values = draw(0.5, 1.5);
    else if (name.endsWith("/beta") || name.endsWith("/bias")) values = draw(-0.3, 0.3);
    if (values) tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
  }
}

/** Moving statistics back to mean 0, variance 1: what an exporter that skipped them would compute. */
function resetMovingStats(model: VideoModel): void {
  for (const [name, { variable }] of model.params.entries()) {
    if (name.endsWith("/moving_mean")) tf.tidy(() => variable.assign(tf.zerosLike(variable)));
    if (name.endsWith("/moving_variance")) tf.tidy(() => variable.assign(tf.onesLike(variable)));
  }
}

function buildModel(config: ModelConfigInput, seed: number): VideoModel {
  const model = new VideoModel(parseModelConfig(config), LABELS, VOCAB);
  perturb(model, seed);
  return model;
}

/** Sets modality `m`'s real lengths row by row (prefix masks; 0 = missing). */
function withLengths(feeds: Feeds, m: string, lengths: number[]): Feeds {
  const f = feeds.modalities[m];
  assert.equal(lengths.length, feeds.batch);
  lengths.forEach((n, b) => {
    for (let t = 0; t < f.steps; t++) f.mask[b * f.steps + t] = t < n ? 1 : 0;
    f.present[b] = n > 0 ? 1 : 0;
  });
  return feeds;
}

/** The input sets every config is checked on. */
function feedSets(model: VideoModel): { label: string; feeds: Feeds }[] {
  const cfg = model.config.input;
  const frames = (scale: (T: number) => number) => Object.fromEntries(cfg.modalities.map((m) => [m, scale(cfg.features[m].frames)]));
  const sets = [
    { label: "B=1, config T and L", feeds: randomFeeds(model, { batch: 1, seed: 1 }) },
    { label: "B=4, shorter T, L=2", feeds: randomFeeds(model, { batch: 4, seed: 2, frames: frames((T) => Math.max(1, T - 2)), titleLength: 2 }) },
    { label: "B=5, longer T, L=titleMaxTokens", feeds: randomFeeds(model, { batch: 5, seed: 3, frames: frames((T) => T + 4) }) },
    { label: "B=6, masks with holes, L+3", feeds: randomFeeds(model, { batch: 6, seed: 4, holes: true, titleLength: cfg.titleMaxTokens + 3 }) },
  ];
  // Padded steps holding NaN and ±Inf: tfjs selects them away (where), a multiply would spread NaN.
  const poisoned = randomFeeds(model, { batch: 4, seed: 6, titleLength: 1 });
  for (const f of Object.values(poisoned.modalities)) {
    for (let i = 0; i < f.mask.length; i++) if (f.mask[i] === 0) f.values.fill([NaN, Infinity, -Infinity][i % 3], i * f.dim, (i + 1) * f.dim);
  }
  sets.push({ label: "B=4, NaN/Inf in padded steps, L=1", feeds: poisoned });
  // Every real-frame count 0…T+1 of the first modality in one batch (TRN: n < d, n = d, n > d; 0 = missing).
  if (cfg.modalities.length > 0) {
    const m = cfg.modalities[0];
    const T = cfg.features[m].frames + 1;
    const B = T + 1;
    const feeds = randomFeeds(model, { batch: B, seed: 5, frames: { [m]: T } });
    sets.push({ label: `B=${B}, ${m} lengths 0..${T}`, feeds: withLengths(feeds, m, Array.from({ length: B }, (_, b) => b)) });
  }
  return sets;
}

before(async () => {
  await tf.setBackend("cpu");
  await tf.ready();
});

describe("ONNX export parity with tfjs", () => {
  for (const [i, c] of CASES.entries()) {
    it(c.name, async () => {
      const model = buildModel(c.config, 100 + i);
      try {
        const { bytes } = buildOnnxModel(model);
        const session = await ort.InferenceSession.create(bytes);
        try {
          const expectedOutputs = [...(model.categoryHead ? ["category_probs"] : []), ...(model.tagHead ? ["tag_probs"] : []), "embedding"];
          assert.deepEqual([...session.outputNames].sort(), [...expectedOutputs].sort());
          const worst: Record<string, number> = {};
          for (const { label, feeds } of feedSets(model)) {
            const report = await checkParity(model, session, [feeds]);
            assert.deepEqual(Object.keys(report.errors).sort(), [...expectedOutputs].sort(), label);
            for (const [name, e] of Object.entries(report.errors)) {
              assert.ok(e <= TOL, `${label}: ${name} relative error ${e} > ${TOL}`);
              worst[name] = Math.max(worst[name] ?? 0, e);
            }
          }
          console.log(`  parity ${c.name}: ${Object.entries(worst).map(([k, e]) => `${k} ${e.toExponential(2)}`).join(", ")}`);

          // The same graph against the model without its moving statistics must fail: the folds carry them.
          resetMovingStats(model);
          const unfolded = await checkParity(model, session, [feedSets(model)[2].feeds]);
          const max = Math.max(...Object.values(unfolded.errors));
          assert.ok(max > 100 * TOL, `resetting the BN statistics changed the outputs by only ${max}`);
        } finally {
          await session.release();
        }
      } finally {
        model.dispose();
      }
    });
  }

  it("saturated fusion gates (σ of very negative logits) keep their ratios", async () => {
    const model = buildModel(CASES[1].config, 8);
    try {
      // Every gate logit near −12: σ ≈ 6e-6, and the weights are ratios of these small numbers.
      const bias = model.params.variable("model/fusion/gate/bias");
      tf.tidy(() => bias.assign(tf.fill(bias.shape, -12)));
      const kernel = model.params.variable("model/fusion/gate/kernel");
      tf.tidy(() => kernel.assign(tf.mul(kernel, 0.05)));
      const report = await checkParity(model, buildOnnxModel(model).bytes, [randomFeeds(model, { batch: 4, seed: 12 })]);
      for (const [name, e] of Object.entries(report.errors)) assert.ok(e <= TOL, `${name}: ${e}`);
    } finally {
      model.dispose();
    }
  });

  it("a video with every input missing matches too (gate and concat_se)", async () => {
    for (const c of [CASES[0], CASES[2]]) {
      const model = buildModel(c.config, 7);
      try {
        const feeds = randomFeeds(model, { batch: 3, seed: 9 });
        // Row 1: no rgb, no audio and an empty title (row 1's title is always empty).
        withLengths(feeds, "rgb", [6, 0, 3]);
        withLengths(feeds, "audio", [5, 0, 2]);
        assert.equal(feeds.title?.present[1], 0);
        const report = await checkParity(model, buildOnnxModel(model).bytes, [feeds]);
        for (const [name, e] of Object.entries(report.errors)) assert.ok(e <= TOL, `${c.name}: ${name}: ${e}`);
      } finally {
        model.dispose();
      }
    }
  });
});

/** Runs a one-block graph built by `build` on float/int64 inputs; returns output "y". */
async function runBlock(
  build: (g: OnnxGraph, inputs: string[]) => string,
  inputs: { name: string; type: "float32" | "int64"; dims: number[]; data: Float32Array | Int32Array }[],
  outDim: number,
): Promise<Float32Array> {
  const g = OnnxGraph.create("block");
  const names = inputs.map((i) => g.input(i.name, i.type, i.dims.map((_, k) => `${i.name}_d${k}`)));
  g.output(build(g, names), "y", "float32", ["batch", outDim]);
  const session = await ort.InferenceSession.create(g.toModel({ producerVersion: "test" }));
  try {
    const feeds = Object.fromEntries(
      inputs.map((i) => [
        i.name,
        i.type === "int64" ? new ort.Tensor("int64", BigInt64Array.from(i.data as Int32Array, (v) => BigInt(v)), i.dims) : new ort.Tensor("float32", i.data as Float32Array, i.dims),
      ]),
    );
    return Float32Array.from((await session.run(feeds)).y.data as Float32Array);
  } finally {
    await session.release();
  }
}

/**
 * Each block on its own (its error is not diluted by the layers after it):
 * every video encoder, the title encoder and each of its branches, the fusion.
 */
describe("ONNX export parity per block", () => {
  for (const [i, c] of CASES.entries()) {
    it(c.name, async () => {
      const model = buildModel(c.config, 200 + i);
      const env = { params: model.params };
      const worst: Record<string, number> = {};
      const check = (block: string, label: string, actual: Float32Array, expected: tf.Tensor) => {
        const e = relativeError(actual, expected.dataSync());
        assert.ok(e <= TOL, `${block}, ${label}: relative error ${e} > ${TOL}`);
        worst[block] = Math.max(worst[block] ?? 0, e);
      };
      try {
        for (const { label, feeds } of feedSets(model)) {
          // The tfjs side runs across awaits, so no tidy: a scope frees its tensors per input set.
          tf.engine().startScope();
          const B = feeds.batch;
          const ctx = inferenceContext();
          const vectors: tf.Tensor2D[] = [];
          const present: tf.Tensor1D[] = [];
          for (const m of model.config.input.modalities) {
            const f = feeds.modalities[m];
            const enc = model.encoders.get(m)!;
            const expected = enc.apply(tf.tensor3d(f.values, [B, f.steps, f.dim]), tf.tensor2d(f.mask, [B, f.steps]), ctx);
            const exporter = VIDEO_ENCODER_EXPORTERS[model.config.encoders[m].type];
            const actual = await runBlock(
              (g, [x, mask]) => exporter(g, enc, x, mask, env),
              [
                { name: "x", type: "float32", dims: [B, f.steps, f.dim], data: f.values },
                { name: "mask", type: "float32", dims: [B, f.steps], data: f.mask },
              ],
              enc.outputDim,
            );
            check(`${model.config.encoders[m].type} (${m})`, label, actual, expected);
            vectors.push(expected);
            present.push(tf.tensor1d(f.present));
          }
          if (model.titleEncoder && model.embedding && feeds.title) {
            const t = feeds.title;
            // A padding id inside the mask: the lookup zeroes it whatever the mask says.
            const ids = Int32Array.from(t.ids);
            if (t.mask[0] === 1) ids[0] = 0;
            const idsT = tf.tensor2d(ids, [B, t.length], "int32");
            const maskT = tf.tensor2d(t.mask, [B, t.length]);
            const emb = model.embedTitle(idsT);
            const title = model.titleEncoder as TitleEncoder;
            const titleInputs = [
              { name: "ids", type: "int64" as const, dims: [B, t.length], data: ids },
              { name: "mask", type: "float32" as const, dims: [B, t.length], data: t.mask },
            ];
            const types = model.config.title.encoder.type.split("+") as ("textcnn" | "bilstm")[];
            for (const [k, branch] of title.branches.entries()) {
              const actual = await runBlock(
                (g, [idsName, mask]) => TEXT_BRANCH_EXPORTERS[types[k]](g, branch, exportEmbedding(g, model.embedding!, idsName), mask, { ...env, scope: `model/encoder_title/${types[k]}` }),
                titleInputs,
                branch.outputDim,
              );
              check(types[k], label, actual, branch.apply(emb, maskT, ctx));
            }
            const expected = title.apply(emb, maskT, ctx);
            const actual = await runBlock(
              (g, [idsName, mask]) => exportTitleEncoder(g, title, model.config.title.encoder, exportEmbedding(g, model.embedding!, idsName), mask, env),
              titleInputs,
              title.outputDim,
            );
            check(`title ${model.config.title.encoder.type}`, label, actual, expected);
            // The fusion sees the title vector of the unmodified ids.
            vectors.push(title.apply(model.embedTitle(tf.tensor2d(t.ids, [B, t.length], "int32")), maskT, ctx));
            present.push(tf.tensor1d(t.present));
          }
          const fusion = model.fusion;
          const expected = fusion.apply(vectors, present, ctx);
          const actual = await runBlock(
            (g, names) => FUSION_EXPORTERS[model.config.fusion.type](g, fusion, names.slice(0, vectors.length), names.slice(vectors.length).map((p) => g.unsqueeze(p, [1])), env),
            [
              ...vectors.map((v, k) => ({ name: `v${k}`, type: "float32" as const, dims: v.shape, data: v.dataSync() as Float32Array })),
              ...present.map((p, k) => ({ name: `p${k}`, type: "float32" as const, dims: p.shape, data: p.dataSync() as Float32Array })),
            ],
            fusion.embeddingDim,
          );
          check(`fusion ${model.config.fusion.type}`, label, actual, expected);
          tf.engine().endScope();
        }
        console.log(`  blocks ${c.name}: ${Object.entries(worst).map(([k, e]) => `${k} ${e.toExponential(2)}`).join(", ")}`);
      } finally {
        model.dispose();
      }
    });
  }
});

describe("ONNX export: graph and files", () => {
  it("declares the I/O contract with symbolic batch, frame and token dims", () => {
    const model = buildModel(CASES[0].config, 1);
    try {
      const { bytes, contract } = buildOnnxModel(model);
      const decoded = onnxType("ModelProto").toObject(onnxType("ModelProto").decode(bytes), { longs: Number, defaults: false }) as {
        ir_version: number;
        opset_import: { version: number }[];
        graph: { input: { name: string; type: { tensor_type: { elem_type: number; shape: { dim: { dim_value?: number; dim_param?: string }[] } } } }[]; output: { name: string }[] };
      };
      assert.equal(decoded.ir_version, 8);
      assert.equal(decoded.opset_import[0].version, 17);
      const inputs = Object.fromEntries(decoded.graph.input.map((i) => [i.name, i.type.tensor_type]));
      assert.deepEqual(Object.keys(inputs), ["rgb", "rgb_mask", "rgb_present", "audio", "audio_mask", "audio_present", "title_ids", "title_mask", "title_present"]);
      const dims = (n: string) => inputs[n].shape.dim.map((d) => d.dim_param ?? d.dim_value);
      assert.deepEqual(dims("rgb"), ["batch", "rgb_frames", 8]);
      assert.deepEqual(dims("audio_mask"), ["batch", "audio_frames"]);
      assert.deepEqual(dims("title_ids"), ["batch", "title_tokens"]);
      assert.deepEqual(dims("title_present"), ["batch"]);
      assert.equal(inputs.title_ids.elem_type, 7); // int64
      assert.equal(inputs.rgb.elem_type, 1); // float
      assert.deepEqual(decoded.graph.output.map((o) => o.name), ["category_probs", "tag_probs", "embedding"]);
      assert.deepEqual(contract.outputs.map((o) => o.shape), [["batch", 3], ["batch", 4], ["batch", 8]]);
    } finally {
      model.dispose();
    }
  });

  it("exportModel writes model.onnx and model.json from a checkpoint, atomically", async () => {
    const dir = tempDir();
    const model = buildModel(CASES[1].config, 2);
    const tokens = [PAD_TOKEN, UNK_TOKEN, ...Array.from({ length: VOCAB - 2 }, (_, i) => `w${i}`)];
    const ckpt = join(dir, "best.ckpt");
    writeCheckpoint(
      ckpt,
      {
        createdAt: "2024-05-01T12:00:00.000Z",
        config: model.config,
        labels: LABELS,
        vocabulary: tokens,
        position: { epoch: 1, batchInEpoch: 0, step: 42, bestGap: 0.5, bestStep: 42, evalsSinceBest: 0, finished: true },
        metrics: { gap20: 0.5 },
      },
      model.params.entries().map(([name, { variable }]) => ({ name, kind: "param" as const, shape: variable.shape, values: Float32Array.from(variable.dataSync() as Float32Array) })),
    );
    model.dispose();

    const loaded = loadTrainedModel(ckpt);
    try {
      const out = join(dir, "export");
      const result = await exportModel(loaded, out, { verify: {} });
      assert.ok(result.parity && Object.values(result.parity.errors).every((e) => e <= TOL));
      assert.deepEqual(readdirSync(out).sort(), ["model.json", "model.onnx"]); // no temp files left
      const bytes = readFileSync(join(out, "model.onnx"));
      const meta = JSON.parse(readFileSync(join(out, "model.json"), "utf8"));
      assert.equal(meta.format, METADATA_FORMAT);
      assert.equal(meta.onnx.sha256, createHash("sha256").update(bytes).digest("hex"));
      assert.equal(meta.onnx.opset, 17);
      assert.equal(meta.source.createdAt, "2024-05-01T12:00:00.000Z");
      assert.equal(meta.source.checkpoint, join("..", "best.ckpt"));
      assert.equal(meta.source.step, 42);
      assert.deepEqual(meta.labels, LABELS);
      assert.deepEqual(meta.vocabulary, tokens);
      assert.equal(meta.config.encoders.rgb.type, "trn");
      assert.deepEqual(meta.inputs.map((i: { name: string }) => i.name), ["rgb", "rgb_mask", "rgb_present", "audio", "audio_mask", "audio_present", "title_ids", "title_mask", "title_present"]);
      assert.deepEqual(meta.outputs.map((o: { name: string }) => o.name), ["category_probs", "embedding"]);
      // The written file is the graph: it matches the loaded model.
      const report = await checkParity(loaded.model, new Uint8Array(bytes), [randomFeeds(loaded.model, { batch: 4, seed: 8 })]);
      for (const [name, e] of Object.entries(report.errors)) assert.ok(e <= TOL, `${name}: ${e}`);

      // The command, registered on a fresh program.
      const program = new Command().exitOverride();
      registerExportCommand(program);
      const cliOut = join(dir, "cli");
      const logs: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((s: string) => (logs.push(s), true)) as typeof process.stdout.write;
      try {
        await program.parseAsync(["node", "vidrecall", "export", "--model", ckpt, "--out", cliOut]);
      } finally {
        process.stdout.write = write;
      }
      assert.ok(existsSync(join(cliOut, "model.onnx")) && existsSync(join(cliOut, "model.json")));
      assert.match(logs.join(""), /parity with tfjs/);
      assert.equal(readFileSync(join(cliOut, "model.onnx")).equals(bytes), true, "export is deterministic");
    } finally {
      loaded.model.dispose();
    }
  });
});

describe("ONNX export: unsupported blocks", () => {
  /** The model with one config field replaced (the instances stay as built). */
  function withConfig(model: VideoModel, patch: (c: Record<string, unknown>) => void): VideoModel {
    const config = structuredClone(model.config) as unknown as Record<string, unknown>;
    patch(config);
    return Object.assign(Object.create(Object.getPrototypeOf(model) as object) as VideoModel, model, { config });
  }

  it("an unknown block type fails with its name", () => {
    const model = buildModel(CASES[0].config, 1);
    try {
      const cases: [string, (c: Record<string, unknown>) => void][] = [
        ["transformer", (c) => ((c.encoders as Record<string, { type: string }>).audio.type = "transformer")],
        ["crossattention", (c) => ((c.fusion as { type: string }).type = "crossattention")],
        ["gru", (c) => (((c.title as { encoder: { type: string } }).encoder.type = "gru"))],
      ];
      for (const [type, patch] of cases) {
        assert.throws(
          () => buildOnnxModel(withConfig(model, patch)),
          (err: unknown) => err instanceof UnsupportedBlockError && err.blockType === type && err.message.includes(`"${type}"`),
          type,
        );
      }
      // A known type whose instance is another block: named too.
      assert.throws(() => buildOnnxModel(withConfig(model, (c) => ((c.encoders as Record<string, { type: string }>).rgb.type = "trn"))), /trn exporter expects a TrnEncoder, got a NeXtVladEncoder/);
    } finally {
      model.dispose();
    }
  });

  it("relativeError catches NaN and scales by the reference", () => {
    assert.equal(relativeError([1, NaN], [1, 2]), Infinity);
    assert.equal(relativeError([0.5, 1.1], [0.5, 1]), 0.10000000000000009);
    assert.ok(Math.abs(relativeError([1e-7], [0]) - 0.1) < 1e-12);
  });
});
