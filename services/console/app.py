"""The console's app factory: server-rendered pages over the five services' public APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.common import tracing
from libs.common.logging import configure_logging
from services.console import (
    routes,
    routes_account,
    routes_admin,
    routes_budgets,
    routes_people,
    routes_shop,
)
from services.console.pages import (
    ActingEnded,
    CsrfRefused,
    NotSignedIn,
    current,
    redirect,
    render,
)
from services.console.schemas import ServiceError
from services.console.service import Services
from services.console.sessions import SessionStore
from services.console.settings import ConsoleSettings

log = structlog.get_logger("console")


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    configure_logging(settings.log_level, service="console", fmt=settings.log_format)
    tracing.configure(service="console", trace_file=settings.trace_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # No database and no NATS: one HTTP client to the services and the session store.
        async with httpx.AsyncClient(timeout=settings.console_request_timeout_seconds) as client:
            app.state.services = Services(
                client=client,
                urls={
                    "identity": settings.identity_url,
                    "catalog": settings.catalog_url,
                    "cart": settings.cart_url,
                    "orders": settings.orders_url,
                    "audit": settings.audit_url,
                },
            )
            yield

    app = FastAPI(title="onbehalf console", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.sessions = SessionStore(
        idle_seconds=settings.console_session_idle_seconds,
        max_sessions=settings.console_max_sessions,
    )
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for router in (
        routes.router,
        routes_shop.router,
        routes_admin.router,
        routes_people.router,
        routes_budgets.router,
        routes_account.router,
    ):
        app.include_router(router)
    _install_error_pages(app)
    tracing.instrument_app(app)
    return app


def _install_error_pages(app: FastAPI) -> None:
    @app.middleware("http")
    async def _headers(request: Request, call_next: object) -> Response:
        response: Response = await call_next(request)  # type: ignore[operator]
        # Pages hold customer data: never cached, never framed, no foreign scripts.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
        )
        return response

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(_request: Request, _exc: NotSignedIn) -> Response:
        return redirect("/login")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused) -> HTMLResponse:
        message = "This form is out of date or did not come from this site: reload the page."
        return render(request, "error.html", current(request), status=403, error=message)

    @app.exception_handler(ActingEnded)
    async def _acting_ended(request: Request, exc: ActingEnded) -> Response:
        session = current(request)
        if session is None:
            return redirect("/login")
        session.acting = None
        session.flash.append(f"Your acting session ended ({exc.reason}).")
        return redirect("/companies")

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> HTMLResponse:
        return render(request, "error.html", current(request), status=exc.status, error=exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _exc: RequestValidationError) -> HTMLResponse:
        message = "That address or form has a value the page cannot use; go back and retry."
        return render(request, "error.html", current(request), status=422, error=message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        message = "No such page." if exc.status_code == 404 else str(exc.detail)
        return render(
            request, "error.html", current(request), status=exc.status_code, error=message
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("console_page_failed", path=request.url.path)
        message = "Something went wrong on our side; the error is logged. Try again."
        return render(request, "error.html", current(request), status=500, error=message)
