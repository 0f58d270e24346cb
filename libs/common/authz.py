"""The Oso authorizer: loads policies/ once per process and answers every decision with a reason."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any, cast

import structlog
from oso import Oso
from polar import Variable
from polar.exceptions import OsoError
from polar.partial import TypeConstraint
from prometheus_client import Counter

from libs.common.errors import Forbidden
from libs.common.policy_filter import Untranslatable
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
# The labelled children of DECISIONS by (action, allowed): `labels()` is a lookup under a lock.
_DECISION_COUNTERS: dict[tuple[str, bool], Any] = {}

PRINCIPAL_CLASSES: tuple[type, ...] = (StaffUser, CustomerUser, ActingSession)


class PolicyError(Exception):
    """The policy in policies/ cannot be loaded; a service refuses to start with it.

    `file`, `line` and `column` say where, when Oso or the culprit search could tell; the
    message then starts with `file:line:column:` so editors and CI logs can jump there.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column


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


def _new_oso() -> Oso:
    oso = Oso()
    for cls in PRINCIPAL_CLASSES + POLICY_CLASSES:
        oso.register_class(cls)
    return oso


def _load_files(files: list[Path]) -> tuple[Oso, str | None, str]:
    """(oso, Oso's error message or None, what Oso printed while loading)."""
    oso = _new_oso()
    printed = io.StringIO()
    error: str | None = None
    try:
        # Oso prints some mistakes (unknown specializers, missing allow) as warnings on stdout.
        with contextlib.redirect_stdout(printed):
            oso.load_files([str(f) for f in files])
    except OsoError as exc:
        error = str(exc)
    return oso, error, printed.getvalue()


# Oso ends most messages with "at line N, column C of file F:" and then a code excerpt; a
# runtime error in an inline query carries a trace of several, the last being the failure.
_LOCATION = re.compile(r" at line (\d+), column (\d+)(?: of file (.+?))?(?=:?\s*$)", re.MULTILINE)
_HELP = re.compile(r"^\s*Get help with Oso.*$", re.MULTILINE)
# Messages Oso gives without any location, and the declaration that causes each.
_UNLOCATED_CAUSES = {
    "required rule has_role": re.compile(r"\broles\s*="),
    "required rule has_relation": re.compile(r"\brelations\s*="),
    "required rule has_permission": re.compile(r"\bpermissions\s*="),
}


def _headline(message: str) -> str:
    """The first line of an Oso message without its location: what went wrong, comparable
    between loads of different file sets."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    return _LOCATION.sub("", first).rstrip(": ")


def _find_culprit(files: list[Path], message: str) -> Path | None:
    """The file whose addition makes Oso report `message`: load growing prefixes of the file
    list, because other files may be needed for the culprit to load at all."""
    wanted = _headline(message)
    for count in range(1, len(files) + 1):
        _, error, printed = _load_files(files[:count])
        found = [error] if error else []
        found += [line for line in printed.splitlines() if "[warning]" in line.lower()]
        if any(_headline(f.replace("[warning] ", "")) == wanted for f in found):
            return files[count - 1]
    return None


def _policy_error(files: list[Path], message: str, *, prefix: str = "") -> PolicyError:
    """A PolicyError for one Oso message, starting with `file:line:column:` where known."""
    body = _HELP.sub("", message).rstrip()
    matches = list(_LOCATION.finditer(body))
    line = column = None
    file: str | None = None
    if matches:
        last = matches[-1]
        line, column, file = int(last.group(1)), int(last.group(2)), last.group(3)
        body = body[: last.start()] + body[last.end() :].lstrip(":")
    if file is None:
        culprit = files[0] if len(files) == 1 else _find_culprit(files, message)
        if culprit is not None:
            file = str(culprit)
            if line is None:
                line = _line_of_cause(culprit, body)
    where = ":".join(str(p) for p in (file, line, column) if p is not None)
    text = f"{where}: {prefix}{body.strip()}" if where else f"{prefix}{body.strip()}"
    return PolicyError(text, file=file, line=line, column=column)


def _line_of_cause(path: Path, message: str) -> int | None:
    for phrase, declaration in _UNLOCATED_CAUSES.items():
        if phrase in message:
            for number, text in enumerate(path.read_text().splitlines(), start=1):
                if declaration.search(text):
                    return number
    return None


def _warnings(printed: str) -> list[str]:
    """Each `[warning]` line together with the code excerpt Oso prints under it."""
    blocks: list[list[str]] = []
    for line in printed.splitlines():
        if "[warning]" in line.lower():
            blocks.append([line.split("]", 1)[1].strip()])
        elif blocks and line.strip():
            blocks[-1].append(line)
    return ["\n".join(block) for block in blocks]


def load_policy(policy_dir: Path) -> tuple[Oso, str]:
    """Build a fresh Oso with every class registered; any load warning is an error.

    A PolicyError names the file and line Oso reports, or the file found by loading the files
    one by one when Oso does not say which file it means."""
    files = policy_files(policy_dir)
    oso, error, printed = _load_files(files)
    if error is not None:
        raise _policy_error(files, error)
    warnings = _warnings(printed)
    if warnings:
        errors = [_policy_error(files, w, prefix="warning treated as error: ") for w in warnings]
        first = errors[0]
        raise PolicyError(
            "\n".join(str(e) for e in errors), file=first.file, line=first.line, column=first.column
        )
    return oso, policy_revision(files)


def describe(obj: Any) -> str:
    """A log-safe name for a principal or resource (ids only, no personal data)."""
    ident = getattr(obj, "id", None) or getattr(obj, "org_id", None) or getattr(obj, "area", "")
    return f"{type(obj).__name__}:{ident}"


_FIELDS: dict[type, Callable[[object], tuple[Any, ...]]] = {}


def _fields_of(obj: object) -> Callable[[object], tuple[Any, ...]] | None:
    """A function giving every field of a dataclass instance of `obj`'s class, in order."""
    if not is_dataclass(obj):
        return None
    names = [f.name for f in fields(obj)]
    if not names:
        return lambda each: ()
    if len(names) == 1:
        (name,) = names
        return lambda each: (getattr(each, name),)
    return cast(Callable[[object], tuple[Any, ...]], attrgetter(*names))


def _attributes(obj: object) -> tuple[Any, ...] | None:
    """Everything a rule can read of a principal or resource: its class and every field
    (lists as tuples). The classes the policy sees are dataclasses whose methods are pure
    functions of their fields, so equal attributes mean an equal decision. None when `obj`
    is not such a dataclass (then the decision is not cached)."""
    cls = type(obj)
    getter = _FIELDS.get(cls)
    if getter is None:
        getter = _fields_of(obj)
        if getter is None:
            return None
        _FIELDS[cls] = getter
    return (cls, *[tuple(value) if isinstance(value, list) else value for value in getter(obj)])


class Authorizer:
    """Asks Oso; never decides anything itself. One instance per process.

    Answers are cached, keyed by the policy revision and every attribute of the principal
    and the resource (the rules read nothing else: no I/O, no clock), so a cached answer is
    the answer Oso would give; a reload changes the revision, and no answer of the old
    policy is served again."""

    CACHE_SIZE = 20_000
    CONDITIONS_CACHE_SIZE = 2_000

    def __init__(self, policy_dir: Path) -> None:
        self.policy_dir = policy_dir
        self.oso, self.revision = load_policy(policy_dir)
        # (revision, principal attributes, action, resource attributes) -> (allowed, reason)
        self._cache: OrderedDict[tuple[Any, ...], tuple[bool, str | None]] = OrderedDict()
        self.cache_hits = 0
        # (revision, principal attributes, action, resource class) -> the policy's conditions:
        # a partial evaluation costs milliseconds, and its answer is as pure as a decision.
        self._conditions: OrderedDict[tuple[Any, ...], tuple[Any, ...]] = OrderedDict()

    def reload(self) -> str:
        """Load policies/ again into a new Oso and swap it in (a second load into a running
        Oso is unsafe, see PITFALLS); returns the new revision. A PolicyError keeps the old."""
        oso, revision = load_policy(self.policy_dir)
        self.oso, self.revision = oso, revision
        self._cache.clear()
        self._conditions.clear()
        log.info("policy_reloaded", policy_revision=revision)
        return revision

    def decide(
        self, principal: Principal, action: str, resource: object, *, cached: bool = True
    ) -> Decision:
        """Oso's answer (from the cache when the same question was asked under the same
        revision); `cached=False` asks Oso itself, e.g. to trace which rules decide."""
        started = time.perf_counter()
        oso, revision = self.oso, self.revision
        who, what = _attributes(principal), _attributes(resource)
        key = None if who is None or what is None or not cached else (revision, who, action, what)
        hit: tuple[bool, str | None] | None = None
        if key is not None:
            try:
                hit = self._cache.get(key)
            except TypeError:  # an unhashable field value: decide without the cache
                key = None
        if hit is not None:
            self.cache_hits += 1
            allowed, reason = hit
        else:
            allowed = bool(oso.is_allowed(principal, action, resource))
            reason = None if allowed else self._deny_reason(oso, principal, action, resource)
            if key is not None and revision == self.revision:
                self._cache[key] = (allowed, reason)
                if len(self._cache) > self.CACHE_SIZE:
                    self._cache.popitem(last=False)
        micros = (time.perf_counter() - started) * 1e6
        decision = Decision(allowed, action, reason, revision, micros)
        self._log(principal, resource, decision)
        return decision

    def conditions(self, principal: Principal, action: str, resource: type) -> list[Any]:
        """The policy's conditions for `principal` to `action` some `resource` it does not
        name yet: one expression over `_this` (the resource) per way the policy allows, or
        True for one that allows unconditionally; [] when nothing could be allowed. Oso's
        partial evaluation of `allow`; see libs/common/policy_filter.py for its SQL. Cached
        like decisions: by revision and every attribute of the principal."""
        revision = self.revision
        key = self.conditions_key(principal, action, resource)
        if key is not None:
            hit = self._conditions.get(key)
            if hit is not None:
                self._conditions.move_to_end(key)
                return list(hit)
        found = self._partially_evaluate(principal, action, resource)
        if key is not None and revision == self.revision:
            self._conditions[key] = tuple(found)
            if len(self._conditions) > self.CONDITIONS_CACHE_SIZE:
                self._conditions.popitem(last=False)
        return found

    def conditions_key(
        self, principal: Principal, action: str, resource: type
    ) -> tuple[Any, ...] | None:
        """What `conditions` depends on, hashable (None when it cannot be cached): a caller
        deriving something from the conditions (a SQL filter) may cache it by this key."""
        who = _attributes(principal)
        if who is None:
            return None
        key = (self.revision, who, action, resource.__name__)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def _partially_evaluate(self, principal: Principal, action: str, resource: type) -> list[Any]:
        oso = self.oso
        unknown = Variable("resource")
        found = []
        try:
            for result in oso.query_rule(
                "allow",
                principal,
                action,
                unknown,
                bindings={"resource": TypeConstraint(unknown, resource.__name__)},
                accept_expression=True,
            ):
                bound = result["bindings"].get("resource")
                found.append(True if bound is None or isinstance(bound, resource) else bound)
        except OsoError as exc:
            # e.g. a rule calls a method of the unknown resource: only a row can answer that.
            raise Untranslatable(_headline(str(exc))) from exc
        return found

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
        return self._deny_reason(self.oso, principal, action, resource)

    @staticmethod
    def _deny_reason(oso: Oso, principal: Principal, action: str, resource: object) -> str:
        results = oso.query_rule("deny_reason", principal, action, resource, Variable("reason"))
        for result in results:
            reason = result["bindings"].get("reason")
            if isinstance(reason, str):
                return reason
        return (
            f"no policy rule allows this {principal.kind} principal to {action} "
            f"a {type(resource).__name__}"
        )

    def _log(self, principal: Principal, resource: object, decision: Decision) -> None:
        counter = _DECISION_COUNTERS.get((decision.action, decision.allowed))
        if counter is None:
            counter = DECISIONS.labels(decision.action, str(decision.allowed).lower())
            _DECISION_COUNTERS[(decision.action, decision.allowed)] = counter
        counter.inc()
        # Every request asks at least once: below INFO, build nothing for a line not written.
        if not log.is_enabled_for(logging.INFO):
            return
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
