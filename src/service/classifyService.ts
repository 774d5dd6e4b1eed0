/**
 * POST /classify: a stored video by id, or features given in the request (the
 * JSONL importer's encodings), through the inference service (worker threads,
 * micro-batched with concurrent requests).
 */
import type { FeatureMatrix } from "../data/featureMatrix.js";
import { decodeFeaturesJson, FieldError, type FeaturesJson } from "../data/jsonl.js";
import { topScores, type InferenceVideo } from "../infer/inferenceService.js";
import { BadRequestError, NotFoundError, type FieldProblem } from "./errors.js";
import type { ServingRuntime } from "./runtime.js";
import { TagVotes, type TagVoteResult } from "./tagVotes.js";

export interface ClassifyInput {
  id?: string;
  title?: string | null;
  /** Feature modalities by name (rgb, audio, and those under `features`), with the request field each came from. */
  modalities: { name: string; field: string; json: FeaturesJson }[];
  top: number;
  tag_threshold: number;
  max_tags: number;
  embedding: boolean;
}

export interface ClassifyResponse {
  id: string | null;
  model: { id: string | null; hash: string };
  categories: { label: string; probability: number }[];
  tags: { label: string; probability: number }[];
  embedding?: number[];
  /** When the model's config turns neighbour-label voting on: how many indexed neighbours voted on the tags (or why none did). */
  tag_votes?: TagVoteResult["info"];
  /** Modalities in the request that the model does not read. */
  ignored?: string[];
}

export class ClassifyService {
  constructor(
    private readonly runtime: ServingRuntime,
    private readonly votes: TagVotes,
  ) {}

  async classify(input: ClassifyInput): Promise<ClassifyResponse> {
    const service = this.runtime.service;
    const { video, ignored } = input.id !== undefined && input.modalities.length === 0 && input.title === undefined ? this.stored(input.id) : this.given(input);
    // Read before the call: a swap that lands meanwhile still lets this call finish on this model.
    const model = this.runtime.model;
    const voting = TagVotes.wanted(service.model);
    const [r] = await service.classify([video], { topCategories: input.top, tagThreshold: input.tag_threshold, maxTags: input.max_tags, embedding: input.embedding || voting, tagProbs: voting });
    let tags = r.tags;
    let tagVotes: TagVoteResult["info"] | undefined;
    // r.model: the model that answered, which a swap meanwhile may have replaced.
    if (r.model && r.tagProbs && r.embedding && TagVotes.wanted(r.model)) {
      const voted = await this.votes.blend(r.model, r.tagProbs, r.embedding, input.id);
      tags = topScores(voted.probs, r.model.labels.tags, input.max_tags, input.tag_threshold);
      tagVotes = voted.info;
    }
    const out: ClassifyResponse = {
      id: input.id ?? null,
      model: { id: model.id, hash: model.hash },
      categories: r.categories.map(({ label, probability }) => ({ label, probability })),
      tags: tags.map(({ label, probability }) => ({ label, probability })),
    };
    if (tagVotes) out.tag_votes = tagVotes;
    if (input.embedding && r.embedding) out.embedding = Array.from(r.embedding);
    if (ignored.length) out.ignored = ignored;
    return out;
  }

  private stored(id: string): { video: InferenceVideo; ignored: string[] } {
    const [example] = (() => {
      try {
        return this.runtime.store.getExamples([id]);
      } catch {
        throw new NotFoundError(`no video "${id}"`);
      }
    })();
    return { video: { id: example.id, title: example.title, features: example.features }, ignored: [] };
  }

  private given(input: ClassifyInput): { video: InferenceVideo; ignored: string[] } {
    const config = this.runtime.service.model.config.input;
    const problems: FieldProblem[] = [];
    const features: Record<string, FeatureMatrix> = {};
    const ignored: string[] = [];
    for (const m of input.modalities) {
      const spec = config.features[m.name];
      if (!config.modalities.includes(m.name) || !spec) {
        ignored.push(m.name);
        continue;
      }
      try {
        const { matrix } = decodeFeaturesJson(m.json, `body.${m.field}`);
        if (matrix.dim !== spec.dim) problems.push({ field: `body.${m.field}`, message: `frames have ${matrix.dim} values, the model reads ${spec.dim}-dimensional ${m.name}` });
        else features[m.name] = matrix;
      } catch (err) {
        if (err instanceof FieldError) problems.push({ field: err.field, message: err.message.slice(err.field.length + 2) });
        else throw err;
      }
    }
    if (problems.length) throw new BadRequestError(`invalid features: ${problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`, problems);
    const title = config.useTitle ? (input.title ?? null) : null;
    if (Object.keys(features).length === 0 && (title === null || title.trim() === "")) {
      const reads = [...config.modalities, ...(config.useTitle ? ["title"] : [])].join(", ");
      throw new BadRequestError(`nothing to classify: give "id" of a stored video, or at least one input the model reads (${reads})`, [
        { field: "body", message: `no ${reads}` },
      ]);
    }
    return { video: { id: input.id ?? "request", title, features }, ignored };
  }
}
