import { Router } from "express";
import type { AppContext } from "../context.js";

export function healthRoutes(ctx: AppContext): Router {
  const r = Router();
  r.get("/healthz", (_req, res) => {
    // pid: which process answered (serve --processes runs several on one port).
    res.json({ status: "ok", uptime_s: (Date.now() - ctx.startedAt) / 1000, pid: process.pid });
  });
  r.get("/readyz", (_req, res) => {
    const rt = ctx.runtime;
    const reasons: string[] = [];
    if (!rt.index) reasons.push(rt.lastIndexError ? `index not loaded: ${rt.lastIndexError}` : "no index built yet");
    const body = {
      ready: reasons.length === 0,
      model: { id: rt.model.id, hash: rt.model.hash, error: rt.lastModelError },
      index: { version: rt.index?.version ?? null, videos: rt.index?.size ?? 0, error: rt.lastIndexError },
      reasons,
    };
    res.status(body.ready ? 200 : 503).json(body);
  });
  r.get("/metrics", async (_req, res) => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.text());
  });
  return r;
}
