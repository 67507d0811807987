"""The Flask app factory: blueprints, one JSON error shape, optional token auth, a rate limit, docs.

Auth: when `settings.api_token` (SOLAR_API_TOKEN) is set, every route except `/api/v1/health`,
`/openapi.json` and `/docs` needs `Authorization: Bearer <token>` or `X-API-Key: <token>` (401).
Rate limit: per client (token, else remote address) token bucket, `rate_per_second` sustained and
`burst` at once, per worker process; over it -> 429 with `Retry-After`. Health and docs are exempt.
"""

from __future__ import annotations

import hmac
import html
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Final, Literal

from flask import Response, request
from flask_openapi3 import Info, OpenAPI
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from solar_platform.api import fleet, legacy_routes, operations, panels, sites
from solar_platform.api.context import EXTENSION, ApiContext
from solar_platform.api.errors import ApiError, ErrorResponse, error_response, validation_error_response
from solar_platform.api.ratelimit import TokenBucketLimiter
from solar_platform.settings import Settings

log = logging.getLogger(__name__)

FROM_SETTINGS: Final = "settings"  # take the rate limit from SOLAR_API_RATE_PER_SECOND / _BURST
OPEN_PATHS = frozenset({"/api/v1/health", "/openapi.json", "/docs"})
SECURITY_SCHEMES = {
    "bearerToken": {"type": "http", "scheme": "bearer"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
TOKEN_SECURITY = [{"bearerToken": []}, {"apiKey": []}]
# One blueprint module per OpenAPI tag, registered in this order (the order of the document's tags).
BLUEPRINTS = (legacy_routes.bp, panels.bp, fleet.bp, sites.bp, operations.bp)


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    rate_per_second: float | None | Literal["settings"] = FROM_SETTINGS,
    burst: int | None = None,
    clock: Callable[[], datetime] | None = None,
) -> OpenAPI:
    """Build the API over the read-only MySQL user. `rate_per_second=None` (or 0) disables the rate limit;
    by default it comes from the settings."""
    from solar_platform.storage.db import engine as make_engine

    app = OpenAPI(
        __name__,
        info=Info(
            title="solar_platform API",
            version="1.0.0",
            description=(
                "Read-only REST API over the solar fleet's MySQL tables. Times are ISO 8601 UTC "
                "(`2024-05-01T12:00:05.000Z`); energy is in Wh, power in W. Errors are "
                '`{"error": code, "detail": ...}`: 400 bad input, 401 missing/wrong token, 404 unknown '
                "panel, 422 range too long, 429 rate limited."
            ),
        ),
        security_schemes=SECURITY_SCHEMES,  # type: ignore[arg-type]
        validation_error_status=400,
        validation_error_model=ErrorResponse,
        validation_error_callback=validation_error_response,
        doc_ui=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = ApiContext(
        settings=settings,
        engine=engine or make_engine(settings, readonly=True),
        clock=clock or (lambda: datetime.now(UTC)),
    )

    for blueprint in BLUEPRINTS:
        app.register_api(blueprint)
    protected = bool(settings.api_token)
    if protected:
        document_token_auth(app.api_doc)

    if rate_per_second == FROM_SETTINGS:
        rate_per_second = settings.api_rate_per_second
    burst = burst or settings.api_rate_burst
    limiter = TokenBucketLimiter(rate_per_second, burst) if rate_per_second else None

    @app.before_request
    def guard() -> Response | None:
        if request.path in OPEN_PATHS:
            return None
        token = _presented_token()
        if protected and not (token and hmac.compare_digest(token.encode(), settings.api_token.encode())):  # type: ignore[union-attr]
            return error_response(
                401,
                "unauthorized",
                "send `Authorization: Bearer <token>` or `X-API-Key: <token>`",
                {"WWW-Authenticate": "Bearer"},
            )
        if limiter is not None:
            wait = limiter.acquire(token if protected and token else request.remote_addr or "unknown")
            if wait > 0:
                return error_response(
                    429,
                    "rate_limited",
                    f"more than {burst} requests at once or {rate_per_second:g}/s sustained; retry later",
                    {"Retry-After": str(math.ceil(wait))},
                )
        return None

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.error, exc.detail)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.response is not None:  # flask-openapi3's validation response, already shaped
            return exc.response  # type: ignore[return-value]
        code = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        return error_response(code, "not_found" if code == 404 else name, exc.description)

    @app.errorhandler(SQLAlchemyError)
    def database_error(exc: SQLAlchemyError) -> Response:
        log.exception("database error")
        return error_response(503, "database_unavailable", type(exc).__name__)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "unexpected error; see the server log")

    @app.get("/openapi.json", doc_ui=False)
    def openapi_json() -> Response:
        return app.response_class(app.json.dumps(app.api_doc), mimetype="application/json")

    @app.get("/docs", doc_ui=False)
    def docs() -> Response:
        return Response(render_docs(app.api_doc), mimetype="text/html")

    return app


def document_token_auth(spec: dict) -> None:
    """Tell clients of an API with a token how to send it: security on every operation but the open
    ones, and the 401 every route may answer.

    Done on this app's own generated document: the blueprints are module-level and shared by every
    app built in a process, with a token or without.
    """
    unauthorized = {
        "description": HTTPStatus.UNAUTHORIZED.phrase,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}}},
    }
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            operation["responses"][str(HTTPStatus.UNAUTHORIZED.value)] = unauthorized
            if path not in OPEN_PATHS:
                operation["security"] = TOKEN_SECURITY


def render_docs(spec: dict) -> str:
    """A dependency-free HTML page rendered from the OpenAPI document (works offline)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>",
        html.escape(spec["info"]["title"]),
        "</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "code,pre{background:#f4f4f4}td,th{border-bottom:1px solid #ddd;padding:.2em .5em;text-align:left}"
        "</style></head><body>",
        f"<h1>{html.escape(spec['info']['title'])} {html.escape(spec['info']['version'])}</h1>",
        f"<p>{html.escape(spec['info'].get('description', ''))}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>",
    ]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>")
            parts.append(f"<p><b>{html.escape(op.get('summary', ''))}</b></p>")
            parts.append(f"<pre>{html.escape(op.get('description', ''))}</pre>")
            params = op.get("parameters", [])
            if params:
                parts.append(
                    "<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>"
                )
                for p in params:
                    schema = p.get("schema", {})
                    parts.append(
                        f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                        f"<td>{p.get('required', False)}</td><td><code>{html.escape(str(schema))}</code></td>"
                        f"<td>{html.escape(p.get('description') or schema.get('description', ''))}</td></tr>"
                    )
                parts.append("</table>")
            codes = ", ".join(sorted(op.get("responses", {})))
            parts.append(f"<p>Responses: {codes}</p>")
    parts.append("</body></html>")
    return "".join(parts)
