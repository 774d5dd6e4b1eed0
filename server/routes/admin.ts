import { createHash, timingSafeEqual } from "node:crypto";
import { Router, type RequestHandler } from "express";
import { ServiceError } from "../../src/service/errors.js";
import type { AppContext } from "../context.js";
import { optionalJsonBody } from "../http.js";
import { JobParams, ReindexBody, RetrainBody } from "../schemas.js";
import { parsePart } from "../validate.js";

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * The admin key, from `Authorization: Bearer KEY` or `X-Admin-Key: KEY`,
 * compared in constant time. No key configured: the routes are disabled (403).
 */
export function requireAdmin(adminKey: string | undefined): RequestHandler {
  const want = adminKey ? digest(adminKey) : undefined;
  return (req, res, next) => {
    if (!want) {
      throw new ServiceError(403, "admin_disabled", "admin routes are disabled: start the server with VIDRECALL_ADMIN_KEY set to enable them");
    }
    const auth = req.get("authorization");
    const given = auth?.match(/^Bearer\s+(.+)$/i)?.[1] ?? req.get("x-admin-key");
    if (!given) {
      res.set("WWW-Authenticate", 'Bearer realm="vidrecall admin"');
      throw new ServiceError(401, "unauthorized", "admin routes need the API key: send Authorization: Bearer <VIDRECALL_ADMIN_KEY>");
    }
    if (!timingSafeEqual(digest(given), want)) throw new ServiceError(403, "forbidden", "wrong admin API key");
    next();
  };
}

export function adminRoutes(ctx: AppContext): Router {
  const r = Router();
  r.use("/admin", requireAdmin(ctx.adminKey));
  r.post("/admin/reindex", async (req, res) => {
    const body = parsePart(ReindexBody, optionalJsonBody(req), "body");
    res.status(202).json(await ctx.admin.reindex(body));
  });
  r.post("/admin/retrain", async (req, res) => {
    const body = parsePart(RetrainBody, optionalJsonBody(req), "body");
    res.status(202).json(await ctx.admin.retrain(body));
  });
  r.get("/admin/jobs", async (_req, res) => {
    res.json({ jobs: await ctx.admin.jobs() });
  });
  r.get("/admin/jobs/:id", async (req, res) => {
    const { id } = parsePart(JobParams, req.params, "params");
    res.json(await ctx.admin.job(id));
  });
  return r;
}
