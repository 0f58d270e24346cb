"""Identity's settings: the first platform admin, token lifetimes, the seller organisation."""

from __future__ import annotations

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
    # Threads that compute scrypt; more would only make a login flood eat more CPU.
    password_hash_workers: int = 2
    password_min_length: int = 12
