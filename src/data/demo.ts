/**
 * Synthetic demo data from a latent topic model, so every modality carries
 * (noisy, partial) signal about the labels:
 *
 *   category c ~ Zipf over categories; tags ~ Zipf over the category's own tags
 *   (long tail), with a few drawn from the global tag pool;
 *   latent z = prototype(c) + Σ prototype(tag) + video noise;
 *   rgb frame t   = A_rgb · (z + drift_t) + frame noise   (some frames are pure noise);
 *   audio frame t = A_audio · (z' + drift_t) + frame noise, where z' sees the tags more
 *                   weakly than the category (audio is a weaker, different view);
 *   title = words from the category's and tags' word lists mixed with filler words.
 * Some videos miss audio or the title. Everything is deterministic for a seed.
 */
import seedrandom from "seedrandom";
import type { VideoInput, VideoStore } from "./store.js";

export interface DemoOptions {
  videos: number;
  seed: number;
  frames?: number;
  rgbDim?: number;
  audioDim?: number;
  categories?: number;
  tagsPerCategory?: number;
  noise?: Partial<DemoNoise>;
  onProgress?: (done: number) => void;
}

export interface DemoSummary {
  videos: number;
  categories: number;
  tags: number;
}

const CATEGORY_NAMES = [
  "sports", "music", "cooking", "gaming", "travel", "science", "news", "comedy", "pets", "autos",
  "fashion", "fitness", "education", "art", "nature", "tech",
];

const LATENT_DIM = 32;

/** Noise levels chosen (by measurement, see README) so each modality alone is informative but clearly weaker than all together. */
export const DEMO_NOISE = {
  /** Per-video latent noise, drawn independently for rgb and audio. */
  video: 1.5,
  rgbFrame: 2.2,
  audioFrame: 2.6,
  /** Fraction of frames that carry no video signal at all. */
  noiseFrameRate: 0.25,
  missingAudio: 0.1,
  missingTitle: 0.08,
  /** Fraction of title words drawn from the category's or the tags' word lists. */
  titleSignal: 0.45,
  /** How strongly tags shape audio compared with rgb. */
  audioTagWeight: 1.0,
};
export type DemoNoise = typeof DEMO_NOISE;

class Random {
  private readonly next: () => number;
  private spare: number | undefined;
  constructor(seed: string) {
    this.next = seedrandom.alea(seed);
  }
  uniform(): number {
    return this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    // Box–Muller: two independent normals per pair of uniforms.
    const u = Math.max(this.next(), 1e-12);
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  /** Index drawn with probability proportional to weights. */
  weighted(weights: readonly number[], total: number): number {
    let x = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i];
      if (x < 0) return i;
    }
    return weights.length - 1;
  }
  vector(n: number, scale = 1): Float32Array {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = this.normal() * scale;
    return v;
  }
}

function zipf(n: number, s: number): number[] {
  return Array.from({ length: n }, (_, i) => 1 / Math.pow(i + 1, s));
}

function syllableWord(rng: Random): string {
  const c = "bcdfghjklmnprstvz";
  const v = "aeiou";
  let w = "";
  const syllables = 2 + rng.int(2);
  for (let i = 0; i < syllables; i++) w += c[rng.int(c.length)] + v[rng.int(v.length)];
  return w;
}

interface World {
  categories: string[];
  tags: string[];
  tagCategory: number[];
  categoryWeights: number[];
  tagWeightsWithin: number[];
  catProto: Float32Array[];
  tagProto: Float32Array[];
  rgbProj: Float32Array; // rgbDim × LATENT_DIM
  audioProj: Float32Array;
  categoryWords: string[][];
  tagWords: string[][];
  fillerWords: string[];
}

function buildWorld(rng: Random, nCat: number, tagsPerCat: number, rgbDim: number, audioDim: number): World {
  const categories = CATEGORY_NAMES.slice(0, nCat);
  const tags: string[] = [];
  const tagCategory: number[] = [];
  const used = new Set<string>();
  const freshWord = () => {
    for (;;) {
      const w = syllableWord(rng);
      if (!used.has(w)) {
        used.add(w);
        return w;
      }
    }
  };
  for (let c = 0; c < nCat; c++) {
    for (let k = 0; k < tagsPerCat; k++) {
      tags.push(`${categories[c]}/${freshWord()}`);
      tagCategory.push(c);
    }
  }
  const proj = (rows: number) => {
    const m = rng.vector(rows * LATENT_DIM, 1 / Math.sqrt(LATENT_DIM));
    return m;
  };
  return {
    categories,
    tags,
    tagCategory,
    categoryWeights: zipf(nCat, 0.5),
    tagWeightsWithin: zipf(tagsPerCat, 1.1),
    catProto: categories.map(() => rng.vector(LATENT_DIM, 1.0)),
    tagProto: tags.map(() => rng.vector(LATENT_DIM, 0.8)),
    rgbProj: proj(rgbDim),
    audioProj: proj(audioDim),
    categoryWords: categories.map(() => Array.from({ length: 12 }, freshWord)),
    tagWords: tags.map(() => Array.from({ length: 3 }, freshWord)),
    fillerWords: Array.from({ length: 300 }, freshWord),
  };
}

function project(proj: Float32Array, z: Float32Array, out: Float32Array, offset: number, dim: number): void {
  for (let i = 0; i < dim; i++) {
    let s = 0;
    const row = i * LATENT_DIM;
    for (let j = 0; j < LATENT_DIM; j++) s += proj[row + j] * z[j];
    out[offset + i] += s;
  }
}

function frames(rng: Random, proj: Float32Array, z: Float32Array, nFrames: number, dim: number, noise: number, noiseFrameRate: number): Float32Array {
  const values = new Float32Array(nFrames * dim);
  const drift = new Float32Array(LATENT_DIM);
  const zt = new Float32Array(LATENT_DIM);
  for (let t = 0; t < nFrames; t++) {
    for (let j = 0; j < LATENT_DIM; j++) drift[j] = 0.8 * drift[j] + 0.3 * rng.normal();
    const informative = rng.uniform() >= noiseFrameRate;
    for (let j = 0; j < LATENT_DIM; j++) zt[j] = (informative ? z[j] : 0) + drift[j];
    project(proj, zt, values, t * dim, dim);
    for (let i = 0; i < dim; i++) values[t * dim + i] += noise * rng.normal();
  }
  return values;
}

export function generateDemoVideo(world: World, rng: Random, index: number, nFrames: number, rgbDim: number, audioDim: number, noise: DemoNoise): VideoInput {
  const nCat = world.categories.length;
  const perCat = world.tagWeightsWithin.length;
  const catTotal = world.categoryWeights.reduce((a, b) => a + b, 0);
  const tagTotal = world.tagWeightsWithin.reduce((a, b) => a + b, 0);
  const c = rng.weighted(world.categoryWeights, catTotal);
  const nTags = 1 + Math.min(5, Math.floor(-Math.log(Math.max(rng.uniform(), 1e-9)) * 1.5));
  const tagSet = new Set<number>();
  while (tagSet.size < nTags) {
    // Mostly the category's own tags; sometimes a tag of another category.
    const cat = rng.uniform() < 0.85 ? c : rng.int(nCat);
    tagSet.add(cat * perCat + rng.weighted(world.tagWeightsWithin, tagTotal));
  }
  const tagIdx = [...tagSet].sort((a, b) => a - b);

  const z = new Float32Array(LATENT_DIM);
  const zAudio = new Float32Array(LATENT_DIM);
  for (let j = 0; j < LATENT_DIM; j++) {
    let tagSum = 0;
    for (const t of tagIdx) tagSum += world.tagProto[t][j];
    z[j] = world.catProto[c][j] + tagSum + noise.video * rng.normal();
    zAudio[j] = world.catProto[c][j] + noise.audioTagWeight * tagSum + noise.video * rng.normal();
  }

  const features: VideoInput["features"] = {
    rgb: { matrix: { frames: nFrames, dim: rgbDim, values: frames(rng, world.rgbProj, z, nFrames, rgbDim, noise.rgbFrame, noise.noiseFrameRate) }, encoding: "float16" },
  };
  if (rng.uniform() >= noise.missingAudio) {
    features.audio = { matrix: { frames: nFrames, dim: audioDim, values: frames(rng, world.audioProj, zAudio, nFrames, audioDim, noise.audioFrame, noise.noiseFrameRate) }, encoding: "float16" };
  }

  let title: string | null = null;
  if (rng.uniform() >= noise.missingTitle) {
    const words: string[] = [];
    const len = 4 + rng.int(6);
    for (let i = 0; i < len; i++) {
      const u = rng.uniform();
      if (u < noise.titleSignal * 0.5) {
        const t = tagIdx[rng.int(tagIdx.length)];
        words.push(world.tagWords[t][rng.int(world.tagWords[t].length)]);
      } else if (u < noise.titleSignal) {
        words.push(world.categoryWords[c][rng.int(world.categoryWords[c].length)]);
      } else {
        words.push(world.fillerWords[rng.int(world.fillerWords.length)]);
      }
    }
    title = words.join(" ");
  }
  return {
    id: `demo-${String(index).padStart(6, "0")}`,
    title,
    features,
    category: world.categories[c],
    tags: tagIdx.map((t) => world.tags[t]),
  };
}

export function writeDemoData(store: VideoStore, options: DemoOptions): DemoSummary {
  const nFrames = options.frames ?? 32;
  const rgbDim = options.rgbDim ?? 256;
  const audioDim = options.audioDim ?? 128;
  const nCat = options.categories ?? 10;
  const perCat = options.tagsPerCategory ?? 6;
  if (nCat > CATEGORY_NAMES.length) throw new Error(`at most ${CATEGORY_NAMES.length} demo categories`);
  const noise = { ...DEMO_NOISE, ...options.noise };
  const world = buildWorld(new Random(`world:${options.seed}`), nCat, perCat, rgbDim, audioDim);
  // One generator per video, keyed by its index: video i is the same whatever N is.
  const batchSize = 250;
  for (let start = 0; start < options.videos; start += batchSize) {
    const batch: VideoInput[] = [];
    for (let i = start; i < Math.min(options.videos, start + batchSize); i++) {
      batch.push(generateDemoVideo(world, new Random(`video:${options.seed}:${i}`), i, nFrames, rgbDim, audioDim, noise));
    }
    store.upsertVideos(batch, { source: `demo:seed=${options.seed}` });
    options.onProgress?.(Math.min(options.videos, start + batchSize));
  }
  store.buildTokenVocabulary(2);
  return { videos: options.videos, categories: nCat, tags: nCat * perCat };
}
