"""Decision tables (policies/tests/*.yaml) decided by the real policy, and explained rule by rule."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import threading
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from libs.common.authz import Authorizer, Decision
from libs.common.principals import ActingSession, CustomerUser, Principal, StaffUser
from libs.common.resources import POLICY_CLASSES

PRINCIPAL_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (StaffUser, CustomerUser, ActingSession)
}
RESOURCE_TYPES: dict[str, type] = {cls.__name__: cls for cls in POLICY_CLASSES}

Kind = Literal["principal", "resource"]

# Fields the policy never reads may be left out of a table: identifiers and display names
# default to the entry's own name, seller-side organisation ids to "seller".
_NAME_DEFAULTS = {"id", "name", "actor_id", "actor_name", "subject_name", "area"}
_SELLER_DEFAULTS = {(StaffUser, "org_id"), (ActingSession, "actor_org_id")}
# Derived from the type, never written in a table.
_DERIVED_FIELDS = {"kind"}

_ROW_FIELDS = {"principal", "action", "resource", "expected", "reason", "why"}
_TOP_FIELDS = {"principals", "resources", "rows"}


class TableError(Exception):
    """A decision table cannot be read; the message names the file, line and entry."""


@dataclass(frozen=True, slots=True)
class Row:
    file: str
    number: int
    line: int
    principal: str
    action: str
    resource: str
    expected: Literal["allow", "deny"]
    reason: str | None
    why: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.number}-{self.principal}-{self.action}-{self.resource}"


@dataclass(slots=True)
class Table:
    path: Path
    principals: dict[str, Principal]
    resources: dict[str, object]
    rows: list[Row]


@dataclass(frozen=True, slots=True)
class RowResult:
    row: Row
    allowed: bool
    reason: str | None

    @property
    def got(self) -> str:
        return "allow" if self.allowed else "deny"

    @property
    def passed(self) -> bool:
        if self.got != self.row.expected:
            return False
        return self.allowed or self.reason == self.row.reason


# ---------------------------------------------------------------- building objects


def _fits(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in get_args(hint))
    if origin is list:
        (item,) = get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if isinstance(hint, type):
        # bool is an int, and a YAML `yes` must not pass for a string or a number.
        return isinstance(value, hint) and not (isinstance(value, bool) and hint is not bool)
    return False


def _describe_hint(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe_hint(arg) for arg in get_args(hint))
    if origin is list:
        return f"a list of {_describe_hint(get_args(hint)[0])}s"
    if hint is type(None):
        return "null"
    return {"str": "string", "bool": "true/false", "datetime": "timestamp"}.get(
        getattr(hint, "__name__", str(hint)), str(hint)
    )


def build_object(spec: Any, *, kind: Kind, key: str, where: str) -> Any:
    """A principal or resource from its table (or JSON) description, checked field by field."""
    known = PRINCIPAL_TYPES if kind == "principal" else RESOURCE_TYPES
    if not isinstance(spec, dict):
        raise TableError(f"{where}: {kind} {key!r} must be a mapping with a 'type', got {spec!r}")
    type_name = spec.get("type")
    if type_name is None:
        raise TableError(f"{where}: {kind} {key!r} needs a 'type' ({', '.join(known)})")
    if type_name not in known:
        raise TableError(
            f"{where}: {kind} {key!r} has unknown type {type_name!r} "
            f"(a {kind} is one of {', '.join(known)})"
        )
    cls = known[type_name]
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _DERIVED_FIELDS}
    values: dict[str, Any] = {}
    for name, value in spec.items():
        if name == "type":
            continue
        if name not in fields:
            raise TableError(
                f"{where}: {kind} {key!r}: {type_name} has no field {name!r} "
                f"(fields: {', '.join(fields)})"
            )
        if not _fits(value, hints[name]):
            raise TableError(
                f"{where}: {kind} {key!r}: field {name!r} must be "
                f"{_describe_hint(hints[name])}, got {value!r}"
            )
        values[name] = value
    for name, spec_field in fields.items():
        required = (
            spec_field.default is dataclasses.MISSING
            and spec_field.default_factory is dataclasses.MISSING
        )
        if not required or name in values:
            continue
        if name in _NAME_DEFAULTS:
            values[name] = key
        elif (cls, name) in _SELLER_DEFAULTS:
            values[name] = "seller"
        else:
            raise TableError(f"{where}: {kind} {key!r}: {type_name} needs the field {name!r}")
    return cls(**values)


# ---------------------------------------------------------------- loading tables


def table_files(directory: Path) -> list[Path]:
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise TableError(f"no decision tables (*.yaml) in {directory}")
    return files


def _mapping_lines(node: yaml.Node | None) -> dict[str, int]:
    """Line (1-based) of each key of a YAML mapping node, for error messages."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def load_table(path: Path) -> Table:
    """Parse and check one table; every mistake raises TableError naming file and line."""
    try:
        # A file stream (not its text) so that YAML's own errors name the file and line.
        with path.open(encoding="utf-8") as stream:
            loader = yaml.SafeLoader(stream)
            try:
                root = loader.get_single_node()
                data = loader.construct_document(root) if root is not None else None
            finally:
                loader.dispose()
    except (OSError, yaml.YAMLError) as exc:
        raise TableError(f"{path}: cannot read the table: {exc}") from exc
    if not isinstance(data, dict):
        raise TableError(f"{path}: a table is a mapping with principals, resources and rows")
    unknown = set(data) - _TOP_FIELDS
    missing = _TOP_FIELDS - set(data)
    if unknown or missing:
        raise TableError(
            f"{path}: top-level keys must be exactly {', '.join(sorted(_TOP_FIELDS))}"
            + (f"; unknown: {', '.join(sorted(map(str, unknown)))}" if unknown else "")
            + (f"; missing: {', '.join(sorted(missing))}" if missing else "")
        )

    def objects(section: Literal["principals", "resources"], kind: Kind) -> dict[str, Any]:
        specs = data[section]
        if not isinstance(specs, dict):
            raise TableError(f"{path}: {section} must be a mapping of name to description")
        lines = _mapping_lines(_child(root, section))
        return {
            str(key): build_object(
                spec, kind=kind, key=str(key), where=f"{path}:{lines.get(str(key), '?')}"
            )
            for key, spec in specs.items()
        }

    principals: dict[str, Principal] = objects("principals", "principal")
    resources = objects("resources", "resource")
    raw_rows = data["rows"]
    if not isinstance(raw_rows, list) or not raw_rows:
        raise TableError(f"{path}: rows must be a non-empty list")
    rows_node = _child(root, "rows")
    row_lines = (
        [item.start_mark.line + 1 for item in rows_node.value]
        if isinstance(rows_node, yaml.SequenceNode)
        else [0] * len(raw_rows)
    )
    rows = [
        _row(path, number, line, raw, principals, resources)
        for number, (line, raw) in enumerate(zip(row_lines, raw_rows, strict=True), start=1)
    ]
    return Table(path=path, principals=principals, resources=resources, rows=rows)


def _row(
    path: Path,
    number: int,
    line: int,
    raw: Any,
    principals: dict[str, Principal],
    resources: dict[str, object],
) -> Row:
    where = f"{path}:{line}: row {number}"
    if not isinstance(raw, dict):
        raise TableError(f"{where}: a row is a mapping, got {raw!r}")
    unknown = set(raw) - _ROW_FIELDS
    if unknown:
        raise TableError(
            f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))} "
            f"(a row has {', '.join(sorted(_ROW_FIELDS))})"
        )
    for name in ("principal", "action", "resource", "expected", "why"):
        value = raw.get(name)
        if isinstance(value, bool):
            raise TableError(
                f"{where}: {name!r} is {value!r}: quote it (YAML reads yes/no/on/off as true/false)"
            )
        if not isinstance(value, str) or not value.strip():
            raise TableError(f"{where}: needs a non-empty string {name!r}")
    if raw["principal"] not in principals:
        raise TableError(
            f"{where}: unknown principal {raw['principal']!r} "
            f"(this table defines: {', '.join(principals) or 'none'})"
        )
    if raw["resource"] not in resources:
        raise TableError(
            f"{where}: unknown resource {raw['resource']!r} "
            f"(this table defines: {', '.join(resources) or 'none'})"
        )
    expected = raw["expected"]
    if expected not in ("allow", "deny"):
        raise TableError(f"{where}: expected must be allow or deny, got {expected!r}")
    reason = raw.get("reason")
    if expected == "deny" and (not isinstance(reason, str) or not reason):
        raise TableError(f"{where}: a deny row needs the exact expected 'reason'")
    if expected == "allow" and reason is not None:
        raise TableError(f"{where}: an allow row has no 'reason'")
    return Row(
        file=path.name,
        number=number,
        line=line,
        principal=raw["principal"],
        action=raw["action"],
        resource=raw["resource"],
        expected=expected,
        reason=reason,
        why=raw["why"].strip(),
    )


def load_tables(directory: Path) -> tuple[list[Table], list[TableError]]:
    """Every table in `directory`; malformed ones come back as errors, the rest still run."""
    tables: list[Table] = []
    errors: list[TableError] = []
    for path in table_files(directory):
        try:
            tables.append(load_table(path))
        except TableError as exc:
            errors.append(exc)
    return tables, errors


def evaluate(authorizer: Authorizer, tables: Iterable[Table]) -> list[RowResult]:
    results = []
    for table in tables:
        for row in table.rows:
            decision = authorizer.decide(
                table.principals[row.principal], row.action, table.resources[row.resource]
            )
            results.append(RowResult(row=row, allowed=decision.allowed, reason=decision.reason))
    return results


def _candidates(spec: str, kind: Kind, tables: list[Table]) -> dict[str, Any]:
    """{table file name: object} for `spec` given as inline JSON, `name` or `table:name`."""
    text = spec.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TableError(f"--{kind}: invalid JSON: {exc}") from exc
        return {"": build_object(data, kind=kind, key="inline", where=f"--{kind}")}
    stem, _, name = text.rpartition(":")
    found: dict[str, Any] = {}
    for table in tables:
        if stem and stem not in (table.path.stem, table.path.name):
            continue
        pool: dict[str, Any] = table.principals if kind == "principal" else table.resources
        if name in pool:
            found[table.path.name] = pool[name]
    if not found:
        raise TableError(f"--{kind}: no {kind} named {text!r} in the tables")
    return found


def find_pair(principal: str, resource: str, *, tables: list[Table]) -> tuple[Principal, object]:
    """The principal and resource of an `explain` question. Names are local to their table:
    a name defined differently in several tables is taken from the one table that defines
    both names alike, else it must be written `table:name`."""
    principals = _candidates(principal, "principal", tables)
    resources = _candidates(resource, "resource", tables)
    if len({repr(o) for o in principals.values()}) == 1 and (
        len({repr(o) for o in resources.values()}) == 1
    ):
        return next(iter(principals.values())), next(iter(resources.values()))
    pairs: dict[tuple[str, str], tuple[Principal, object]] = {}
    for file in {*principals, *resources} - {""}:
        # Inline JSON ("" key) goes with every table.
        who = principals.get("", principals.get(file))
        what = resources.get("", resources.get(file))
        if who is not None and what is not None:
            pairs[(repr(who), repr(what))] = (who, what)
    if len(pairs) == 1:
        return next(iter(pairs.values()))
    choices = sorted(
        f"{Path(f).stem}:{spec.rpartition(':')[2]}"
        for spec, pool in ((principal, principals), (resource, resources))
        for f in pool
        if f and len({repr(o) for o in pool.values()}) > 1
    )
    raise TableError(
        f"{principal!r} / {resource!r} mean different things in different tables; "
        f"say which with table:name ({', '.join(choices)})"
    )


# ---------------------------------------------------------------- coverage helpers

_DENY_REASON_HEAD = re.compile(
    r'^deny_reason\((?:[^;"]|"(?:[^"\\]|\\.)*")*?"((?:[^"\\]|\\.)*)"\s*\)\s*(?:if\b|;)',
    re.MULTILINE,
)
_ACTION_LITERAL = re.compile(r'^(?:allow|deny_reason)\(\s*[^,]+,\s*"([^"]+)"', re.MULTILINE)
_ACTION_LIST = re.compile(r"\baction\s+in\s+\[([^\]]*)\]")
_RULE_HEAD = re.compile(r"^([a-z_]\w*)\(", re.MULTILINE)


def _policy_texts(policy_dir: Path) -> dict[Path, str]:
    return {path: path.read_text() for path in sorted(policy_dir.glob("*.polar"))}


def policy_deny_reasons(policy_dir: Path) -> set[str]:
    """Every reason string a `deny_reason` rule of the policy can give."""
    return {
        match.group(1)
        for text in _policy_texts(policy_dir).values()
        for match in _DENY_REASON_HEAD.finditer(text)
    }


def policy_actions(policy_dir: Path) -> set[str]:
    """Every action the policy names, in rule heads or in `action in [...]` conditions."""
    actions: set[str] = set()
    for text in _policy_texts(policy_dir).values():
        actions.update(m.group(1) for m in _ACTION_LITERAL.finditer(text))
        for listed in _ACTION_LIST.finditer(text):
            actions.update(re.findall(r'"([^"]+)"', listed.group(1)))
    return actions


def policy_rules(policy_dir: Path) -> list[tuple[str, int, str]]:
    """(file name, line, rule name) of every rule the policy defines."""
    return [
        (path.name, text.count("\n", 0, match.start()) + 1, match.group(1))
        for path, text in _policy_texts(policy_dir).items()
        for match in _RULE_HEAD.finditer(text)
    ]


# ---------------------------------------------------------------- explaining one decision

# POLAR_LOG is process-wide and Oso prints the trace with Python's print, so one traced
# decision at a time, with stdout redirected for just that decision.
_TRACE_LOCK = threading.Lock()
_LOG_LINE = re.compile(r"^\[oso\]\[info\](?P<indent> *)(?P<text>.*)$")
_APPLICABLE = re.compile(r"^(?P<head>.*) at line (?P<line>\d+), column \d+ of file (?P<file>.+)$")


@dataclass(frozen=True, slots=True)
class RuleRef:
    """One rule of the policy as Oso's trace names it."""

    file: str
    line: int
    head: str
    depth: int = 0

    @property
    def location(self) -> str:
        return f"{_short_path(self.file)}:{self.line}"


@dataclass(slots=True)
class _Rule:
    indent: int
    text: str
    ref: RuleRef | None
    queries: list[_Query] = field(default_factory=list)


@dataclass(slots=True)
class _Query:
    indent: int
    name: str
    applicable: list[RuleRef] = field(default_factory=list)
    rules: list[_Rule] = field(default_factory=list)
    cursor: int = 0


@dataclass(slots=True)
class Explanation:
    decision: Decision
    # Allowed: the allow rule that matched, then the rules it relied on (depth = nesting).
    matched: list[RuleRef]
    # Denied: the allow rules Oso considered for these types (none of them matched) ...
    considered: list[RuleRef]
    # ... and the deny_reason rule that gave the reason (None for the authorizer's generic one).
    reason_rule: RuleRef | None
    trace: list[str]


def _short_path(file: str) -> str:
    try:
        return os.path.relpath(file) if Path(file).resolve().is_relative_to(Path.cwd()) else file
    except ValueError:
        return file


def traced_decide(
    authorizer: Authorizer, principal: Principal, action: str, resource: object
) -> tuple[Decision, list[str]]:
    """The authorizer's decision plus Oso's POLAR_LOG lines for it."""
    printed = io.StringIO()
    with _TRACE_LOCK:
        previous = os.environ.get("POLAR_LOG")
        os.environ["POLAR_LOG"] = "1"
        try:
            with contextlib.redirect_stdout(printed):
                # Past the decision cache: the trace is of Oso deciding.
                decision = authorizer.decide(principal, action, resource, cached=False)
        finally:
            if previous is None:
                del os.environ["POLAR_LOG"]
            else:
                os.environ["POLAR_LOG"] = previous
    return decision, [line for line in printed.getvalue().splitlines() if line.startswith("[oso]")]


def _parse_trace(lines: list[str]) -> list[_Query]:
    """The queries of a POLAR_LOG trace as a tree: query → rules tried → their sub-queries.

    Oso tries the applicable rules in the order it lists them, so each RULE line is the next
    listed rule whose head it starts with (two rules may share a head)."""
    roots: list[_Query] = []
    queries: list[_Query] = []
    rules: list[_Rule] = []
    in_applicable: _Query | None = None
    for line in lines:
        match = _LOG_LINE.match(line)
        if not match:
            continue
        indent, text = len(match.group("indent")), match.group("text")
        if in_applicable is not None:
            listed = _APPLICABLE.match(text)
            if listed and indent > in_applicable.indent:
                in_applicable.applicable.append(
                    RuleRef(listed.group("file"), int(listed.group("line")), listed.group("head"))
                )
                continue
            in_applicable = None
        if text.startswith("QUERY RULE: "):
            query = _Query(indent=indent, name=text[len("QUERY RULE: ") :].split("(", 1)[0])
            # A negated sub-query is logged at its rule's own indentation, hence `<=`.
            parent = next((r for r in reversed(rules) if r.indent <= indent), None)
            if parent is None:
                roots.append(query)
            else:
                parent.queries.append(query)
            queries.append(query)
        elif text == "APPLICABLE_RULES:" and queries:
            in_applicable = queries[-1]
        elif text.startswith("RULE: "):
            body = text[len("RULE: ") :]
            owner = next((q for q in reversed(queries) if q.indent < indent), None)
            if owner is None:
                continue
            ref = None
            for index in range(owner.cursor, len(owner.applicable)):
                if body.startswith(owner.applicable[index].head):
                    ref, owner.cursor = owner.applicable[index], index + 1
                    break
            rule = _Rule(indent=indent, text=body, ref=ref)
            owner.rules.append(rule)
            rules.append(rule)
    return roots


def _negated(rule_text: str, name: str) -> bool:
    return re.search(rf"\bnot\s+(\([^;]*?)?\b{re.escape(name)}\(", rule_text) is not None


def _success_path(query: _Query, depth: int) -> list[RuleRef]:
    """With depth-first search, the last rule tried for a query that succeeded is the rule
    that made it succeed; negated sub-queries succeeded by failing, so they are skipped."""
    if not query.rules:
        return []
    rule = query.rules[-1]
    path = [dataclasses.replace(rule.ref, depth=depth)] if rule.ref else []
    for sub in rule.queries:
        if not _negated(rule.text, sub.name):
            path.extend(_success_path(sub, depth + 1))
    unique: list[RuleRef] = []
    for ref in path:
        if ref not in unique:
            unique.append(ref)
    return unique


def explain(
    authorizer: Authorizer, principal: Principal, action: str, resource: object
) -> Explanation:
    decision, trace = traced_decide(authorizer, principal, action, resource)
    roots = _parse_trace(trace)
    allow = next((q for q in roots if q.name == "allow"), None)
    deny = next((q for q in roots if q.name == "deny_reason"), None)
    matched = _success_path(allow, 0) if allow and decision.allowed else []
    considered = list(allow.applicable) if allow and not decision.allowed else []
    reason_rule = None
    if deny is not None and decision.reason is not None:
        literal = json.dumps(decision.reason, ensure_ascii=False)
        for rule in reversed(deny.rules):
            if rule.ref is not None and literal in rule.ref.head:
                reason_rule = rule.ref
                break
    return Explanation(decision, matched, considered, reason_rule, trace)
