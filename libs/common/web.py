"""The FastAPI frame every service shares: error bodies, health and readiness, metrics, principal
dependency."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.common import tracing
from libs.common.errors import DomainError, Unauthenticated
from libs.common.logging import configure_logging
from libs.common.metrics import measure_outbox_backlog
from libs.common.openapi_links import add_links
from libs.common.principals import ActingSession, Principal
from libs.common.runtime import ServiceRuntime
from libs.common.settings import ServiceSettings

log = structlog.get_logger("web")

# The version of the HTTP contract every service publishes in its OpenAPI `info`.
API_VERSION = "1.1.0"


class FieldError(BaseModel):
    """One rejected input: where (`loc`, e.g. `["body", "quantity"]`), what, and a code."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error of every service (docs/api.md#errors): `detail` for people, `reason` the
    policy's or the refusal's machine-readable cause (null when there is none), `errors` the
    rejected fields of a 422. Some refusals add fields (a 409 on a cart lock names the
    `holder`, a 429 carries `retry_after`)."""

    model_config = ConfigDict(extra="allow")

    detail: str
    reason: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="422 only: every field that was refused"
    )


_STATUS_TEXT = {
    400: "The request cannot be read",
    401: "No valid bearer token (missing, expired, revoked or not ours)",
    403: "The policy refuses it; `reason` says why",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with the current state (a lock, a duplicate, a changed order)",
    410: "No longer usable (an invitation that expired, was revoked or was accepted)",
    412: "A precondition (If-Match version) does not hold any more",
    422: "Invalid input; `errors` lists every refused field",
    428: "A required precondition header is missing",
    429: "Too many attempts; retry after `retry_after` seconds",
    503: "A service or the database this request needs is not answering; retry",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error statuses it can answer beyond the defaults every
    operation gets (401 and 403 with a bearer token, 404 with a path parameter, 422 with input)."""
    return {
        status: {"description": _STATUS_TEXT[status], "model": ErrorBody} for status in statuses
    }


_bearer = HTTPBearer(auto_error=False, description="An access token from identity")


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def _runtime_dependency(request: Request) -> ServiceRuntime:
    # A coroutine on purpose: FastAPI runs a plain-function dependency in its thread pool,
    # a thread hop on every request for a single attribute read.
    return get_runtime(request)


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("missing bearer token in the Authorization header")
    runtime = get_runtime(request)
    principal = await runtime.verifier.verify_async(credentials.credentials)
    if isinstance(principal, ActingSession):
        await runtime.activity.touch(principal.id)
    return principal


Runtime = Annotated[ServiceRuntime, Depends(_runtime_dependency)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
# The caller's bearer token as given, for a route that forwards it (orders to cart). The same
# dependency `get_principal` reads, so FastAPI solves it once per request, not twice.
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _message(error: Any) -> str:
    ctx = error.get("ctx") or {}
    if error.get("type") == "less_than_equal" and "le" in ctx:
        return f"above the maximum of {ctx['le']}"
    return str(error.get("msg", "invalid"))


def _summarise(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {_message(error)}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        body = {"detail": exc.detail, "reason": exc.reason, **exc.extra}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if "retry_after" in exc.extra:
            headers = {"Retry-After": str(int(exc.extra["retry_after"]))}
        return JSONResponse(jsonable_encoder(body), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
        body = {"detail": _summarise(exc.errors()), "reason": None, "errors": errors}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse(
            {"detail": exc.detail, "reason": None},
            status_code=exc.status_code,
            headers=headers or None,
        )

    @app.exception_handler(NoRespondersError)
    async def _no_responders(_request: Request, _exc: NoRespondersError) -> JSONResponse:
        body = {"detail": "a service this request needs is not answering", "reason": None}
        return JSONResponse(body, status_code=503)

    @app.exception_handler(NatsTimeoutError)
    async def _nats_timeout(_request: Request, _exc: NatsTimeoutError) -> JSONResponse:
        body = {"detail": "a service this request needs timed out", "reason": None}
        return JSONResponse(body, status_code=503)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if not exc.connection_invalidated:
            return await _unexpected(request, exc)
        # The server went away under a statement (a restart, a failover): the transaction did
        # not commit (unless the loss came with its COMMIT, which an order's idempotency key
        # covers) and the connection is not used again, so the request may be retried.
        log.warning("database_connection_lost", error=repr(exc.orig))
        body = {"detail": "the database connection was lost; retry the request", "reason": None}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=repr(exc))
        return JSONResponse({"detail": "internal error", "reason": None}, status_code=500)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some operation of this path answers (Starlette names only the first
    route's), read from the published document so that `Allow` and OpenAPI agree."""
    paths = contract_openapi(request.app).get("paths", {})
    # A literal path (`/v1/budgets/mine`) is its own resource, not an id of its neighbour's.
    if request.url.path in paths:
        return sorted(method.upper() for method in paths[request.url.path])
    methods: set[str] = set()
    for template, item in paths.items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {method.upper() for method in item}
    return sorted(methods)


def _operation_id(route: APIRoute) -> str:
    """The handler's name (`place_order`, `list_products`): what a generator turns into a method."""
    return route.name


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _STATUS_TEXT[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def contract_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, telling the truth about errors: one `ErrorBody` on every error
    status an operation can answer (docs/api.md#errors)."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    for path, item in spec.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            statuses: set[int] = set()
            if operation.get("security"):
                # 503: every business operation reads its database (web._database), and a
                # server that went away under it answers so, whatever the route declares.
                statuses |= {401, 403, 503}
            if "{" in path:
                statuses.add(404)
            if operation.get("parameters") or operation.get("requestBody"):
                statuses.add(422)
            if operation.get("requestBody"):
                statuses.add(400)  # a body that is not JSON at all
            for status in sorted(statuses):
                responses.setdefault(str(status), _error_response(status))
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    response["content"] = _error_response(int(code))["content"]
                    response["description"] = _STATUS_TEXT.get(int(code), response["description"])
    add_links(spec)
    app.openapi_schema = spec
    return spec


async def _database_answers(runtime: ServiceRuntime, timeout: float = 2.0) -> bool:
    async def ping() -> None:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), timeout=timeout)
    except Exception:  # any failure means "not reachable"
        return False
    return True


async def readiness(runtime: ServiceRuntime) -> dict[str, bool]:
    """What `/readyz` checks: each part and whether it is ready."""
    return {
        "nats": bool(runtime.nc.is_connected),
        "database": await _database_answers(runtime),
        "policy": bool(runtime.authorizer.revision),
    }


def create_service_app(
    *,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    routers: list[APIRouter],
) -> FastAPI:
    # From here on, uvicorn's own lines are rendered like ours (the lifespan configures again
    # with the service's settings).
    base = ServiceSettings()
    service = title.removeprefix("onbehalf ")
    configure_logging(base.log_level, service=service, fmt=base.log_format)
    tracing.configure(service=service, trace_file=base.trace_file)
    # Swagger UI (/docs) and ReDoc (/redoc) load their assets from this process, not a CDN.
    app = FastAPIOffline(
        title=title,
        version=API_VERSION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    install_error_handlers(app)

    @app.get("/healthz", tags=["operations"])
    async def healthz(request: Request) -> dict[str, Any]:
        runtime = get_runtime(request)
        return {
            "status": "ok",
            "service": runtime.settings.service_name,
            "nats_connected": runtime.nc.is_connected,
            "policy_revision": runtime.authorizer.revision,
        }

    @app.get(
        "/readyz",
        tags=["operations"],
        responses={503: {"description": "Not ready: `not_ready` names what is missing"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """Readiness (liveness is `/healthz`): NATS connected, the database answering, the
        policy loaded. 503 with `not_ready` naming each part that is not."""
        checks = await readiness(get_runtime(request))
        not_ready = sorted(name for name, ok in checks.items() if not ok)
        body: dict[str, Any] = {
            "status": "not_ready" if not_ready else "ready",
            "service": get_runtime(request).settings.service_name,
            "checks": checks,
            "not_ready": not_ready,
        }
        if not_ready:
            # An ErrorBody like every other error, with the checks beside it.
            body |= {"detail": "not ready: " + ", ".join(not_ready), "reason": "not_ready"}
        return JSONResponse(body, status_code=503 if not_ready else 200)

    @app.get("/.well-known/event-keys.json", tags=["operations"])
    async def event_keys(request: Request) -> dict[str, Any]:
        """The public half of the key this service signs its events with (JWK, `service` added),
        so that anyone holding an event can check who emitted it."""
        return {"keys": [get_runtime(request).signing_key.public().jwk()]}

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics(request: Request) -> Response:
        runtime = get_runtime(request)
        # Measured per scrape, not per commit: the order path pays nothing for it.
        await measure_outbox_backlog(
            service=runtime.settings.service_name,
            engine=runtime.engine,
            outbox_model=runtime.outbox_model,
        )
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    # Server spans (tracing on only); the caller's `traceparent` header is continued.
    tracing.instrument_app(app)

    def _openapi() -> dict[str, Any]:
        return contract_openapi(app)

    app.openapi = _openapi  # type: ignore[method-assign]
    return app
