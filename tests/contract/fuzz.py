"""Schemathesis, through its Python API, against one service of the running test stack."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.engine import Status, from_schema
from schemathesis.engine.events import EngineFinished, NonFatalError, ScenarioFinished

STATEFUL_MAX_STEPS = 6


@dataclass
class Outcome:
    """What one run found: operations, generated cases, and every failure by check."""

    label: str
    operations: int = 0
    cases: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    # Generated cases per phase (examples, coverage, fuzzing, stateful).
    by_phase: Counter[str] = field(default_factory=Counter)
    # Stateful steps by the OpenAPI link they followed (its transition id).
    links: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop_reason: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors


def run(
    label: str,
    schema_url: str,
    *,
    token: str | None,
    parameters: dict[str, Any],
    exclude: list[str],
    max_examples: int,
    max_time: int,
    phases: list[str] | None = None,
) -> Outcome:
    """Every check, bounded by `max_examples` and `max_time` (seconds); every phase but the
    stateful one, or just `phases` (the stateful phase follows the documents' OpenAPI links
    only, in scenarios of at most STATEFUL_MAX_STEPS calls)."""
    config: dict[str, Any] = {
        "seed": 12,
        "max-time": max_time,
        "request-timeout": 10,
        "parameters": parameters,
        "generation": {"max-examples": max_examples, "deterministic": False, "database": "none"},
        "checks": {
            "enabled": True,
            # The generated value is valid by the schema, yet the data says no: a SKU the
            # catalog does not carry, a cart version that moved on, a list name in use. Those
            # answers are documented on the operation; the check still fails on anything else.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "412", "422", "429"]
            },
            # Above this, something is wrong (a request that hangs, a cache that does not work).
            "max_response_time": 5.0,
        },
        "phases": {"stateful": {"enabled": False}},
    }
    if phases is not None:
        config["phases"] = {
            phase: {"enabled": phase in phases} for phase in ("examples", "coverage", "fuzzing")
        }
        config["phases"]["stateful"] = {
            "enabled": "stateful" in phases,
            "max-steps": STATEFUL_MAX_STEPS,
            # Our links only: what a client generated from the documents can follow.
            "inference": {"algorithms": []},
        }
    if token:
        config["headers"] = {"Authorization": f"Bearer {token}"}
    config["operations"] = [
        # RFC 6749 §5.2: the token and introspection endpoints answer a request the form
        # schema allows but OAuth does not (a password grant without a password) with 400.
        {
            "include-operation-id": ["oauth_token", "oauth_introspect"],
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "400", "401", "403", "429"]
                }
            },
        }
    ]
    if exclude:
        config["operations"].append({"include-operation-id": exclude, "enabled": False})
    loaded = schemathesis.openapi.from_url(
        schema_url, config=schemathesis.config.SchemathesisConfig.from_dict(config)
    )
    outcome = Outcome(label=label)
    for event in from_schema(loaded).execute():
        if isinstance(event, ScenarioFinished) and event.is_test_scenario:
            outcome.cases += len(event.recorder.cases)
            outcome.by_phase[str(event.phase)] += len(event.recorder.cases)
            for node in event.recorder.cases.values():
                if node.transition is not None:
                    outcome.links[node.transition.id] += 1
            if event.status != Status.SKIP:
                outcome.operations += 1
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        outcome.failures[check.name] += 1
                        if len(outcome.examples) < 30:
                            case = event.recorder.cases[case_id].value
                            failure = check.failure_info.failure
                            outcome.examples.append(
                                f"{label} {event.label} [{check.name}] {failure.title}: "
                                f"{failure.message[:300]} :: {case.method} "
                                f"{case.formatted_path} query={case.query} body={case.body!r:.200}"
                            )
        elif isinstance(event, NonFatalError):
            outcome.errors.append(f"{label} {event.label}: {str(event.info)[:300]}")
        elif isinstance(event, EngineFinished):
            outcome.stop_reason = str(event.stop_reason)
            outcome.seconds = event.running_time
    return outcome


def summary(outcomes: list[Outcome]) -> str:
    failures: Counter[str] = Counter()
    for outcome in outcomes:
        failures.update(outcome.failures)
    lines = [
        f"{o.label:<22} {o.operations:>3} scenarios {o.cases:>6} cases "
        f"{sum(o.failures.values()):>4} failures {len(o.errors):>3} errors "
        f"{o.seconds:6.1f}s {o.stop_reason}"
        for o in outcomes
    ]
    total_cases = sum(o.cases for o in outcomes)
    total_ops = sum(o.operations for o in outcomes)
    lines.append(
        f"{'TOTAL':<22} {total_ops:>3} scenarios {total_cases:>6} cases "
        f"{sum(failures.values()):>4} failures {sum(len(o.errors) for o in outcomes):>3} errors"
    )
    lines += [f"  {name}: {count}" for name, count in failures.most_common()]
    return "\n".join(lines)
