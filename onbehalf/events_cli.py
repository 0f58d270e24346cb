"""`onbehalf events export|check`: the event catalogue, AsyncAPI 3 from libs/contracts."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import typer
from pydantic.json_schema import models_json_schema

from libs.common.events import service_source
from libs.common.settings import PROJECT_ROOT
from libs.common.web import API_VERSION
from libs.contracts import event_types
from libs.contracts.base import Event, event_name

events_app = typer.Typer(no_args_is_help=True, help=__doc__)

DEFAULT_PATH = PROJECT_ROOT / "docs" / "asyncapi.json"
SCHEMAS = "#/components/schemas/"
CONTENT_TYPE = "application/cloudevents+json"

# The CloudEvents 1.0 structured envelope every event travels in (JSON event format), with our
# extension attributes; the message of each type narrows `type`, `source` and `data`.
_ID = {"type": "string", "minLength": 1, "maxLength": 36}
_ID_EXTENSIONS = ("actorid", "actororgid", "subjectorgid", "subjectuserid", "actingsessionid")
ENVELOPE: dict[str, Any] = {
    "type": "object",
    "title": "CloudEvent",
    "description": "CloudEvents 1.0, JSON event format, signed by its emitter (docs/audit.md). "
    "Extension attributes: actor and subject ids, the acting session, the policy revision, the "
    "signature and its key id. A consumer ignores attributes it does not know.",
    "required": [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "policyrevision",
        "signature",
        "signaturekid",
        "data",
    ],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "format": "uri"},
        "type": {"type": "string", "pattern": r"^com\.onbehalf\.[a-z]+\.[a-z_]+(\.[a-z_]+)*$"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"const": "application/json"},
        **{name: _ID for name in _ID_EXTENSIONS},
        "policyrevision": {"type": "string", "minLength": 1},
        "signature": {"type": "string", "minLength": 1},
        "signaturekid": {"type": "string", "minLength": 1},
        "data": {"type": "object"},
    },
}


def _summary(contract: type[Event]) -> str:
    """The contract's docstring, which says what happened (its first paragraph)."""
    doc = inspect.getdoc(contract) or ""
    if doc == inspect.getdoc(Event):  # no docstring of its own: inherited
        return f"{event_name(contract.event_type)}"
    return " ".join(doc.split("\n\n", 1)[0].split())


def catalogue() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: for every event type, its channel (the NATS subject), the
    `send` operation of its owner and its message (the envelope with `type`, `source` and the
    data schema generated from the contract's pydantic model, as it is serialised)."""
    contracts = sorted(event_types().items())
    refs, definitions = models_json_schema(
        [(contract, "serialization") for _, contract in contracts],
        by_alias=True,
        ref_template=SCHEMAS + "{model}",
    )
    schemas: dict[str, Any] = {"CloudEvent": ENVELOPE, **definitions.get("$defs", {})}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, contract in contracts:
        name = event_name(event_type)
        owner = name.split(".", 1)[0]
        messages[name] = {
            "name": event_type,
            "title": contract.__name__,
            "summary": _summary(contract),
            "contentType": CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {
                        "type": "string",
                        "description": "The event id: JetStream de-duplicates on it.",
                    }
                },
            },
            "payload": {
                "allOf": [
                    {"$ref": SCHEMAS + "CloudEvent"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "source": {"const": service_source(owner)},
                            "data": refs[(contract, "serialization")],
                        },
                    },
                ]
            },
        }
        channels[name] = {
            "address": contract.subject(),
            "title": event_type,
            "messages": {contract.__name__: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"{name}.send"] = {
            "action": "send",
            "title": f"{owner} publishes {contract.__name__}",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{contract.__name__}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "onbehalf events",
            "version": API_VERSION,
            "description": "Every event the five services publish: CloudEvents 1.0 in JSON on "
            "the JetStream stream EVENTS, subject `events.<service>.<entity>.<verb>`, type "
            "`com.onbehalf.<service>.<entity>.<verb>`, source `urn:onbehalf:service:<service>`. "
            "Generated from libs/contracts by `onbehalf events export`; see docs/api.md.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "nats": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "JetStream; each service publishes only its own "
                "`events.<service>.>` with its own credentials (docs/security-reviewers.md).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def rendered() -> str:
    return json.dumps(catalogue(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale(path: Path = DEFAULT_PATH) -> bool:
    """Whether the exported catalogue differs from what the contracts say."""
    return not path.is_file() or path.read_text() != rendered()


@events_app.command()
def export(path: Path = typer.Option(DEFAULT_PATH, help="Where the catalogue goes")) -> None:
    """Write the event catalogue (AsyncAPI 3) to docs/asyncapi.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rendered())
    typer.echo(f"wrote {path} ({len(event_types())} event types)")


@events_app.command()
def check(path: Path = typer.Option(DEFAULT_PATH, help="Where the catalogue is")) -> None:
    """Exit 1 when the exported catalogue is not what libs/contracts says (run `export`)."""
    if stale(path):
        typer.echo(f"stale: {path} (run: onbehalf events export)")
        raise typer.Exit(1)
    typer.echo(f"{path} is current")
