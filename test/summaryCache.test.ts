/**
 * SummaryCache (what /similar attaches to each hit): answers from memory, but
 * never staler than the last commit — the server's own writes and another
 * process's writes to the same database both show up on the next lookup.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { VideoStore } from "../src/data/store.js";
import { SummaryCache } from "../src/service/summaryCache.js";
import { tempDir } from "./helpers/tmp.js";

const rgb = { matrix: { frames: 1, dim: 2, values: Float32Array.from([0.5, -0.5]) }, encoding: "float16" as const };

function seed(store: VideoStore): void {
  store.upsertVideos(
    [
      { id: "a", title: "first", features: { rgb }, category: "music", tags: ["guitar", "live"] },
      { id: "b", title: "second", features: { rgb }, category: "sports", tags: ["goal"] },
    ],
    { source: "test" },
  );
}

describe("SummaryCache", () => {
  it("preload reads the summaries ahead, in chunks, up to the entry limit; later lookups read nothing", () => {
    const store = VideoStore.open(join(tempDir(), "p.sqlite"));
    try {
      seed(store);
      // Count the store's summary reads (the real method runs).
      const read = store.videoSummaries.bind(store);
      const calls: number[] = [];
      store.videoSummaries = (ids) => {
        calls.push(ids.length);
        return read(ids);
      };
      const cache = new SummaryCache(store);
      assert.equal(cache.preload(["a", "b", "gone"], 2), 2, "the stored ones are cached");
      assert.deepEqual(calls, [2, 1], "two chunks of at most 2 ids");
      const got = cache.get(["a", "b", "gone"]);
      assert.deepEqual([...got.keys()].sort(), ["a", "b"]);
      assert.deepEqual(calls, [2, 1], "no read after the preload (a missing id is remembered as missing too)");
      const small = new SummaryCache(store, 1);
      assert.equal(small.preload(["a", "b"]), 1, "at most the entry limit");
    } finally {
      store.close();
    }
  });

  it("returns the store's summaries and leaves unknown ids out", () => {
    const store = VideoStore.open(join(tempDir(), "s.sqlite"));
    try {
      seed(store);
      const cache = new SummaryCache(store);
      const got = cache.get(["b", "nope", "a"]);
      assert.deepEqual([...got.keys()].sort(), ["a", "b"], "unknown ids are absent");
      assert.deepEqual(got.get("a"), store.videoSummaries(["a"]).get("a"), "the same summary as the store's");
      assert.equal(got.get("b")!.category, "sports", "category name");
      assert.deepEqual(cache.get(["a"]).get("a")!.tags, ["guitar", "live"], "a second lookup (from memory) is the same");
    } finally {
      store.close();
    }
  });

  it("sees the server's own writes on the next lookup", () => {
    const store = VideoStore.open(join(tempDir(), "own.sqlite"));
    try {
      seed(store);
      const cache = new SummaryCache(store);
      assert.equal(cache.get(["a"]).get("a")!.title, "first", "warm the cache");
      store.setLabels("a", "tags", ["studio"], "manual");
      assert.deepEqual(cache.get(["a"]).get("a")!.tags, ["studio"], "a label change on this connection is seen");
      store.deleteVideo("b");
      assert.equal(cache.get(["b"]).has("b"), false, "a deleted video is gone");
      assert.equal(cache.get(["c"]).has("c"), false, "not stored yet");
      store.upsertVideos([{ id: "c", title: "third", features: { rgb } }], { source: "test" });
      assert.equal(cache.get(["c"]).get("c")!.title, "third", "a video stored after a miss is found");
    } finally {
      store.close();
    }
  });

  it("sees another connection's commits on the next lookup", () => {
    const file = join(tempDir(), "other.sqlite");
    const store = VideoStore.open(file);
    const other = VideoStore.open(file);
    try {
      seed(store);
      const cache = new SummaryCache(store);
      assert.equal(cache.get(["a"]).get("a")!.title, "first", "warm the cache");
      other.upsertVideos([{ id: "a", title: "renamed", features: { rgb } }], { source: "other process" });
      assert.equal(cache.get(["a"]).get("a")!.title, "renamed", "another connection's title change is seen");
      other.setLabels("a", "category", ["news"], "manual");
      assert.equal(cache.get(["a"]).get("a")!.category, "news", "another connection's label change is seen");
    } finally {
      other.close();
      store.close();
    }
  });

  it("stays correct past its size bound", () => {
    const store = VideoStore.open(join(tempDir(), "bound.sqlite"));
    try {
      seed(store);
      const cache = new SummaryCache(store, 1);
      for (let i = 0; i < 3; i++) {
        assert.equal(cache.get(["a"]).get("a")!.title, "first", `round ${i}: a`);
        assert.equal(cache.get(["b"]).get("b")!.title, "second", `round ${i}: b`);
      }
    } finally {
      store.close();
    }
  });
});
