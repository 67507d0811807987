"""One error shape for every failure: `{"error": <short code>, "detail": <what to fix>}`."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from pydantic import BaseModel, Field, ValidationError


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: a stable machine-readable code and a human explanation."""

    error: str = Field(description="Short machine-readable code, e.g. `bad_request`, `not_found`.")
    detail: Any = Field(description="What went wrong; for bad input, the list of problems per parameter.")


class ApiError(Exception):
    """Raised by handlers; turned into the JSON error shape with its HTTP status."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


def error_response(status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": error, "detail": detail})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_error_response(exc: ValidationError) -> Response:
    """flask-openapi3's validation hook: 400 (not 422) with one entry per bad parameter."""
    problems = [
        {
            "parameter": ".".join(str(part) for part in err["loc"]) or None,
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return error_response(400, "bad_request", problems)


BAD_REQUEST = {400: ErrorResponse}
UNAUTHORIZED = {401: ErrorResponse}
NOT_FOUND = {404: ErrorResponse}
RANGE_TOO_LONG = {422: ErrorResponse}
RATE_LIMITED = {429: ErrorResponse}


def operation_id(*, name: str = "", path: str = "", method: str = "") -> str:
    """OpenAPI operationId = the handler's name (`panel_readings`), readable in generated clients."""
    return name
