"""Domain errors that every service raises and the web layer maps to HTTP statuses."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the caller can act on; `status` is the HTTP status it becomes."""

    status: int = 400

    def __init__(self, detail: str, *, reason: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason
        self.extra = extra


class Unauthenticated(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class PreconditionFailed(DomainError):
    status = 412


class Invalid(DomainError):
    status = 422


class TooManyRequests(DomainError):
    """Refused for now; `retry_after` (seconds) goes into the body and the Retry-After header."""

    status = 429


class Unavailable(DomainError):
    status = 503


class OAuthError(DomainError):
    """An OAuth 2.0 error (RFC 6749 §5.2): the body carries `error` and `error_description`
    beside the usual `detail` and `reason` (docs/oauth.md)."""

    def __init__(
        self, error: str, detail: str, *, reason: str | None = None, status: int = 400
    ) -> None:
        super().__init__(detail, reason=reason, error=error, error_description=detail)
        self.status = status
