/**
 * `vidrecall export-model`: ONNX export of a trained model (model.onnx +
 * model.json) for onnxruntime serving. Not named `export`: that is the store's
 * JSONL export (dataCommands.ts), and commander refuses two commands with one
 * name.
 */
import { basename, dirname } from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { Command } from "commander";
import { DEFAULT_TOLERANCE, exportModel } from "../export/exportModel.js";
import { loadTrainedModel } from "../train/modelFiles.js";

export interface ExportCommandOptions {
  model: string;
  out?: string;
  verify: boolean;
}

/** Runs the export; returns the lines it prints. */
export async function runExportCommand(opts: ExportCommandOptions): Promise<string[]> {
  // The checkpoint's variables need a backend; cpu is always there and the parity check is one small batch.
  await tf.setBackend("cpu");
  await tf.ready();
  const loaded = loadTrainedModel(opts.model);
  try {
    const out = opts.out ?? (opts.model.endsWith(".ckpt") ? dirname(opts.model) : opts.model);
    const result = await exportModel(loaded, out, opts.verify ? { verify: {} } : {});
    const m = result.metadata;
    const lines = [
      `exported ${basename(loaded.file)} (step ${m.source.step}) to ${result.onnxPath} (${(m.onnx.bytes / 1e6).toFixed(1)} MB, ${result.build.nodes} nodes, opset ${m.onnx.opset})`,
      `metadata: ${result.metadataPath} (sha256 ${m.onnx.sha256.slice(0, 16)}…)`,
      `inputs: ${m.inputs.map((i) => i.name).join(", ")}; outputs: ${m.outputs.map((o) => o.name).join(", ")}`,
    ];
    if (result.parity) {
      const errs = Object.entries(result.parity.errors).map(([k, e]) => `${k} ${e.toExponential(1)}`);
      lines.push(`parity with tfjs (relative error, limit ${DEFAULT_TOLERANCE}): ${errs.join(", ")}`);
    }
    return lines;
  } finally {
    loaded.model.dispose();
  }
}

export function registerExportCommand(program: Command, name = "export"): void {
  program
    .command(name)
    .description("export a trained model to ONNX (model.onnx + model.json) for onnxruntime serving")
    .requiredOption("--model <dir|ckpt>", "model directory (its best checkpoint) or a .ckpt file")
    .option("--out <dir>", "output directory (default: the model directory)")
    .option("--no-verify", "skip the parity check against tfjs on random inputs before writing")
    .action(async (opts: ExportCommandOptions) => {
      for (const line of await runExportCommand(opts)) process.stdout.write(line + "\n");
    });
}
