"""Identity's app factory: users, organisations, tokens, acting sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.common.db import is_sqlite
from libs.common.mail import MailRelay
from libs.common.runtime import start_runtime
from libs.common.web import create_service_app
from services.identity import accounts, handlers, notifications
from services.identity.keys import key_refresher, load_or_create_kek, load_signer, protect_file
from services.identity.login_guard import LoginBurstGuard
from services.identity.models import Base, MailOutbox, OutboxMessage
from services.identity.passwords import PasswordPool
from services.identity.routes import router
from services.identity.routes_customers import router as customers_router
from services.identity.routes_me import router as me_router
from services.identity.routes_oauth import router as oauth_router
from services.identity.service import Identity
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
            await accounts.bootstrap(runtime=runtime, settings=settings)
            identity = Identity(
                runtime=runtime,
                signer=signer,
                settings=settings,
                passwords=PasswordPool(settings.password_hash_workers),
            )
            runtime.spawn(handlers.project_revocations(runtime), name="revocations")
            runtime.spawn(handlers.project_standing(runtime), name="standing")
            runtime.spawn(handlers.record_activity(runtime), name="activity")
            runtime.spawn(key_refresher(runtime, signer, settings), name="signing-keys")
            runtime.spawn(handlers.end_timed_out_sessions(identity), name="session-sweeper")
            # Mail (invitations, acting notices): an outbox sent over SMTP, like events.
            mail = MailRelay(
                sessionmaker=runtime.sessionmaker,
                model=MailOutbox,
                smtp_url=settings.smtp_url,
                sender=settings.mail_sender,
                row_locks=not is_sqlite(settings.sqlalchemy_url),
                poll_seconds=settings.mail_poll_seconds,
            )
            notifications.register_relay(runtime, mail)
            runtime.spawn(mail.run(), name="mail-relay")
            runtime.spawn(notifications.tell_customers(runtime, settings), name="acting-notices")
            runtime.spawn(notifications.digest_loop(runtime, settings), name="acting-digest")
            app.state.runtime = runtime
            app.state.identity = identity
            yield

    app = create_service_app(
        title="onbehalf identity",
        lifespan=lifespan,
        routers=[router, customers_router, oauth_router, me_router],
    )
    app.add_middleware(LoginBurstGuard, limit=settings.login_max_in_flight_per_address)
    return app
