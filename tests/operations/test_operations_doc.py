"""docs/operations.md names every setting of every settings class and every durable consumer."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from onbehalf.stack import PROJECT_ROOT

DOC = Path(PROJECT_ROOT) / "docs" / "operations.md"
MODULES = [
    "libs.common.settings",
    *(f"services.{name}.settings" for name in ("identity", "catalog", "cart", "orders", "audit")),
    "services.console.settings",
]


def settings_classes() -> list[type[BaseSettings]]:
    found: list[type[BaseSettings]] = []
    for module_name in MODULES:
        for value in vars(importlib.import_module(module_name)).values():
            is_settings = isinstance(value, type) and issubclass(value, BaseSettings)
            if is_settings and value is not BaseSettings and value not in found:
                found.append(value)
    return found


def test_every_setting_is_documented() -> None:
    doc = DOC.read_text()
    missing = []
    for cls in settings_classes():
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            names = (
                [str(choice) for choice in alias.choices]
                if isinstance(alias, AliasChoices)
                else [f"ONBEHALF_{name.upper()}"]
            )
            if not any(f"`{env}`" in doc for env in names):
                missing.append(f"{cls.__name__}.{name} ({' or '.join(names)})")
    assert not missing, "not in docs/operations.md: " + ", ".join(missing)


def test_every_durable_consumer_is_documented() -> None:
    doc = DOC.read_text()
    code = "\n".join(p.read_text() for p in (Path(PROJECT_ROOT) / "services").rglob("*.py"))
    durables = set(re.findall(r'durable="([a-z-]+)"', code)) | {"audit"}
    assert len(durables) >= 6, durables
    consumers = doc[doc.index("## Consumers") :]
    missing = [name for name in sorted(durables) if f"| `{name}`" not in consumers]
    assert not missing, f"consumers not in docs/operations.md#consumers: {missing}"
