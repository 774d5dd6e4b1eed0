/**
 * Token embedding for titles: a trainable [vocabSize, dim] table, id 0 = pad,
 * id 1 = unknown word. Optionally initialised from pretrained word vectors in
 * word2vec / GloVe text format (the reference used 200-d pretrained, trainable
 * vectors; end-to-end title training was one of its larger gains).
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import type { ParamScope } from "../core.js";
import { gatherRows } from "../layers.js";

export const PAD_ID = 0;
export const UNK_ID = 1;

export const EmbeddingConfig = z.object({
  /** Rows of the table, including the pad (0) and unknown (1) ids. */
  vocabSize: z.number().int().min(2),
  dim: z.number().int().positive().default(200),
  /** False freezes the table (e.g. pretrained vectors kept as they are). */
  trainable: z.boolean().default(true),
});
export type EmbeddingConfig = z.infer<typeof EmbeddingConfig>;

export class TokenEmbedding {
  readonly table: tf.Variable;
  readonly vocabSize: number;
  readonly dim: number;

  constructor(scope: ParamScope, config: z.input<typeof EmbeddingConfig>) {
    const c = EmbeddingConfig.parse(config);
    this.vocabSize = c.vocabSize;
    this.dim = c.dim;
    // Same small uniform range as a Keras Embedding's default.
    this.table = scope.get("table", [c.vocabSize, c.dim], "uniformSmall", c.trainable);
  }

  /**
   * ids [B, L] int32 → [B, L, dim]. Pad positions (id 0) come out as exact
   * zeros whatever row 0 holds, so a consumer that forgets the mask still
   * sees no signal there. An id outside [0, vocabSize) is an error.
   */
  lookup(ids: tf.Tensor2D): tf.Tensor3D {
    if (ids.dtype !== "int32") throw new Error(`TokenEmbedding.lookup: ids must be int32, got ${ids.dtype}`);
    const [b, l] = ids.shape;
    // gather does not range-check on every backend (wasm reads past the table).
    const values = ids.dataSync();
    for (const id of values) {
      if (id < 0 || id >= this.vocabSize) throw new Error(`TokenEmbedding.lookup: id ${id} outside [0, ${this.vocabSize})`);
    }
    return tf.tidy(() => {
      const flat = ids.reshape([b * l]) as tf.Tensor1D;
      const rows = gatherRows(this.table as tf.Tensor2D, flat);
      const notPad = tf.cast(tf.notEqual(flat, PAD_ID), "float32").reshape([b * l, 1]);
      return tf.mul(rows, notPad).reshape([b, l, this.dim]) as tf.Tensor3D;
    });
  }

  /**
   * Copies the rows found in `vectors` into the table; rows of words not in
   * the file keep their random initialisation. Row 0 (pad) is never written.
   */
  initFromWordVectors(vectors: WordVectors): void {
    if (vectors.dim !== this.dim) throw new Error(`word vectors are ${vectors.dim}-d, embedding is ${this.dim}-d`);
    if (vectors.rows > this.vocabSize) throw new Error(`word vectors cover ${vectors.rows} ids, embedding has ${this.vocabSize} rows`);
    const current = this.table.dataSync() as Float32Array;
    const next = new Float32Array(current);
    for (let id = 1; id < vectors.rows; id++) {
      if (!vectors.found[id]) continue;
      next.set(vectors.values.subarray(id * this.dim, (id + 1) * this.dim), id * this.dim);
    }
    const t = tf.tensor2d(next, [this.vocabSize, this.dim]);
    this.table.assign(t);
    t.dispose();
  }
}


/** Pretrained vectors laid out by vocabulary id. */
export interface WordVectors {
  dim: number;
  /** Number of ids covered: values has rows × dim entries. */
  rows: number;
  values: Float32Array;
  /** 1 where the id's word was in the file. */
  found: Uint8Array;
  /** How many distinct vocabulary ids were filled. */
  foundCount: number;
  /** Vectors lines read (excluding a header and blank lines). */
  linesRead: number;
}

/**
 * Streams a word2vec/GloVe text file ("word v1 … vD" per line; an optional
 * word2vec header "N D" on the first line) and keeps the vectors of words in
 * `vocabulary` (a word → id map, or an array whose index is the id). A line
 * with the wrong number of values, or a value that is not a number, is an
 * error naming the file and line; a header whose D differs from `dim` too.
 */
export async function loadWordVectors(path: string, vocabulary: Map<string, number> | string[], dim: number): Promise<WordVectors> {
  const ids = Array.isArray(vocabulary) ? new Map(vocabulary.map((w, i) => [w, i] as const)) : vocabulary;
  let rows = 0;
  for (const id of ids.values()) {
    if (!Number.isInteger(id) || id < 0) throw new Error(`vocabulary id ${id} is not a non-negative integer`);
    rows = Math.max(rows, id + 1);
  }
  const values = new Float32Array(rows * dim);
  const found = new Uint8Array(rows);
  let foundCount = 0;
  let linesRead = 0;

  const input = createReadStream(path, { encoding: "utf8" });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const raw of lines) {
      lineNo++;
      // Split on ASCII blanks only: some vector files have words containing
      // Unicode spaces (e.g. U+00A0), which \s would split.
      const line = raw.replace(/^[ \t]+|[ \t\r]+$/g, "");
      if (line === "") continue;
      const fields = line.split(/[ \t]+/);
      if (lineNo === 1 && fields.length === 2 && /^\d+$/.test(fields[0]) && /^\d+$/.test(fields[1])) {
        const headerDim = Number(fields[1]);
        if (headerDim !== dim) throw new Error(`${path}:1: header says ${headerDim}-d vectors, expected ${dim}`);
        continue;
      }
      linesRead++;
      if (fields.length !== dim + 1) {
        throw new Error(`${path}:${lineNo}: expected a word and ${dim} values, got ${fields.length - 1} values`);
      }
      const id = ids.get(fields[0]);
      // Keep the first occurrence of a word. Values of words outside the
      // vocabulary are not parsed: large files are mostly such words.
      if (id === undefined || found[id]) continue;
      for (let k = 0; k < dim; k++) {
        const x = Number(fields[k + 1]);
        if (!Number.isFinite(x)) throw new Error(`${path}:${lineNo}: value ${k + 1} ("${fields[k + 1]}") is not a finite number`);
        values[id * dim + k] = x;
      }
      found[id] = 1;
      foundCount++;
    }
  } finally {
    lines.close();
    input.destroy();
  }
  return { dim, rows, values, found, foundCount, linesRead };
}
