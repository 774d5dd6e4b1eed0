/**
 * Checkpoints: one self-contained file per checkpoint holding the config,
 * label spaces, title vocabulary, training position and every tensor
 * (parameters and Adam moments). Written to a temp file, fsynced and renamed,
 * so a crash never leaves a half-written checkpoint under the real name.
 *
 * Layout: "VRCKPT01" | uint32 LE header length | JSON header | padding to 4 |
 * float32 data (each tensor at its header offset, in bytes from data start).
 */
import { readFileSync } from "node:fs";
import { writeAll, writeFileAtomicWith } from "../util/files.js";
import { parseModelConfig, type LabelSpaces, type ModelConfig } from "../model/config.js";

const MAGIC = "VRCKPT01";

/** param: the weights to use; trained: the raw weights when `param` holds their moving average; adam_m/v: optimiser moments. */
export type TensorKind = "param" | "trained" | "adam_m" | "adam_v";

export interface TrainingPosition {
  /** Epoch to continue in (0-based) and how many of its batches are done. */
  epoch: number;
  batchInEpoch: number;
  /** Optimiser steps taken. */
  step: number;
  bestGap: number;
  bestStep: number;
  /** Validations since the best one (for early stopping). */
  evalsSinceBest: number;
  finished: boolean;
}

export interface CheckpointHeader {
  format: 1;
  createdAt: string;
  config: ModelConfig;
  labels: LabelSpaces;
  /** Title token vocabulary (id order), when the model uses titles. */
  vocabulary: string[] | null;
  position: TrainingPosition;
  /** Validation metrics at this checkpoint, if any. */
  metrics?: Record<string, number>;
  /** Which checkpoint this one continues or was fine-tuned from. */
  parent?: string;
  tensors: { name: string; kind: TensorKind; shape: number[]; offset: number; length: number }[];
}

export interface CheckpointTensor {
  name: string;
  kind: TensorKind;
  shape: number[];
  values: Float32Array;
}

export interface Checkpoint {
  header: CheckpointHeader;
  tensors: CheckpointTensor[];
}

export function writeCheckpoint(file: string, header: Omit<CheckpointHeader, "tensors" | "format">, tensors: CheckpointTensor[]): void {
  let offset = 0;
  const entries = tensors.map((t) => {
    const e = { name: t.name, kind: t.kind, shape: t.shape, offset, length: t.values.length };
    offset += t.values.length * 4;
    return e;
  });
  const json = Buffer.from(JSON.stringify({ format: 1, ...header, tensors: entries }), "utf8");
  const prefix = 8 + 4 + json.length;
  const pad = (4 - (prefix % 4)) % 4;
  const head = Buffer.alloc(prefix + pad);
  head.write(MAGIC, 0, "latin1");
  head.writeUInt32LE(json.length, 8);
  json.copy(head, 12);

  writeFileAtomicWith(file, (fd) => {
    writeAll(fd, head);
    for (const t of tensors) writeAll(fd, new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength));
  });
}

export function readCheckpoint(file: string): Checkpoint {
  const buf = readFileSync(file);
  if (buf.length < 12 || buf.toString("latin1", 0, 8) !== MAGIC) throw new Error(`${file}: not a vidrecall checkpoint`);
  const len = buf.readUInt32LE(8);
  if (12 + len > buf.length) throw new Error(`${file}: truncated checkpoint header`);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(buf.toString("utf8", 12, 12 + len)) as CheckpointHeader;
  } catch (err) {
    throw new Error(`${file}: corrupt checkpoint header: ${(err as Error).message}`);
  }
  if (header.format !== 1) throw new Error(`${file}: checkpoint format ${header.format} is not supported`);
  // Parsed again so that a checkpoint written before a config field existed gets its default.
  header.config = parseModelConfig(header.config, `${file}: config`);
  const dataStart = 12 + len + ((4 - ((12 + len) % 4)) % 4);
  const tensors = header.tensors.map((t) => {
    const start = dataStart + t.offset;
    const end = start + t.length * 4;
    if (end > buf.length) throw new Error(`${file}: truncated checkpoint (tensor ${t.name} ends past the file)`);
    const values = new Float32Array(t.length);
    new Uint8Array(values.buffer).set(buf.subarray(start, end));
    return { name: t.name, kind: t.kind, shape: t.shape, values };
  });
  return { header, tensors };
}
