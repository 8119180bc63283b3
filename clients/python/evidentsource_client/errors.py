"""Errors a caller can act on: the API's problem+json answers typed by the
contract's codes, and the client's own transport, decode and request faults.

Every exception derives from ClientError, so `except ClientError` catches
whatever the client raises on purpose.
"""

import enum
import json


class ErrorCode(str, enum.Enum):
    """The contract's fixed set of error codes, as written on the wire."""

    #: The request is malformed; sending it unchanged fails again.
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    #: The database does not exist.
    NOT_FOUND = "NOT_FOUND"
    #: The database already exists.
    ALREADY_EXISTS = "ALREADY_EXISTS"
    #: An append condition does not hold: read again and decide again.
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    #: A fault on the server's side.
    INTERNAL = "INTERNAL"


class ClientError(Exception):
    """Anything the client raises."""


class ApiError(ClientError):
    """The API answered with an error (RFC 9457 problem+json)."""

    def __init__(self, status, code, field=None, detail="", request_id=None):
        self.status = status
        self.code = code
        #: The request field at fault, for INVALID_ARGUMENT and
        #: FAILED_PRECONDITION (`conditions[0]`).
        self.field = field
        self.detail = detail
        #: On a 500: what the function's log files the cause under.
        self.request_id = request_id
        where = f" ({field})" if field else ""
        super().__init__(f"{status} {code.value}{where}: {detail}")

    @property
    def is_conflict(self):
        """A 409 FAILED_PRECONDITION: an append condition does not hold."""
        return self.code is ErrorCode.FAILED_PRECONDITION


class TransportError(ClientError):
    """No answer: connection refused or reset, or a timeout. Retried before
    it surfaces."""


class DecodeError(ClientError):
    """An answer the client cannot read."""


class RequestError(ClientError):
    """The request could not be built or signed (bad endpoint, no
    credentials)."""


class ContentionError(ClientError):
    """decide_and_append met a conflict on every one of its attempts."""

    def __init__(self, attempts):
        self.attempts = attempts
        super().__init__(f"still conflicting after {attempts} attempts")


def from_response(status, body):
    """The ApiError an answer with `status` and `body` (bytes) stands for.

    A body that is not a problem (a proxy's page) still yields a typed
    error: the code the status implies.
    """
    try:
        problem = json.loads(body)
        if not isinstance(problem, dict) or not isinstance(problem.get("code"), str):
            problem = None
    except ValueError:
        problem = None
    if status == 404:
        implied = ErrorCode.NOT_FOUND
    elif 400 <= status <= 499:
        implied = ErrorCode.INVALID_ARGUMENT
    else:
        implied = ErrorCode.INTERNAL
    if problem is None:
        # Not ours to quote at length: it may be anything.
        detail = body[:256].decode("utf-8", "replace")
        return ApiError(status, implied, detail=detail)
    try:
        code = ErrorCode(problem["code"])
    except ValueError:
        code = implied
    return ApiError(status, code, field=problem.get("field"),
                    detail=problem.get("detail") or "",
                    request_id=problem.get("request_id"))
