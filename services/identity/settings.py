"""Identity's settings: the first platform admin, token lifetimes, the seller organisation."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from libs.common.runtime import ServiceRuntime
from libs.common.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: str = "identity"
    port: int = 8001
    admin_email: str = "admin@seller.example"
    admin_password: str = "change-me-now"
    admin_name: str = "Platform Admin"
    seller_org_name: str = "Seller"
    seller_contract_number: str = "SELLER"
    seller_country: str = "DE"
    access_token_seconds: int = 3600
    # An acting session nobody used for this long ends (the maximum lifetime is shared:
    # ServiceSettings.acting_session_max_seconds).
    acting_idle_seconds: int = 30 * 60
    # How often identity looks for sessions that timed out.
    session_sweep_seconds: float = 1.0
    # Login throttling: this many failed logins within the window refuse further attempts
    # (429) for the account, or for the client address, until the oldest one leaves it.
    login_window_seconds: int = 15 * 60
    login_max_failures_per_account: int = 10
    login_max_failures_per_address: int = 100
    # Logins from one client address being handled at once; more are refused at once (429),
    # so that a burst from one address never makes other people's logins queue behind it.
    login_max_in_flight_per_address: int = 16
    # Threads that compute scrypt; more would only make a login flood eat more CPU.
    password_hash_workers: int = 2
    password_min_length: int = 12
    # The key-encryption key of the signing keys (a mounted Secret); by default a 0600 file
    # made in the data folder at the first start.
    signing_kek_file: Path | None = None
    # A new signing key this often (tokens signed with the old one stay valid until they
    # expire); `onbehalf keys rotate` rotates at once.
    signing_key_rotation_days: float = 30.0
    # How often identity looks for a key another replica made, or a rotation that is due.
    signing_key_check_seconds: float = 30.0
    # Outgoing mail (libs/common/mail.py): `smtp://host:port`, `smtps://user:pass@host`; unset,
    # mail waits in the outbox. `onbehalf run` and the test stack set the development sink.
    smtp_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SMTP_URL", "ONBEHALF_SMTP_URL")
    )
    mail_sender: str = "onbehalf <no-reply@onbehalf.invalid>"
    mail_poll_seconds: float = 1.0
    # Links in mails point at the console (its invitation and remote-assistance pages).
    console_url: str = "http://127.0.0.1:8000"
    # An invitation can be accepted this long after it was sent (or resent); 0 in tests
    # stands for "the seven days have passed".
    invitation_valid_days: float = Field(default=7.0, ge=0)
    # The daily digest of acting sessions goes out this often (a day), checked every minute.
    acting_digest_period_seconds: float = 24 * 3600
    acting_digest_check_seconds: float = 60.0

    # Personal login links (login_links.py): offered to users who opt in; to staff who can act
    # for customers only when the second setting says so too (docs/decisions.md).
    login_links_enabled: bool = True
    login_links_for_acting_staff: bool = False

    @property
    def longest_token_seconds(self) -> int:
        """How long a token may live: a retired key is published this long after retiring."""
        return max(self.access_token_seconds, self.acting_session_max_seconds)


def identity_settings(runtime: ServiceRuntime) -> IdentitySettings:
    """Identity's own settings, as the runtime was started with them (app.py): business
    functions reach them through the runtime, like everything else they need."""
    return runtime.settings_as(IdentitySettings)
