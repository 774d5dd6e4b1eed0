import { Router } from "express";
import type { AppContext } from "../context.js";
import { IdParams, SimilarQuery } from "../schemas.js";
import { parsePart } from "../validate.js";

export function similarRoutes(ctx: AppContext): Router {
  const r = Router();
  r.get("/similar/:id", async (req, res) => {
    const { id } = parsePart(IdParams, req.params, "params");
    const q = parsePart(SimilarQuery, req.query, "query");
    res.json(await ctx.similar.similar(id, q));
  });
  return r;
}
