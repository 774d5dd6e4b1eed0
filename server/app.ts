/**
 * The express app: JSON body parsing with a size limit, request logs (pino),
 * metrics per route, the routes (thin: validate with zod, call a service),
 * and one error handler that turns every failure into a JSON error.
 */
import express, { type ErrorRequestHandler, type NextFunction, type Request, type Response } from "express";
import { ServiceError } from "../src/service/errors.js";
import type { AppContext } from "./context.js";
import { buildOpenApi } from "./openapi.js";
import { adminRoutes } from "./routes/admin.js";
import { classifyRoutes } from "./routes/classify.js";
import { healthRoutes } from "./routes/health.js";
import { similarRoutes } from "./routes/similar.js";
import { videoRoutes } from "./routes/videos.js";

export function createApp(ctx: AppContext): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  // Metrics and the request log in one middleware, with one listener per
  // response event: pino-http (a child logger, an id and serializers per
  // request) cost more main-thread time than a /similar lookup.
  const logger = ctx.logger;
  let requestSeq = 0;
  app.use((req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    const done = ctx.metrics.startRequest();
    const id = ++requestSeq;
    res.once("close", () => {
      done();
      // Answered in full: logged and observed on finish.
      if (res.writableFinished) return;
      if (logger.isLevelEnabled("warn")) logger.warn({ req: { id, method: req.method, url: req.originalUrl }, responseTime: elapsedMs(start) }, "request aborted");
    });
    res.once("finish", () => {
      const ms = elapsedMs(start);
      // The route pattern (not the path) keeps the label set bounded.
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : "unmatched";
      ctx.metrics.observeRequest(req.method, route, res.statusCode, ms / 1000);
      const level = res.statusCode >= 500 ? "error" : res.statusCode >= 400 ? "warn" : "info";
      // Bodies carry features: never log them; ids in paths are fine.
      if (logger.isLevelEnabled(level)) logger[level]({ req: { id, method: req.method, url: req.originalUrl }, res: { statusCode: res.statusCode }, responseTime: ms }, "request completed");
    });
    next();
  });
  // Routes without a body first: express tries each mounted router in turn,
  // and /similar (the hot path) then skips the body parser and the rest.
  app.use(similarRoutes(ctx));
  app.use(healthRoutes(ctx));
  app.use(express.json({ limit: ctx.bodyLimit, strict: true }));

  const openapi = buildOpenApi();
  app.get("/openapi.json", (_req, res) => {
    res.json(openapi);
  });
  app.use(classifyRoutes(ctx));
  app.use(videoRoutes(ctx));
  app.use(adminRoutes(ctx));

  app.use((req: Request) => {
    throw new ServiceError(404, "not_found", `no route ${req.method} ${req.path} (see /openapi.json)`);
  });
  app.use(errorHandler(ctx));
  return app;
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
  limit?: number;
}

function errorHandler(ctx: AppContext): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    void _next;
    let status = 500;
    let body: { code: string; message: string; [k: string]: unknown };
    if (err instanceof ServiceError) {
      status = err.status;
      body = { code: err.code, message: err.message, ...err.details };
    } else {
      const e = (err ?? {}) as HttpishError;
      const s = e.status ?? e.statusCode;
      if (typeof s === "number" && s >= 400 && s < 500) {
        // body-parser and the router: malformed JSON, too large, bad encoding, a path that does not decode.
        status = s;
        body = { code: bodyErrorCode(e), message: bodyErrorMessage(e, ctx.bodyLimit) };
      } else {
        body = { code: "internal", message: "internal error (logged on the server)" };
      }
    }
    if (status >= 500) ctx.logger.error({ err, req: { method: req.method, url: req.originalUrl } }, "request failed");
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(status).json({ error: body });
  };
}

function bodyErrorCode(e: HttpishError): string {
  switch (e.type) {
    case "entity.parse.failed":
      return "invalid_json";
    case "entity.too.large":
      return "body_too_large";
    case "encoding.unsupported":
    case "charset.unsupported":
      return "unsupported_media_type";
    default:
      return "bad_request";
  }
}

function bodyErrorMessage(e: HttpishError, limit: string | number): string {
  switch (e.type) {
    case "entity.parse.failed":
      return `request body is not valid JSON: ${e.message}`;
    case "entity.too.large":
      return `request body is larger than the limit (${limit}); send fewer videos per request, base64 features, or raise --body-limit`;
    default:
      return e.expose === false ? "bad request" : (e.message ?? "bad request");
  }
}
