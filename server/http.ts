/** Small request helpers shared by routes. */
import type { Request } from "express";
import { ServiceError } from "../src/service/errors.js";

/** The parsed JSON body; 415 for another content type, 400 for none. */
export function requireJsonBody(req: Request): unknown {
  if (req.body === undefined) {
    if (req.headers["content-type"] !== undefined && !req.is("application/json")) {
      throw new ServiceError(415, "unsupported_media_type", `send the body as JSON (Content-Type: application/json), got ${req.headers["content-type"]}`);
    }
    throw new ServiceError(400, "bad_request", "missing JSON body (Content-Type: application/json)");
  }
  return req.body;
}

/** Like requireJsonBody, but an absent body is `{}` (routes whose fields all have defaults). */
export function optionalJsonBody(req: Request): unknown {
  if (req.body === undefined && (req.headers["content-length"] === undefined || req.headers["content-length"] === "0") && req.headers["transfer-encoding"] === undefined) return {};
  return requireJsonBody(req);
}
