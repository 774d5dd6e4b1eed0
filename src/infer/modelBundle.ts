/**
 * An exported model directory (`vidrecall export`): model.json (labels,
 * vocabulary, config, I/O contract, sha256 of the graph) next to model.onnx.
 *
 * The two files are replaced one after the other by an export, so a reader
 * always checks model.onnx against the hash and size model.json names before
 * using it: a mismatch is a corrupt file or a half-finished re-export, never
 * something to serve.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { z } from "zod";
import { TokenVocabulary } from "../data/tokenize.js";
import { METADATA_FILE, METADATA_FORMAT, type ExportMetadata, type TensorSpec } from "../export/exportModel.js";
import { parseModelConfig, type LabelSpaces, type ModelConfig } from "../model/config.js";

export type ModelBundleProblem = "missing" | "corrupt" | "invalid";

/** A model directory that cannot be served: `problem` says whether a file is missing, damaged, or says something inconsistent. */
export class ModelBundleError extends Error {
  constructor(
    readonly problem: ModelBundleProblem,
    message: string,
  ) {
    super(message);
    this.name = "ModelBundleError";
  }
}

const TensorSpecSchema = z.object({
  name: z.string().min(1),
  dtype: z.enum(["float32", "int64"]),
  shape: z.array(z.union([z.number().int().nonnegative(), z.string()])),
  description: z.string(),
});

const MetadataSchema = z.object({
  format: z.literal(METADATA_FORMAT),
  onnx: z.object({
    file: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "not a lower-case hex sha256"),
    bytes: z.number().int().positive(),
    opset: z.number().int(),
    irVersion: z.number().int(),
  }),
  // Absent in exports older than the field: the graph's own hash stands in (safe: such a model shares nothing).
  embedding: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/, "not a lower-case hex sha256") }).optional(),
  source: z.object({ checkpoint: z.string(), createdAt: z.string(), step: z.number(), metrics: z.record(z.string(), z.number()).optional() }),
  config: z.unknown(),
  labels: z.object({ categories: z.array(z.string()), tags: z.array(z.string()) }),
  vocabulary: z.array(z.string()).nullable(),
  inputs: z.array(TensorSpecSchema),
  outputs: z.array(TensorSpecSchema),
  notes: z.array(z.string()).default(() => []),
});

/** model.json, checked and parsed: everything but the graph bytes. */
export interface ModelMetadata {
  dir: string;
  metadataPath: string;
  onnxPath: string;
  metadata: ExportMetadata;
  config: ModelConfig;
  labels: LabelSpaces;
  /** The title vocabulary (undefined when the model does not read titles). */
  vocabulary?: TokenVocabulary;
  /** sha256 of model.onnx as model.json records it: the model's identity. */
  sha256: string;
  /**
   * Identity of the embedding output (sha256 of the backbone below the heads):
   * what stored embeddings and index versions are keyed by, so a heads-only
   * retrain keeps them.
   */
  embeddingSha256: string;
  onnxBytes: number;
  embeddingDim: number;
  /** Width of category_probs (0 without a category head). */
  numCategories: number;
  /** Width of tag_probs (0 without a tag head). */
  numTags: number;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface ModelBundle extends ModelMetadata {
  /** model.onnx, verified against sha256 and size. */
  onnx: Uint8Array;
}

function exportHint(dir: string): string {
  return `export the trained model first: vidrecall export --model ${dir}`;
}

/** Reads and validates `dir`/model.json. Synchronous: it is a small file. */
export function readModelMetadata(dir: string): ModelMetadata {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new ModelBundleError("missing", `no model directory at ${dir}`);
  const metadataPath = join(root, METADATA_FILE);
  if (!existsSync(metadataPath)) throw new ModelBundleError("missing", `${join(dir, METADATA_FILE)} not found: ${exportHint(dir)}`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(metadataPath, "utf8"));
  } catch (err) {
    throw new ModelBundleError("corrupt", `${join(dir, METADATA_FILE)} is not valid JSON (${(err as Error).message}): ${exportHint(dir)}`);
  }
  const parsed = MetadataSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ModelBundleError("invalid", `${join(dir, METADATA_FILE)}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const m = parsed.data;
  const where = join(dir, METADATA_FILE);
  // model.json must not send us outside the model directory.
  if (basename(m.onnx.file) !== m.onnx.file || m.onnx.file === "." || m.onnx.file === "..") {
    throw new ModelBundleError("invalid", `${where}: onnx.file must be a file name in the model directory, got "${m.onnx.file}"`);
  }
  let config: ModelConfig;
  try {
    config = parseModelConfig(m.config, where);
  } catch (err) {
    throw new ModelBundleError("invalid", (err as Error).message);
  }
  let vocabulary: TokenVocabulary | undefined;
  if (config.input.useTitle) {
    if (!m.vocabulary) throw new ModelBundleError("invalid", `${where}: the model reads titles but has no vocabulary`);
    try {
      vocabulary = new TokenVocabulary(m.vocabulary);
    } catch (err) {
      throw new ModelBundleError("invalid", `${where}: vocabulary: ${(err as Error).message}`);
    }
  }
  const outputWidth = (name: string): number => {
    const spec = m.outputs.find((o) => o.name === name);
    if (!spec) return 0;
    const width = spec.shape[1];
    if (spec.shape.length !== 2 || typeof width !== "number") throw new ModelBundleError("invalid", `${where}: output ${name} must have shape [batch, n], got [${spec.shape.join(", ")}]`);
    return width;
  };
  const embeddingDim = outputWidth("embedding");
  if (embeddingDim === 0) throw new ModelBundleError("invalid", `${where}: the model has no embedding output`);
  const numCategories = outputWidth("category_probs");
  const numTags = outputWidth("tag_probs");
  if (numCategories !== 0 && numCategories !== m.labels.categories.length) {
    throw new ModelBundleError("invalid", `${where}: category_probs has ${numCategories} columns but labels.categories has ${m.labels.categories.length} names`);
  }
  if (numTags !== 0 && numTags !== m.labels.tags.length) {
    throw new ModelBundleError("invalid", `${where}: tag_probs has ${numTags} columns but labels.tags has ${m.labels.tags.length} names`);
  }
  return {
    dir: root,
    metadataPath,
    onnxPath: join(root, m.onnx.file),
    metadata: { ...m, config } as ExportMetadata,
    config,
    labels: m.labels,
    vocabulary,
    sha256: m.onnx.sha256,
    embeddingSha256: m.embedding?.sha256 ?? m.onnx.sha256,
    onnxBytes: m.onnx.bytes,
    embeddingDim,
    numCategories,
    numTags,
    inputs: m.inputs,
    outputs: m.outputs,
  };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Reads model.onnx and checks it is the file model.json describes (size, then sha256). */
export async function readVerifiedOnnx(onnxPath: string, expected: { sha256: string; bytes: number }): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(onnxPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ModelBundleError("missing", `${onnxPath} not found: model.json names it, re-export the model`);
    throw new ModelBundleError("missing", `cannot read ${onnxPath}: ${(err as Error).message}`);
  }
  if (bytes.byteLength !== expected.bytes) {
    throw new ModelBundleError("corrupt", `${onnxPath} has ${bytes.byteLength} bytes, model.json says ${expected.bytes}: the file is truncated or from another export; re-export the model`);
  }
  const actual = sha256Hex(bytes);
  if (actual !== expected.sha256) {
    throw new ModelBundleError(
      "corrupt",
      `${onnxPath} does not match model.json (sha256 ${actual.slice(0, 16)}…, expected ${expected.sha256.slice(0, 16)}…): the file is corrupt or from another export; re-export the model`,
    );
  }
  return bytes;
}

/** model.json and a verified model.onnx. */
export async function loadModelBundle(dir: string): Promise<ModelBundle> {
  const meta = readModelMetadata(dir);
  const onnx = await readVerifiedOnnx(meta.onnxPath, { sha256: meta.sha256, bytes: meta.onnxBytes });
  return { ...meta, onnx };
}

/**
 * Checks a session's declared inputs and outputs against the I/O contract in
 * model.json (names only: onnxruntime checks shapes and types at run time).
 */
export function checkSessionContract(
  where: string,
  expected: { inputs: readonly string[]; outputs: readonly string[] },
  session: { inputNames: readonly string[]; outputNames: readonly string[] },
): void {
  const diff = (what: string, want: readonly string[], have: readonly string[]) => {
    const missing = want.filter((n) => !have.includes(n));
    const extra = have.filter((n) => !want.includes(n));
    if (missing.length || extra.length) {
      const parts = [missing.length ? `missing ${missing.join(", ")}` : "", extra.length ? `unexpected ${extra.join(", ")}` : ""].filter(Boolean);
      throw new ModelBundleError("invalid", `${where}: graph ${what} do not match model.json (${parts.join("; ")})`);
    }
  };
  diff("inputs", expected.inputs, session.inputNames);
  diff("outputs", expected.outputs, session.outputNames);
}
