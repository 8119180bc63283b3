'use strict';
// Errors a caller can act on: the API's problem+json answers typed by the
// contract's codes (docs/api.md "Errors"), and the client's own transport,
// decode and request faults. Every error is an EvidentSourceError, so one
// `instanceof` catches them all; `code` says what to do next.

// The contract's fixed set (CONTRACT.md §5, the Rust client's ErrorCode).
const ErrorCode = Object.freeze({
  INVALID_ARGUMENT: 'INVALID_ARGUMENT', // malformed: sending it unchanged fails again
  NOT_FOUND: 'NOT_FOUND', // the database does not exist
  ALREADY_EXISTS: 'ALREADY_EXISTS', // the database already exists
  FAILED_PRECONDITION: 'FAILED_PRECONDITION', // a condition does not hold: read and decide again
  INTERNAL: 'INTERNAL', // a fault on the server's side
});
const CODES = Object.values(ErrorCode);

class EvidentSourceError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

// The API answered with an error.
class ApiError extends EvidentSourceError {
  constructor({ status, code, field = null, detail = '', requestId = null }) {
    super(`${status} ${code}${field ? ` (${field})` : ''}: ${detail}`);
    this.status = status;
    this.code = code;
    // The request field at fault (INVALID_ARGUMENT, FAILED_PRECONDITION's `conditions[0]`).
    this.field = field;
    this.detail = detail;
    // On a 500: what the function's log files the cause under.
    this.requestId = requestId;
  }

  // A 409 FAILED_PRECONDITION: an append condition does not hold.
  get isConflict() {
    return this.code === ErrorCode.FAILED_PRECONDITION;
  }
}

// No answer: connection refused or reset, timeout. Retried before it surfaces.
class TransportError extends EvidentSourceError {
  constructor(message, options) {
    super(message, options);
    this.code = 'TRANSPORT';
  }
}

// An answer the client cannot read.
class DecodeError extends EvidentSourceError {
  constructor(message, options) {
    super(message, options);
    this.code = 'DECODE';
  }
}

// The request could not be built or signed (bad endpoint, no credentials).
class RequestError extends EvidentSourceError {
  constructor(message, options) {
    super(message, options);
    this.code = 'REQUEST';
  }
}

// A setting that cannot work (a KAFKA_* variable, the .proto folder):
// fix the configuration; nothing was sent.
class ConfigError extends EvidentSourceError {
  constructor(message, options) {
    super(message, options);
    this.code = 'CONFIG';
  }
}

// decideAndAppend met a conflict on every one of its decisions.
class ContentionError extends EvidentSourceError {
  constructor(attempts) {
    super(`still conflicting after ${attempts} attempts`);
    this.code = 'CONTENTION';
    this.attempts = attempts;
  }
}

// The error an answer with `status` and `body` (a Buffer) stands for. A body
// that is not a problem (a proxy's page) still yields a typed error: the code
// the status implies.
function fromResponse(status, body) {
  let problem = null;
  try {
    const parsed = JSON.parse(body.toString('utf8'));
    if (parsed && typeof parsed === 'object' && typeof parsed.code === 'string') problem = parsed;
  } catch {
    // not JSON: typed by the status below
  }
  const implied = status === 404 ? ErrorCode.NOT_FOUND : status >= 400 && status < 500 ? ErrorCode.INVALID_ARGUMENT : ErrorCode.INTERNAL;
  if (!problem) {
    // Not ours to quote at length: it may be anything.
    return new ApiError({ status, code: implied, detail: body.subarray(0, 256).toString('utf8') });
  }
  return new ApiError({
    status,
    code: CODES.includes(problem.code) ? problem.code : implied,
    field: typeof problem.field === 'string' ? problem.field : null,
    detail: typeof problem.detail === 'string' ? problem.detail : '',
    requestId: typeof problem.request_id === 'string' ? problem.request_id : null,
  });
}

module.exports = {
  ErrorCode, EvidentSourceError, ApiError, TransportError, DecodeError, RequestError, ConfigError, ContentionError, fromResponse,
};
