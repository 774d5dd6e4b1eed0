/**
 * Picks the tfjs backend for training: libtensorflow with CUDA when
 * `@tensorflow/tfjs-node-gpu` is installed, libtensorflow on CPU with
 * `@tensorflow/tfjs-node`, else the wasm backend (pure npm, always there)
 * with its matrix products run by onnxruntime's native CPU kernels
 * and faster JavaScript Tile / Sum / Adam kernels (`wasm-ort`, see
 * accel/ortMatMul.ts and accel/wasmKernels.ts; `wasm` is the stock backend).
 * Neither native package is a dependency: they download libtensorflow at
 * install time, which some machines cannot do. Install one next to vidrecall
 * (same version as @tensorflow/tfjs, 4.22.0) to use it.
 */
import * as tf from "@tensorflow/tfjs";
import { disableOrtMatMul, disableWasmKernels, enableOrtMatMul, enableWasmKernels } from "./accel/index.js";

export const BACKENDS = ["auto", "tensorflow", "wasm-ort", "wasm", "cpu"] as const;
export type BackendChoice = (typeof BACKENDS)[number];

export interface BackendInfo {
  /** The tfjs backend name in use. */
  name: string;
  /** Human-readable: which package, GPU or not. */
  description: string;
}

async function tryImport(pkg: string): Promise<boolean> {
  try {
    // A variable specifier keeps TypeScript from resolving a package that is not a dependency.
    const spec: string = pkg;
    await import(spec);
    return true;
  } catch {
    return false;
  }
}

async function useWasm(accelerate: boolean, required: boolean): Promise<BackendInfo> {
  await import("@tensorflow/tfjs-backend-wasm");
  if (!(await tf.setBackend("wasm"))) throw new Error("the tfjs wasm backend failed to initialise");
  await tf.ready();
  if (!accelerate) {
    disableOrtMatMul();
    disableWasmKernels();
    return { name: "wasm", description: "tfjs wasm backend (SIMD, 1 thread), stock kernels" };
  }
  const status = enableOrtMatMul();
  if (status.enabled) {
    const js = enableWasmKernels();
    if (js.enabled) return { name: "wasm-ort", description: "tfjs wasm backend with onnxruntime matrix products and fused Tile/Sum/Adam kernels" };
    disableOrtMatMul();
    status.enabled = false;
    status.reason = js.reason;
  }
  disableWasmKernels();
  if (required) throw new Error(`onnxruntime matrix products unavailable: ${status.reason}`);
  process.stderr.write(`onnxruntime matrix products unavailable (${status.reason}); using the stock wasm kernels\n`);
  return { name: "wasm", description: "tfjs wasm backend (SIMD, 1 thread), stock kernels" };
}

export async function selectBackend(choice: BackendChoice = "auto"): Promise<BackendInfo> {
  switch (choice) {
    case "cpu":
      disableOrtMatMul();
      disableWasmKernels();
      await tf.setBackend("cpu");
      await tf.ready();
      return { name: "cpu", description: "tfjs cpu backend (plain JavaScript, slow)" };
    case "wasm":
      return useWasm(false, false);
    case "wasm-ort":
      return useWasm(true, true);
    case "tensorflow":
    case "auto": {
      for (const [pkg, what] of [
        ["@tensorflow/tfjs-node-gpu", "libtensorflow with CUDA (@tensorflow/tfjs-node-gpu)"],
        ["@tensorflow/tfjs-node", "libtensorflow on CPU (@tensorflow/tfjs-node)"],
      ] as const) {
        if ((await tryImport(pkg)) && (await tf.setBackend("tensorflow"))) {
          await tf.ready();
          return { name: "tensorflow", description: what };
        }
      }
      if (choice === "tensorflow") {
        throw new Error("--backend tensorflow needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node installed (see README, GPU training)");
      }
      return useWasm(true, false);
    }
  }
}
