/** Reading configs and trained models from disk. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";
import { TokenVocabulary } from "../data/tokenize.js";
import { parseModelConfig, type ModelConfig } from "../model/config.js";
import { VideoModel } from "../model/model.js";
import { PRESETS, presetNames } from "../model/presets.js";
import { readCheckpoint, type Checkpoint } from "./checkpoint.js";
import { BEST_CHECKPOINT, loadParams } from "./trainer.js";

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Deep merge for config overrides: objects merge, everything else replaces. */
export function mergeConfig(base: unknown, override: unknown): unknown {
  if (!isObject(base) || !isObject(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = k in base ? mergeConfig(base[k], v) : v;
  return out;
}

/**
 * A config from a preset name, or a JSON/YAML file that may itself name a
 * preset (`preset: video-level`) and override fields of it.
 */
export function loadModelConfig(spec: string): ModelConfig {
  if (PRESETS[spec]) return parseModelConfig(PRESETS[spec], `preset ${spec}`);
  if (!existsSync(spec)) throw new Error(`config "${spec}" is neither a preset (${presetNames().join(", ")}) nor a file`);
  let raw: unknown;
  try {
    raw = YAML.parse(readFileSync(spec, "utf8"));
  } catch (err) {
    throw new Error(`${spec}: cannot parse as YAML/JSON: ${(err as Error).message}`);
  }
  if (isObject(raw) && typeof raw.preset === "string") {
    const preset = PRESETS[raw.preset];
    if (!preset) throw new Error(`${spec}: unknown preset "${raw.preset}" (known: ${presetNames().join(", ")})`);
    const { preset: _preset, ...rest } = raw;
    raw = mergeConfig(preset, rest);
  }
  return parseModelConfig(raw, spec);
}

export interface LoadedModel {
  model: VideoModel;
  checkpoint: Checkpoint;
  vocabulary?: TokenVocabulary;
  file: string;
}

/** A trained model from a model directory (its best checkpoint) or a checkpoint file. */
export function loadTrainedModel(path: string): LoadedModel {
  const file = path.endsWith(".ckpt") ? path : join(path, BEST_CHECKPOINT);
  if (!existsSync(file)) throw new Error(`no trained model at ${path} (expected ${file})`);
  const checkpoint = readCheckpoint(file);
  const h = checkpoint.header;
  const vocabulary = h.vocabulary ? new TokenVocabulary(h.vocabulary) : undefined;
  const model = new VideoModel(h.config as ModelConfig, h.labels, vocabulary?.size ?? 2);
  loadParams(model, checkpoint.tensors, file);
  return { model, checkpoint, vocabulary, file };
}
