import { Router } from "express";
import type { AppContext } from "../context.js";
import { ClassifyBody } from "../schemas.js";
import { requireJsonBody } from "../http.js";
import { parsePart } from "../validate.js";

export function classifyRoutes(ctx: AppContext): Router {
  const r = Router();
  r.post("/classify", async (req, res) => {
    const body = parsePart(ClassifyBody, requireJsonBody(req), "body");
    const modalities = [
      ...(["rgb", "audio"] as const).filter((m) => body[m] !== undefined).map((m) => ({ name: m, field: m, json: body[m]! })),
      ...Object.entries(body.features ?? {}).map(([name, json]) => ({ name, field: `features.${name}`, json })),
    ];
    res.json(
      await ctx.classify.classify({
        id: body.id,
        title: body.title,
        modalities,
        top: body.top,
        tag_threshold: body.tag_threshold,
        max_tags: body.max_tags,
        embedding: body.embedding,
      }),
    );
  });
  return r;
}
