/** /openapi.json, generated from the request and response schemas in schemas.ts. */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import * as S from "./schemas.js";

export function buildOpenApi(): unknown {
  const registry = new OpenAPIRegistry();
  const json = (schema: z.ZodType, description: string) => ({ description, content: { "application/json": { schema } } });
  const errors = {
    400: json(S.ErrorResponse, "invalid request: `error.fields` names each bad field"),
    404: json(S.ErrorResponse, "not found"),
    413: json(S.ErrorResponse, "body over the size limit"),
  };
  const admin = {
    401: json(S.ErrorResponse, "no API key"),
    403: json(S.ErrorResponse, "wrong API key, or admin routes disabled (no VIDRECALL_ADMIN_KEY)"),
  };
  registry.registerComponent("securitySchemes", "adminKey", { type: "http", scheme: "bearer", description: "VIDRECALL_ADMIN_KEY" });

  registry.registerPath({
    method: "get",
    path: "/similar/{id}",
    summary: "The k videos most similar to a video",
    request: { params: S.IdParams, query: S.SimilarQuery },
    responses: { 200: json(S.SimilarResponse, "neighbours, best first"), ...errors, 503: json(S.ErrorResponse, "no index built yet") },
  });
  registry.registerPath({
    method: "post",
    path: "/classify",
    summary: "Category probabilities and tags of a stored video (id) or of features in the request",
    request: { body: { content: { "application/json": { schema: S.ClassifyBody } } } },
    responses: { 200: json(S.ClassifyResponse, "classification"), ...errors, 415: json(S.ErrorResponse, "not JSON") },
  });
  registry.registerPath({
    method: "get",
    path: "/videos",
    summary: "Videos in storage order, paged with `after`",
    request: { query: S.ListVideosQuery },
    responses: { 200: json(S.ListVideosResponse, "one page; `next` is the `after` of the next page"), ...errors },
  });
  registry.registerPath({
    method: "get",
    path: "/videos/{id}",
    summary: "A video: metadata, labels with provenance, whether it is indexed",
    request: { params: S.IdParams },
    responses: { 200: json(S.VideoResponse, "the video"), ...errors },
  });
  registry.registerPath({
    method: "post",
    path: "/videos",
    summary: "Upsert one video or a batch (the JSONL import format); ?index=true also adds them to the live index",
    request: { query: S.PostVideosQuery, body: { content: { "application/json": { schema: z.union([S.VideoJsonSchema, S.PostVideosBody]) } } } },
    responses: { 200: json(S.UpsertResponse, "stored and indexed"), 201: json(S.UpsertResponse, "stored"), ...errors },
  });
  registry.registerPath({
    method: "delete",
    path: "/videos/{id}",
    summary: "Delete a video from the store and the index",
    request: { params: S.IdParams },
    responses: { 200: json(S.DeleteResponse, "deleted"), ...errors },
  });
  registry.registerPath({
    method: "post",
    path: "/videos/{id}/labels",
    summary: "Set a video's category and/or tags by name (new names grow the label space)",
    request: { params: S.IdParams, body: { content: { "application/json": { schema: S.LabelsBody } } } },
    responses: { 200: json(S.LabelsResponse, "the video with its labels"), ...errors },
  });
  for (const [path, body, summary] of [
    ["/admin/reindex", S.ReindexBody, "Start a reindex job (embed missing videos, build or update the index)"],
    ["/admin/retrain", S.RetrainBody, "Start a retrain job (vidrecall retrain)"],
  ] as const) {
    registry.registerPath({
      method: "post",
      path,
      summary,
      security: [{ adminKey: [] }],
      request: { body: { content: { "application/json": { schema: body } } } },
      responses: { 202: json(S.JobResponse, "job started"), ...errors, ...admin, 409: json(S.ErrorResponse, "a job of this kind is already running") },
    });
  }
  registry.registerPath({
    method: "get",
    path: "/admin/jobs/{id}",
    summary: "A job's state, progress and result",
    security: [{ adminKey: [] }],
    request: { params: S.JobParams },
    responses: { 200: json(S.JobResponse, "the job"), ...errors, ...admin },
  });
  registry.registerPath({ method: "get", path: "/healthz", summary: "The process is up", responses: { 200: json(S.HealthResponse, "up") } });
  registry.registerPath({
    method: "get",
    path: "/readyz",
    summary: "Model and index loaded",
    responses: { 200: json(S.ReadyResponse, "ready"), 503: json(S.ReadyResponse, "not ready (reasons say why)") },
  });
  registry.registerPath({
    method: "get",
    path: "/metrics",
    summary: "Prometheus metrics",
    responses: { 200: { description: "text exposition format", content: { "text/plain": { schema: z.string() } } } },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: "3.1.0",
    info: { title: "vidrecall", version: "0.1.0", description: "Similar-video recall and classification over multimodal video embeddings" },
  });
}
