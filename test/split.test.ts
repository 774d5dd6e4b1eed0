import assert from "node:assert/strict";
import { test } from "node:test";
import { assignSplit, idHashUnit, parseSplitFractions } from "../src/data/split.js";
import { tokenize, TokenVocabulary } from "../src/data/tokenize.js";

test("split assignment is deterministic and follows the fractions", () => {
  const ids = Array.from({ length: 20_000 }, (_, i) => `video-${i}`);
  const first = ids.map((id) => assignSplit(id));
  const second = ids.map((id) => assignSplit(id));
  assert.deepEqual(first, second);
  // Known values pin the hash so a change of algorithm cannot pass unnoticed.
  assert.equal(idHashUnit("a").toFixed(6), "0.791374");
  assert.equal(idHashUnit("b").toFixed(6), "0.242735");
  assert.equal(assignSplit("a", { train: 0.79, validate: 0.01, test: 0.2 }), "validate");
  const counts = { train: 0, validate: 0, test: 0 };
  for (const s of first) counts[s]++;
  assert.ok(Math.abs(counts.train / ids.length - 0.8) < 0.015, JSON.stringify(counts));
  assert.ok(Math.abs(counts.validate / ids.length - 0.1) < 0.015, JSON.stringify(counts));
  const custom = ids.map((id) => assignSplit(id, parseSplitFractions("0.5,0.5,0")));
  assert.ok(!custom.includes("test"));
});

test("split fractions are validated", () => {
  assert.throws(() => parseSplitFractions("0.8,0.1"), /three non-negative numbers/);
  assert.throws(() => parseSplitFractions("0.8,0.3,0.1"), /sum to 1/);
});

test("tokenisation handles spaced scripts, Chinese and Japanese", () => {
  assert.deepEqual(tokenize("Hello, World! Ｆｕｌｌ-width 2024"), ["hello", "world", "full", "width", "2024"]);
  const zh = tokenize("我爱北京天安门");
  assert.ok(zh.length >= 3, `Chinese title segmented into words: ${zh.join("|")}`);
  assert.equal(zh.join(""), "我爱北京天安门");
  const ja = tokenize("東京タワーに行きました");
  assert.ok(ja.length >= 3 && ja.join("") === "東京タワーに行きました", ja.join("|"));
});

test("token vocabulary: min count, reserved ids, unknown tokens", () => {
  const { vocabulary } = TokenVocabulary.build(["cat video", "cat music", "dog"], 2);
  assert.deepEqual(vocabulary.tokens, ["<pad>", "<unk>", "cat"]);
  assert.deepEqual(vocabulary.encode("Cat dog cat"), [2, 1, 2]);
  assert.deepEqual(vocabulary.encode("cat cat cat", 2), [2, 2]);
});
