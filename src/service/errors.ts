/**
 * Errors the services raise for the HTTP layer to map: each carries the
 * status it means and a stable machine-readable `code`; `details` (e.g. the
 * bad fields of a request) travel to the client as they are.
 */
export interface FieldProblem {
  /** Where in the request: `body.rgb[3]`, `query.k`, `params.id`. */
  field: string;
  message: string;
}

export class ServiceError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: { fields?: FieldProblem[]; [key: string]: unknown },
  ) {
    super(message);
    this.name = "ServiceError";
  }
}

export class BadRequestError extends ServiceError {
  constructor(message: string, fields?: FieldProblem[]) {
    super(400, "bad_request", message, fields ? { fields } : undefined);
  }
}

export class NotFoundError extends ServiceError {
  constructor(message: string) {
    super(404, "not_found", message);
  }
}

export class ConflictError extends ServiceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(409, "conflict", message, details);
  }
}

export class UnavailableError extends ServiceError {
  constructor(message: string) {
    super(503, "unavailable", message);
  }
}
