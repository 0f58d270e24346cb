"""The FastAPI frame every service shares: error bodies, health, metrics, principal dependency."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.common.errors import DomainError, Unauthenticated
from libs.common.principals import ActingSession, Principal
from libs.common.runtime import ServiceRuntime

log = structlog.get_logger("web")

_bearer = HTTPBearer(auto_error=False, description="An access token from identity")


def get_runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


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


Runtime = Annotated[ServiceRuntime, Depends(get_runtime)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def _summarise(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
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
        body = {"detail": _summarise(errors), "reason": None, "errors": errors}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail, "reason": None},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(NoRespondersError)
    async def _no_responders(_request: Request, _exc: NoRespondersError) -> JSONResponse:
        body = {"detail": "a service this request needs is not answering", "reason": None}
        return JSONResponse(body, status_code=503)

    @app.exception_handler(NatsTimeoutError)
    async def _nats_timeout(_request: Request, _exc: NatsTimeoutError) -> JSONResponse:
        body = {"detail": "a service this request needs timed out", "reason": None}
        return JSONResponse(body, status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=repr(exc))
        return JSONResponse({"detail": "internal error", "reason": None}, status_code=500)


def create_service_app(
    *,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    routers: list[APIRouter],
) -> FastAPI:
    app = FastAPI(title=title, version="1", lifespan=lifespan)
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

    @app.get("/.well-known/event-keys.json", tags=["operations"])
    async def event_keys(request: Request) -> dict[str, Any]:
        """The public half of the key this service signs its events with (JWK, `service` added),
        so that anyone holding an event can check who emitted it."""
        return {"keys": [get_runtime(request).signing_key.public().jwk()]}

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
