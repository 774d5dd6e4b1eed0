import { Router } from "express";
import type { AppContext } from "../context.js";
import { requireJsonBody } from "../http.js";
import { IdParams, LabelsBody, ListVideosQuery, PostVideosBody, PostVideosQuery } from "../schemas.js";
import { parsePart } from "../validate.js";

export function videoRoutes(ctx: AppContext): Router {
  const r = Router();
  r.get("/videos", (req, res) => {
    const q = parsePart(ListVideosQuery, req.query, "query");
    res.json(ctx.videos.list(q.limit, q.after));
  });
  r.get("/videos/:id", (req, res) => {
    const { id } = parsePart(IdParams, req.params, "params");
    res.json(ctx.videos.get(id));
  });
  r.post("/videos", async (req, res) => {
    const q = parsePart(PostVideosQuery, req.query, "query");
    const raw = requireJsonBody(req);
    const records = parsePart(PostVideosBody, Array.isArray(raw) ? raw : [raw], "body");
    res.status(q.index ? 200 : 201).json(await ctx.videos.upsert(records, { index: q.index }));
  });
  r.delete("/videos/:id", async (req, res) => {
    const { id } = parsePart(IdParams, req.params, "params");
    res.json(await ctx.videos.delete(id));
  });
  r.post("/videos/:id/labels", async (req, res) => {
    const { id } = parsePart(IdParams, req.params, "params");
    const body = parsePart(LabelsBody, requireJsonBody(req), "body");
    res.json(await ctx.labels.setLabels(id, body));
  });
  return r;
}
