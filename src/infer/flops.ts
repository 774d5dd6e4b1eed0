/**
 * Matrix-product FLOPs of one ORT run, counted from onnxruntime's own profile:
 * every MatMul / Gemm / FusedMatMul / FusedGemm kernel with the shapes it ran
 * on (after graph optimisation, so fused nodes count once). Elementwise ops,
 * softmax and reductions are left out: they are a small fraction here and not
 * what a GEMM ceiling measures.
 *
 * Per product: 2 · |output| · K, K the contracted dimension. The profile lists
 * only non-constant inputs, so K is read from input A: its last dim, or its
 * second to last when A is transposed (its rows then do not match the output's).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";

const PRODUCTS = new Set(["MatMul", "Gemm", "FusedMatMul", "FusedGemm"]);

interface ProfileEvent {
  cat?: string;
  name?: string;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[]; output_type_shape?: Record<string, number[]>[] };
}

export interface FlopCount {
  flops: number;
  /** Products counted, by op type. */
  kernels: Record<string, number>;
}

function shapeOf(entry: Record<string, number[]> | undefined): number[] | undefined {
  return entry ? Object.values(entry)[0] : undefined;
}

/** FLOPs of the matrix products in an ORT profile (JSON array of trace events). */
export function productFlops(events: ProfileEvent[]): FlopCount {
  let flops = 0;
  const kernels: Record<string, number> = {};
  for (const e of events) {
    const op = e.args?.op_name;
    if (e.cat !== "Node" || !op || !PRODUCTS.has(op) || !e.name?.endsWith("_kernel_time")) continue;
    const a = shapeOf(e.args?.input_type_shape?.[0]);
    const out = shapeOf(e.args?.output_type_shape?.[0]);
    if (!a || !out || a.length < 2 || out.length < 2) throw new Error(`profile: ${op} ${e.name} without usable shapes`);
    const k = a[a.length - 2] === out[out.length - 2] ? a[a.length - 1] : a[a.length - 2];
    flops += 2 * out.reduce((p, d) => p * d, 1) * k;
    kernels[op] = (kernels[op] ?? 0) + 1;
  }
  return { flops, kernels };
}

/** Runs `feeds` once through a profiling session of `model` and counts its matrix-product FLOPs. */
export async function profileProductFlops(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<FlopCount> {
  const dir = mkdtempSync(join(tmpdir(), "vidrecall-profile-"));
  try {
    const session = await ort.InferenceSession.create(model, { enableProfiling: true, profileFilePrefix: join(dir, "run"), intraOpNumThreads: 1, graphOptimizationLevel: "all" });
    try {
      await session.run(feeds);
      session.endProfiling();
    } finally {
      await session.release();
    }
    const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    if (files.length !== 1) throw new Error(`expected one ORT profile in ${dir}, found ${files.length}`);
    return productFlops(JSON.parse(readFileSync(join(dir, files[0]), "utf8")) as ProfileEvent[]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
