"""The Oso authorizer: loads policies/ once per process and answers every decision with a reason."""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from oso import Oso
from polar import Variable
from polar.exceptions import OsoError
from prometheus_client import Counter

from libs.common.errors import Forbidden
from libs.common.principals import (
    ActingSession,
    CustomerUser,
    Principal,
    StaffUser,
    actor_ref,
    subject_ref,
)
from libs.common.resources import POLICY_CLASSES

log = structlog.get_logger("decision")

DECISIONS = Counter("onbehalf_policy_decisions_total", "Policy decisions", ["action", "allowed"])

PRINCIPAL_CLASSES: tuple[type, ...] = (StaffUser, CustomerUser, ActingSession)


class PolicyError(Exception):
    """The policy in policies/ cannot be loaded; a service refuses to start with it."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    action: str
    reason: str | None
    revision: str
    micros: float


def policy_files(policy_dir: Path) -> list[Path]:
    files = sorted(policy_dir.glob("*.polar"))
    if not files:
        raise PolicyError(f"no *.polar files in {policy_dir}")
    return files


def policy_revision(files: list[Path]) -> str:
    """A short hash of every policy file's name and content: which rules were in force."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def load_policy(policy_dir: Path) -> tuple[Oso, str]:
    """Build a fresh Oso with every class registered; any load warning is an error."""
    files = policy_files(policy_dir)
    oso = Oso()
    for cls in PRINCIPAL_CLASSES + POLICY_CLASSES:
        oso.register_class(cls)
    printed = io.StringIO()
    try:
        # Oso prints some mistakes (unknown specializers, missing allow) as warnings on stdout.
        with contextlib.redirect_stdout(printed):
            oso.load_files([str(f) for f in files])
    except OsoError as exc:
        raise PolicyError(f"invalid policy in {policy_dir}: {exc}") from exc
    warnings = [line for line in printed.getvalue().splitlines() if "[warning]" in line.lower()]
    if warnings:
        raise PolicyError("policy warnings are errors:\n" + "\n".join(warnings))
    return oso, policy_revision(files)


def describe(obj: Any) -> str:
    """A log-safe name for a principal or resource (ids only, no personal data)."""
    ident = getattr(obj, "id", None) or getattr(obj, "org_id", None) or getattr(obj, "area", "")
    return f"{type(obj).__name__}:{ident}"


class Authorizer:
    """Asks Oso; never decides anything itself. One instance per process."""

    def __init__(self, policy_dir: Path) -> None:
        self.policy_dir = policy_dir
        self.oso, self.revision = load_policy(policy_dir)

    def decide(self, principal: Principal, action: str, resource: object) -> Decision:
        started = time.perf_counter()
        allowed = bool(self.oso.is_allowed(principal, action, resource))
        reason = None if allowed else self.deny_reason(principal, action, resource)
        micros = (time.perf_counter() - started) * 1e6
        decision = Decision(allowed, action, reason, self.revision, micros)
        self._log(principal, resource, decision)
        return decision

    def authorize(self, principal: Principal, action: str, resource: object) -> Decision:
        """Allow or raise Forbidden carrying the policy's reason."""
        decision = self.decide(principal, action, resource)
        if not decision.allowed:
            raise Forbidden(
                f"not allowed to {action} {type(resource).__name__}",
                reason=decision.reason,
            )
        return decision

    def deny_reason(self, principal: Principal, action: str, resource: object) -> str:
        """The first `deny_reason` rule of the policy that matches, else a generic one."""
        results = self.oso.query_rule(
            "deny_reason", principal, action, resource, Variable("reason")
        )
        for result in results:
            reason = result["bindings"].get("reason")
            if isinstance(reason, str):
                return reason
        return f"no policy rule lets a {principal.kind} principal {action} this {type(resource).__name__}"

    def _log(self, principal: Principal, resource: object, decision: Decision) -> None:
        DECISIONS.labels(decision.action, str(decision.allowed).lower()).inc()
        actor_id, _ = actor_ref(principal)
        subject_org_id, _ = subject_ref(principal)
        log.info(
            "policy_decision",
            allowed=decision.allowed,
            principal=principal.kind,
            actor_id=actor_id,
            subject_org_id=subject_org_id,
            action=decision.action,
            resource=describe(resource),
            reason=decision.reason,
            policy_revision=decision.revision,
            micros=round(decision.micros, 1),
        )
