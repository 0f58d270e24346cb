"""Access tokens: the claim layout shared by issuer and verifiers, and local verification from JWKS."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import structlog
from prometheus_client import Counter

from libs.common.errors import Unauthenticated
from libs.common.principals import ActingSession, CustomerUser, Principal, StaffUser
from libs.common.revocation import RevocationSet, login_key, org_key, user_key

log = structlog.get_logger("tokens")

ALGORITHM = "EdDSA"
TOKEN_EXCHANGE_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def claims_of(principal: Principal) -> dict[str, Any]:
    """The claims that describe `principal` (without iss/aud/iat/exp, added by the issuer)."""
    if isinstance(principal, ActingSession):
        # RFC 8693: the customer organisation is the subject, the staff member the actor.
        return {
            "sub": principal.subject_org_id,
            "kind": "acting",
            "org_id": principal.subject_org_id,
            "org_name": principal.subject_name,
            "sid": principal.id,
            "mode": principal.mode,
            # RFC 8693 §4.1: `act` names the actor (sub and identity claims), never rights;
            # the actor's roles travel in a private top-level claim.
            "act": {
                "sub": principal.actor_id,
                "name": principal.actor_name,
                "org_id": principal.actor_org_id,
            },
            "actor_roles": list(principal.actor_roles),
            **_session_claims(
                principal.login_session_id, principal.actor_generation, principal.org_generation
            ),
        }
    claims: dict[str, Any] = {
        "sub": principal.id,
        "kind": principal.kind,
        "org_id": principal.org_id,
        "name": principal.name,
        "email": principal.email,
        "roles": list(principal.roles),
    }
    if isinstance(principal, StaffUser):
        claims["permissions"] = list(principal.permissions)
        claims.update(_session_claims(principal.login_session_id, principal.generation, None))
    else:
        claims.update(
            _session_claims(
                principal.login_session_id, principal.generation, principal.org_generation
            )
        )
    return claims


def _session_claims(lsid: str | None, ugen: int, ogen: int | None) -> dict[str, Any]:
    """`lsid`: the login session (logout ends it); `ugen`: the generation of the user's rights
    (of the actor's, in an acting token); `ogen`: the customer organisation's. A verifier
    refuses a token whose generation is below the one in the revocation bucket."""
    claims: dict[str, Any] = {"ugen": ugen}
    if lsid is not None:
        claims["lsid"] = lsid
    if ogen is not None:
        claims["ogen"] = ogen
    return claims


def _generation(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name, 0)  # tokens issued before generations existed carry none
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} is not an integer")
    return value


def _lsid(claims: dict[str, Any]) -> str | None:
    value = claims.get("lsid")
    if value is not None and not isinstance(value, str):
        raise ValueError("lsid is not a string")
    return value


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        kind = claims["kind"]
        if kind == "acting":
            act = claims["act"]
            return ActingSession(
                id=claims["sid"],
                actor_id=act["sub"],
                actor_name=act["name"],
                actor_org_id=act["org_id"],
                subject_org_id=claims["sub"],
                subject_name=claims["org_name"],
                mode=claims["mode"],
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                actor_roles=list(claims.get("actor_roles", [])),
                login_session_id=_lsid(claims),
                actor_generation=_generation(claims, "ugen"),
                org_generation=_generation(claims, "ogen"),
            )
        if kind == "staff":
            return StaffUser(
                id=claims["sub"],
                org_id=claims["org_id"],
                name=claims["name"],
                email=claims.get("email", ""),
                roles=list(claims.get("roles", [])),
                permissions=list(claims.get("permissions", [])),
                login_session_id=_lsid(claims),
                generation=_generation(claims, "ugen"),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        if kind == "customer":
            return CustomerUser(
                id=claims["sub"],
                org_id=claims["org_id"],
                name=claims["name"],
                email=claims.get("email", ""),
                roles=list(claims.get("roles", [])),
                login_session_id=_lsid(claims),
                generation=_generation(claims, "ugen"),
                org_generation=_generation(claims, "ogen"),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise Unauthenticated("token claims are incomplete") from exc
    raise Unauthenticated(f"unknown principal kind {kind!r}")


JWKS_FETCHES = Counter("onbehalf_jwks_fetches_total", "Fetches of identity's key set")


class UnknownKey(Unauthenticated):
    """The token names a key this verifier does not hold (yet)."""


class TokenVerifier:
    """Verifies tokens against identity's published keys; no call to identity per request."""

    CACHE_SIZE = 10_000

    def __init__(self, *, issuer: str, audience: str, revoked: RevocationSet) -> None:
        self.issuer = issuer
        self.audience = audience
        self.revoked = revoked
        self._keys: dict[str, jwt.PyJWK] = {}
        # Set by the runtime of services that fetch identity's keys: where to refetch them.
        self.identity_url: str | None = None
        self.refetch_min_seconds = 30.0
        self._last_refetch = -math.inf
        self._refetch_lock = asyncio.Lock()
        # token -> (principal, exp): the signature is checked once; expiry and
        # revocation are still checked on every request.
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def set_jwks(self, jwks: dict[str, Any]) -> None:
        keys = {}
        for data in jwks.get("keys", []):
            key = jwt.PyJWK(data)
            if key.key_id:
                keys[key.key_id] = key
        self._keys = keys

    async def fetch_jwks(self, identity_url: str, *, timeout: float) -> None:
        """Fetch identity's key set once at start-up, waiting for identity up to `timeout`."""
        url = identity_url.rstrip("/") + "/.well-known/jwks.json"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                try:
                    response = await client.get(url)
                    response.raise_for_status()
                    self.set_jwks(response.json())
                    JWKS_FETCHES.inc()
                    log.info("jwks_loaded", url=url, keys=len(self._keys))
                    return
                except (httpx.HTTPError, ValueError) as exc:
                    if loop.time() > deadline:
                        raise RuntimeError(f"cannot fetch the key set from {url}: {exc}") from exc
                    await asyncio.sleep(0.2)

    async def verify_async(self, token: str) -> Principal:
        """`verify`, fetching identity's key set again once when the token's key is unknown."""
        try:
            return self.verify(token)
        except UnknownKey:
            if not await self._refetch():
                raise
            return self.verify(token)

    async def _refetch(self) -> bool:
        """True if the key set was fetched since the caller's attempt; at most one fetch per
        `refetch_min_seconds`, whatever the tokens say."""
        if self.identity_url is None:
            return False
        asked = time.monotonic()
        async with self._refetch_lock:
            if self._last_refetch >= asked:
                return True  # fetched while this caller waited
            if asked - self._last_refetch < self.refetch_min_seconds:
                return False
            self._last_refetch = time.monotonic()
            try:
                await self.fetch_jwks(self.identity_url, timeout=0)
            except RuntimeError as exc:
                log.warning("jwks_refetch_failed", error=str(exc))
                return False
            return True

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            principal, exp = cached
            if exp <= time.time():
                self._cache.pop(token, None)
                raise Unauthenticated("token has expired")
        else:
            principal, exp = self._verify_signature(token)
            self._cache[token] = (principal, exp)
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        self._check_current(principal)
        return principal

    def _check_current(self, principal: Principal) -> None:
        """Refuse an ended session, and rights that changed since the token was issued: a few
        look-ups in the in-memory revocation set, no I/O."""
        revoked = self.revoked
        if isinstance(principal, ActingSession):
            if principal.id in revoked:
                raise Unauthenticated("the acting session has ended")
            user, generation = principal.actor_id, principal.actor_generation
            org: str | None = principal.subject_org_id
            org_generation = principal.org_generation
        else:
            user, generation = principal.id, principal.generation
            org = principal.org_id if isinstance(principal, CustomerUser) else None
            org_generation = principal.org_generation if isinstance(principal, CustomerUser) else 0
        if principal.login_session_id and login_key(principal.login_session_id) in revoked:
            raise Unauthenticated("the login session has ended: sign in again")
        # Every change of rights raises the generation, so a token of a higher generation
        # than the standing this service heard of was issued after a later change (e.g. a
        # reactivation still on its way here): it is newer news than the standing, not refused.
        standing = revoked.standing(user_key(user))
        if standing is not None and generation <= standing.generation:
            if not standing.active:
                raise Unauthenticated("this user is deactivated")
            if generation < standing.generation:
                raise Unauthenticated("this user's rights have changed: sign in again")
        if org is not None:
            standing = revoked.standing(org_key(org))
            if standing is not None and org_generation <= standing.generation:
                if not standing.active:
                    raise Unauthenticated("this organisation is not active")
                if org_generation < standing.generation:
                    raise Unauthenticated("this organisation has changed: sign in again")

    def _verify_signature(self, token: str) -> tuple[Principal, float]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed bearer token") from exc
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise UnknownKey("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "nbf", "jti", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        return principal_from_claims(claims), float(claims["exp"])
