/**
 * Deterministic train/validate/test assignment from a hash of the video id, so
 * a video keeps its split across re-imports and machines without any state.
 */
import { createHash } from "node:crypto";
import { z } from "zod";

export const SPLITS = ["train", "validate", "test"] as const;
export type Split = (typeof SPLITS)[number];
export const SplitSchema = z.enum(SPLITS);

export interface SplitFractions {
  train: number;
  validate: number;
  test: number;
}

export const DEFAULT_SPLIT_FRACTIONS: SplitFractions = { train: 0.8, validate: 0.1, test: 0.1 };

export function parseSplitFractions(text: string): SplitFractions {
  // "0.8,0.1,0.1" → train, validate, test.
  const parts = text.split(",").map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0)) {
    throw new Error(`split fractions must be three non-negative numbers "train,validate,test", got "${text}"`);
  }
  return validateFractions({ train: parts[0], validate: parts[1], test: parts[2] });
}

export function validateFractions(f: SplitFractions): SplitFractions {
  const sum = f.train + f.validate + f.test;
  if (Math.abs(sum - 1) > 1e-6) throw new Error(`split fractions must sum to 1, got ${sum}`);
  return f;
}

/** Position of the id in [0, 1): the first 48 bits of its SHA-256. */
export function idHashUnit(id: string): number {
  const digest = createHash("sha256").update(id, "utf8").digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

export function assignSplit(id: string, fractions: SplitFractions = DEFAULT_SPLIT_FRACTIONS): Split {
  const u = idHashUnit(id);
  if (u < fractions.train) return "train";
  if (u < fractions.train + fractions.validate) return "validate";
  return "test";
}
