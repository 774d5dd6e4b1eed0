import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { BENCH_TRAIN_CONFIG, BENCH_TRAIN_TAGS, syntheticBatch } from "../src/bench/trainBench.js";
import { DEFAULT_PYTHON, findRepoRoot, isUnavailable, lastJsonLine, pythonImportError, runPythonPeer } from "../src/bench/peers.js";
import { parseModelConfig, type ModelConfigInput } from "../src/model/config.js";
import { inferenceContext, trainingContext } from "../src/model/core.js";
import { batchToInputs, batchToLabels, disposeInputs, VideoModel } from "../src/model/model.js";
import { tempDir } from "./helpers/tmp.js";

// Most cases run small Node scripts through runPythonPeer (the interpreter is
// an option), so they need neither Python nor PyTorch. The cases that run
// /usr/bin/python3 skip where it is absent; none needs torch.
const dir = tempDir("vidrecall-peers-");
const node = process.execPath;
const hasPython = existsSync(DEFAULT_PYTHON);

function script(name: string, body: string): string {
  writeFileSync(join(dir, name), body);
  return name;
}

test("lastJsonLine takes the last line that is a JSON object", () => {
  const out = ['{"a": 1}', "log line", '{"videos_per_s": 12.5, "steps": 10}', "[1, 2]", "{not json", "  ", "done"].join("\n");
  assert.deepEqual(lastJsonLine(out), { videos_per_s: 12.5, steps: 10 });
  assert.deepEqual(lastJsonLine('{"x": 1}\r\n{"x": 2}\r\n'), { x: 2 });
  assert.equal(lastJsonLine("no json here\n[1]\nnull\n"), undefined);
  assert.equal(lastJsonLine(""), undefined);
});

test("pythonImportError reads the final ImportError of a traceback", () => {
  const tb = 'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    import torch\nModuleNotFoundError: No module named \'torch\'\n';
  assert.equal(pythonImportError(tb), "No module named 'torch'");
  assert.equal(pythonImportError("ImportError: libtorch_cpu.so: cannot open shared object file\n"), "libtorch_cpu.so: cannot open shared object file");
  assert.equal(pythonImportError("ValueError: bad\n"), undefined);
});

test("the repository root is found from the module's location and holds the peers", () => {
  const root = findRepoRoot();
  for (const f of ["train_nextvlad.py", "infer_nextvlad.py", "bench_model.py", "README.md"]) {
    assert.ok(existsSync(join(root, "bench", "peers", f)), `bench/peers/${f} under ${root}`);
  }
});

test("runPythonPeer returns the last JSON line and passes the arguments", async () => {
  const name = script(
    "multi.js",
    `console.log(JSON.stringify({ progress: 1 }));
     console.log("warming up");
     console.log(JSON.stringify({ progress: 2 }));
     console.log(JSON.stringify({ result: true, args: process.argv.slice(2) }));
     console.log("bye");`,
  );
  const r = await runPythonPeer(name, ["--threads", "2", "--steps", "3"], 30_000, { python: node, peersDir: dir });
  assert.deepEqual(r, { result: true, args: ["--threads", "2", "--steps", "3"] });
  assert.equal(isUnavailable(r), false);
});

test("runPythonPeer: a missing interpreter is unavailable, not an error", async () => {
  const name = script("any.py", "print('{}')\n");
  const r = await runPythonPeer(name, [], 30_000, { python: join(dir, "no-such-python3"), peersDir: dir });
  assert.ok(isUnavailable(r), JSON.stringify(r));
  assert.match(r.unavailable, /no-such-python3.*ENOENT/);
});

test("runPythonPeer: a peer's own unavailable line is returned as unavailable", async () => {
  const name = script("says-unavailable.js", `console.log(JSON.stringify({ unavailable: "PyTorch is not importable (simulated)" })); process.exit(3);`);
  const r = await runPythonPeer(name, [], 30_000, { python: node, peersDir: dir });
  assert.deepEqual(r, { unavailable: "PyTorch is not importable (simulated)" });
});

test("runPythonPeer: dying of an ImportError is unavailable", async () => {
  const name = script(
    "import-error.js",
    `process.stderr.write("Traceback (most recent call last):\\n  File \\"t.py\\", line 1\\nModuleNotFoundError: No module named 'torch'\\n"); process.exit(1);`,
  );
  const r = await runPythonPeer(name, [], 30_000, { python: node, peersDir: dir });
  assert.ok(isUnavailable(r), JSON.stringify(r));
  assert.match(r.unavailable, /No module named 'torch'/);
});

test("runPythonPeer: a real Python ImportError is unavailable", { skip: !hasPython && `${DEFAULT_PYTHON} is not installed` }, async () => {
  const name = script("imports-missing.py", "import vidrecall_no_such_module_7f3a\nprint('{\"never\": 1}')\n");
  const r = await runPythonPeer(name, [], 60_000, { peersDir: dir });
  assert.ok(isUnavailable(r), JSON.stringify(r));
  assert.match(r.unavailable, /No module named 'vidrecall_no_such_module_7f3a'/);
});

test("the real peers report unavailable when torch cannot be imported", { skip: !hasPython && `${DEFAULT_PYTHON} is not installed` }, async () => {
  // A `torch` package earlier on the path that fails to import hides any installed PyTorch.
  const fake = join(dir, "fake-site", "torch");
  mkdirSync(fake, { recursive: true });
  writeFileSync(join(fake, "__init__.py"), "raise ImportError('simulated: torch is absent')\n");
  for (const peer of ["train_nextvlad.py", "infer_nextvlad.py"]) {
    const r = await runPythonPeer(peer, [], 60_000, { env: { PYTHONPATH: join(dir, "fake-site") } });
    assert.ok(isUnavailable(r), `${peer}: ${JSON.stringify(r)}`);
    assert.match(r.unavailable, /PyTorch is not importable \(simulated: torch is absent\)/, peer);
  }
});

test("runPythonPeer: a crash that is not an ImportError rejects with the peer's stderr", async () => {
  const name = script("crash.js", `console.log("{\\"partial\\": 1}"); process.stderr.write("ValueError: shapes do not match\\n"); process.exit(1);`);
  await assert.rejects(runPythonPeer(name, [], 30_000, { python: node, peersDir: dir }), /exited with status 1[\s\S]*ValueError: shapes do not match/);
  const quiet = script("no-json.js", `console.log("finished, but no result");`);
  await assert.rejects(runPythonPeer(quiet, [], 30_000, { python: node, peersDir: dir }), /printed no JSON line/);
});

test("runPythonPeer is bounded by its timeout", async () => {
  const name = script("hangs.js", `console.log(JSON.stringify({ started: true })); setTimeout(() => {}, 60_000);`);
  const t0 = performance.now();
  await assert.rejects(runPythonPeer(name, [], 500, { python: node, peersDir: dir }), /timed out after 500 ms/);
  assert.ok(performance.now() - t0 < 10_000, "the peer was killed at the timeout");
});

test("runPythonPeer refuses script paths outside the peers directory", async () => {
  await assert.rejects(runPythonPeer("../src/cli/main.js", [], 1000), /file name in the peers directory/);
  await assert.rejects(runPythonPeer("does_not_exist.py", [], 1000), /no peer script/);
});

test("the PyTorch peer has as many trainable parameters as the tfjs bench model (skipped without torch)", async (t) => {
  const r = await runPythonPeer("train_nextvlad.py", ["--count-params"], 120_000);
  if (isUnavailable(r)) {
    t.skip(r.unavailable);
    return;
  }
  await tf.setBackend("cpu");
  const labels = { categories: ["a", "b"], tags: Array.from({ length: BENCH_TRAIN_TAGS }, (_, i) => `tag${i}`) };
  const model = new VideoModel(parseModelConfig(BENCH_TRAIN_CONFIG), labels, 2);
  try {
    assert.equal(r.params, model.params.countTrainable());
  } finally {
    model.dispose();
  }
});

/** Writes float32 tensors to dir/tensors.bin with dir/manifest.json (the format check_parity.py reads). */
function writeTensors(out: string, tensors: [string, number[], Float32Array][]): void {
  mkdirSync(out, { recursive: true });
  const fd = openSync(join(out, "tensors.bin"), "w");
  const manifest: { name: string; shape: number[]; offset: number }[] = [];
  let offset = 0;
  try {
    for (const [name, shape, values] of tensors) {
      manifest.push({ name, shape, offset });
      writeSync(fd, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      offset += values.byteLength;
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(join(out, "manifest.json"), JSON.stringify({ tensors: manifest }));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return { diff, scale };
}

test("the PyTorch peer computes what the tfjs bench model computes, given its weights (skipped without torch)", async (t) => {
  const probe = await runPythonPeer("train_nextvlad.py", ["--count-params"], 120_000);
  if (isUnavailable(probe)) {
    t.skip(probe.unavailable);
    return;
  }
  await tf.setBackend("cpu");
  // Dropout off on both sides, so that training mode (batch statistics) is deterministic too.
  const raw = structuredClone(BENCH_TRAIN_CONFIG) as ModelConfigInput & { encoders: Record<string, { dropout?: number }>; fusion: { dropout?: number } };
  for (const e of Object.values(raw.encoders)) e.dropout = 0;
  raw.fusion.dropout = 0;
  const config = parseModelConfig(raw);
  const labels = { categories: ["a", "b"], tags: Array.from({ length: BENCH_TRAIN_TAGS }, (_, i) => `tag${i}`) };
  const model = new VideoModel(config, labels, 2);
  const batch = syntheticBatch(config, 4, BENCH_TRAIN_TAGS, 5);
  const inputs = batchToInputs(batch, model);
  const y = batchToLabels(batch);
  try {
    // Batch-norm parameters away from their 1/0 initial values, so that a swapped gamma/beta or
    // mean/variance, or moving statistics ignored in eval mode, would show.
    let seed = 11;
    for (const [name, p] of model.params.entries()) {
      const range = name.endsWith("/gamma") || name.endsWith("/moving_variance") ? [0.5, 1.5] : name.endsWith("/beta") || name.endsWith("/moving_mean") ? [-0.2, 0.2] : undefined;
      if (range) tf.tidy(() => p.variable.assign(tf.randomUniform(p.variable.shape, range[0], range[1], "float32", seed++)));
    }
    const tensors: [string, number[], Float32Array][] = model.params.entries().map(([name, p]) => [name, p.variable.shape, p.variable.dataSync() as Float32Array]);
    for (const [m, input] of Object.entries(inputs.modalities)) {
      tensors.push([`input/${m}/values`, input.values.shape, input.values.dataSync() as Float32Array]);
      tensors.push([`input/${m}/mask`, input.mask.shape, input.mask.dataSync() as Float32Array]);
      tensors.push([`input/${m}/present`, input.present.shape, input.present.dataSync() as Float32Array]);
    }
    tensors.push(["labels/tags", y.tags.shape, y.tags.dataSync() as Float32Array]);
    const out = join(dir, "parity");
    writeTensors(out, tensors);

    const ours: Record<string, { embedding: Float32Array; tag_logits: Float32Array; loss: number }> = {};
    for (const mode of ["eval", "train"]) {
      const ctx = mode === "eval" ? inferenceContext() : trainingContext(1, true);
      const o = model.forward(inputs, ctx);
      const loss = model.computeLoss(o, y).total;
      ours[mode] = { embedding: o.embedding.dataSync() as Float32Array, tag_logits: o.tagLogits!.dataSync() as Float32Array, loss: loss.dataSync()[0] };
      tf.dispose([o.fused, o.embedding, o.tagLogits!, loss]);
      if (ctx.statUpdates) tf.dispose(ctx.statUpdates.map((u) => u.value));
    }

    const peer = await runPythonPeer("check_parity.py", [out], 300_000);
    assert.ok(!isUnavailable(peer), JSON.stringify(peer));
    assert.equal(peer.loaded, model.params.entries().length, "every tfjs parameter (moving statistics included) loaded");
    for (const mode of ["eval", "train"]) {
      const theirs = peer[mode] as { embedding: number[]; tag_logits: number[]; loss: number };
      const e = maxAbsDiff(ours[mode].embedding, theirs.embedding);
      const l = maxAbsDiff(ours[mode].tag_logits, theirs.tag_logits);
      t.diagnostic(`${mode}: embedding max |Δ| ${e.diff.toExponential(2)} (max |x| ${e.scale.toFixed(3)}), tag logits ${l.diff.toExponential(2)} (${l.scale.toFixed(3)}), loss ${ours[mode].loss} vs ${theirs.loss}`);
      assert.ok(e.diff <= 1e-4, `${mode}: embeddings differ by ${e.diff}`);
      assert.ok(l.diff <= 1e-3 * Math.max(1, l.scale), `${mode}: tag logits differ by ${l.diff}`);
      assert.ok(Math.abs(ours[mode].loss - theirs.loss) <= 1e-4 * Math.max(1, Math.abs(ours[mode].loss)), `${mode}: loss ${ours[mode].loss} vs ${theirs.loss}`);
    }
  } finally {
    disposeInputs(inputs, y);
    model.dispose();
  }
});
