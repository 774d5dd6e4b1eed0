/**
 * `bench train`'s result: ours (the auto-preferred backend), the PyTorch peer
 * run right after it, their ratio and peak RSS. No timing assertions: only
 * that the numbers are there and consistent.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { benchTrain } from "../src/bench/trainBench.js";
import { isUnavailable } from "../src/bench/peers.js";

test("bench train reports ours, the PyTorch peer, their ratio and peak RSS", { timeout: 10 * 60_000 }, async () => {
  // wasm listed first: ours is still wasm-ort, the backend auto prefers.
  const r = await benchTrain({ backends: ["wasm", "wasm-ort"], steps: 1, cpuSteps: 1 });
  assert.deepEqual(Object.keys(r.backends).sort(), ["wasm", "wasm-ort"], "both measured");
  assert.equal(r.ours_backend, "wasm-ort", "ours is the auto-preferred backend");
  assert.equal(r.ours_videos_per_s, r.backends["wasm-ort"].videos_per_s, "ours_videos_per_s");
  assert.ok(r.peak_rss_mb > 0 && r.process_peak_rss_mb >= r.peak_rss_mb, `peak RSS ${r.peak_rss_mb} / ${r.process_peak_rss_mb}`);
  if ("skipped" in r.pytorch || isUnavailable(r.pytorch)) {
    assert.equal(r.pytorch_videos_per_s, null, "no peer number without PyTorch");
    assert.equal(r.ratio, null, "no ratio without PyTorch");
  } else {
    assert.equal(r.pytorch.steps, 1, "the peer ran the same step count");
    assert.equal(r.pytorch.threads, 2, "and the same thread count");
    assert.ok(r.pytorch_videos_per_s !== null && r.pytorch_videos_per_s > 0, `peer videos/s ${r.pytorch_videos_per_s}`);
    assert.ok(Math.abs(r.ratio! - r.ours_videos_per_s! / r.pytorch_videos_per_s!) < 1e-12, "ratio = ours / PyTorch");
  }
});

test("bench train without the peer", async () => {
  const r = await benchTrain({ backends: ["wasm-ort"], steps: 1, cpuSteps: 1, peer: false });
  assert.deepEqual(r.pytorch, { skipped: true }, "peer skipped");
  assert.equal(r.ratio, null, "no ratio");
  assert.ok(r.ours_videos_per_s !== null && r.ours_videos_per_s > 0, "ours measured");
});
