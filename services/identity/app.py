"""Identity's app factory: users, organisations, tokens, acting sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.db import has_row_locks
from libs.common.mail import MailRelay
from libs.common.runtime import start_runtime
from libs.common.web import create_service_app
from services.identity import accounts, acting_notices, approval_notices, handlers
from services.identity.keys import key_refresher, load_or_create_kek, load_signer, protect_file
from services.identity.login_guard import LoginBurstGuard
from services.identity.models import Base, MailOutbox, OutboxMessage
from services.identity.parts import IdentityParts
from services.identity.passwords import AddressGate, PasswordPool
from services.identity.routes import router
from services.identity.routes_customers import router as customers_router
from services.identity.routes_me import router as me_router
from services.identity.routes_oauth import router as oauth_router
from services.identity.settings import IdentitySettings


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_url is None:
            protect_file(settings.data_dir / f"{settings.service_name}.db")
        kek = load_or_create_kek(settings.signing_kek_file or settings.data_dir / "signing-kek")
        async with start_runtime(
            settings=settings,
            metadata=Base.metadata,
            outbox_model=OutboxMessage,
            fetch_jwks=False,  # identity verifies with its own keys
        ) as runtime:
            async with runtime.unit_of_work() as uow:
                signer = await load_signer(
                    uow.session,
                    kek=kek,
                    issuer=settings.token_issuer,
                    audience=settings.token_audience,
                    token_lifetime_seconds=settings.longest_token_seconds,
                )
            runtime.verifier.set_jwks(signer.jwks())
            await accounts.bootstrap(runtime=runtime)
            # Mail (invitations, acting notices): an outbox sent over SMTP, like events.
            mail = MailRelay(
                sessionmaker=runtime.sessionmaker,
                read_sessionmaker=runtime.read_sessionmaker,
                model=MailOutbox,
                smtp_url=settings.smtp_url,
                sender=settings.mail_sender,
                row_locks=has_row_locks(settings.sqlalchemy_url),
                poll_seconds=settings.mail_poll_seconds,
            )
            # Before any task starts: they reach these through identity_parts(runtime).
            runtime.parts = IdentityParts(
                signer=signer,
                passwords=PasswordPool(settings.password_hash_workers),
                login_gate=AddressGate(),
                mail=mail,
            )
            runtime.spawn(handlers.project_revocations(runtime), name="revocations")
            runtime.spawn(handlers.project_standing(runtime), name="standing")
            runtime.spawn(handlers.record_activity(runtime), name="activity")
            runtime.spawn(key_refresher(runtime), name="signing-keys")
            runtime.spawn(handlers.end_timed_out_sessions(runtime), name="session-sweeper")
            runtime.spawn(mail.run(), name="mail-relay")
            runtime.spawn(acting_notices.tell_customers(runtime), name="acting-notices")
            runtime.spawn(approval_notices.ask_for_approvals(runtime), name="approval-requests")
            runtime.spawn(acting_notices.digest_loop(runtime), name="acting-digest")
            app.state.runtime = runtime
            yield

    app = create_service_app(
        title="onbehalf identity",
        lifespan=lifespan,
        routers=[router, customers_router, oauth_router, me_router],
    )
    app.add_middleware(LoginBurstGuard, limit=settings.login_max_in_flight_per_address)
    return app
