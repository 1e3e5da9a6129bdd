"""The ``{{ ... }}`` expression language: parsing and rendering with type fidelity.

A string is scanned for ``{{ ... }}`` spans; the text inside each span is parsed with a
small lark grammar (LALR, built once at import). Text that is not a reference (``{{ color:
red; }}`` in CSS, ``{{ODBC Driver 18 for SQL Server}}``, Python format strings) stays
literal text, as do nested spans such as ``{{ {{x}} }}``. Parsed templates are cached:
rendering runs before every step, and most strings repeat.

Rendering (ssm-reference §3.3) keeps the native type of a string that is exactly one
expression (whitespace around it allowed), splices a list element that resolves to a
list into the enclosing list, and interpolates values into longer strings with
:func:`runbook_engine.selectors.as_text`. A reference whose target is undefined (a step
that has not run, an output that was not produced) stays as written and a warning is
added to :attr:`Scope.warnings`. One-element lists are unwrapped for scalar inputs later,
by :func:`runbook_engine.inputs.normalize_inputs`. A whole value is the scope's own
object, not a copy: treat rendered values as read-only.

The static checks behind :func:`check_runbook` live in :mod:`runbook_engine.expression_checks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from lark import Lark, LarkError, Token, Tree

from runbook_engine.diagnostics import Finding
from runbook_engine.errors import ParameterError
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import Runbook
from runbook_engine.selectors import as_text

GLOBALS = frozenset({"ACCOUNT_ID", "REGION", "DATE", "DATE_TIME", "AWS_PARTITION"})
AUTOMATION_VARIABLES = frozenset({"EXECUTION_ID"})
NAMESPACES = ("global", "automation", "ssm", "variable")
LOOP_OUTPUTS = frozenset({"CurrentIteration", "CurrentIteratorValue"})
MAINTENANCE_WINDOW_PSEUDO_PARAMETERS = frozenset({"TARGET_ID", "RESOURCE_ID"})

_GRAMMAR = r"""
start: _WS? (plain | qualified) _WS?
plain: NAME ("." NAME)*
qualified: NAME ":" PATH (":" NAME)?
NAME: /[A-Za-z0-9_][A-Za-z0-9_\-]*/
PATH: /[A-Za-z0-9_.\-\/]+/
_WS: /\s+/
"""
_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual")
# Cheap pre-filter: only text made of reference characters is handed to the parser.
_CANDIDATE = re.compile(r"\s*[A-Za-z0-9_.:/\-]+\s*")
_BRACES = re.compile(r"\{\{|\}\}")


@dataclass(frozen=True, slots=True)
class Reference:
    """One parsed ``{{ ... }}``.

    ``namespace`` is ``None`` for parameters and step outputs, else ``global``,
    ``automation``, ``ssm``, ``variable`` (or an unknown word the static check rejects).
    ``name`` is the parameter, step, variable or Parameter Store name; ``attribute`` the
    step output, or the Parameter Store version or label. ``text`` is the span as written.
    """

    namespace: str | None
    name: str
    attribute: str | None
    text: str

    @property
    def expression(self) -> str:
        """The reference without braces or whitespace: ``Step.Output``, ``ssm:/a/b:2``."""
        if self.namespace is None:
            return self.name if self.attribute is None else f"{self.name}.{self.attribute}"
        base = f"{self.namespace}:{self.name}"
        return base if self.attribute is None else f"{base}:{self.attribute}"


@dataclass(frozen=True, slots=True)
class Template:
    """A string split into literal text and references."""

    text: str
    parts: tuple[str | Reference, ...]
    whole: Reference | None  # set when the string is exactly one expression
    unparsed: tuple[str, ...] = ()  # ``{{ ... }}`` spans kept literal: not references
    nested: tuple[str, ...] = ()  # ``{{ {{x}} }}`` spans, kept literal

    @property
    def is_whole(self) -> bool:
        return self.whole is not None

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(p for p in self.parts if isinstance(p, Reference))


def looks_like_reference(inner: str) -> bool:
    """Is ``inner`` (the text between braces) made only of reference characters?"""
    return _CANDIDATE.fullmatch(inner) is not None


def parse_reference(inner: str, text: str | None = None) -> Reference | None:
    """The reference written inside braces, or ``None`` if ``inner`` is not one."""
    if not looks_like_reference(inner):
        return None
    try:
        tree = _PARSER.parse(inner)
    except LarkError:
        return None
    node = tree.children[0]
    assert isinstance(node, Tree)
    words = [str(t) for t in node.children if isinstance(t, Token)]
    shown = text if text is not None else "{{" + inner + "}}"
    if node.data == "plain":
        return Reference(None, words[0], ".".join(words[1:]) or None, shown)
    return Reference(words[0], words[1], words[2] if len(words) > 2 else None, shown)


def _matching_close(text: str, start: int) -> int | None:
    """End of the balanced ``{{ ... }}`` that opens at ``start`` (for nested spans)."""
    depth = 0
    for match in _BRACES.finditer(text, start):
        depth += 1 if match.group() == "{{" else -1
        if depth == 0:
            return match.end()
    return None


@lru_cache(maxsize=16384)
def parse_template(text: str) -> Template:
    """Split ``text`` into literal text and references (cached: strings repeat)."""
    parts: list[str | Reference] = []
    unparsed: list[str] = []
    nested: list[str] = []
    literal_from = pos = 0
    while (start := text.find("{{", pos)) >= 0:
        end = text.find("}}", start + 2)
        if end < 0:
            break
        inner = text[start + 2 : end]
        inner_open = inner.find("{{")
        if inner_open >= 0:
            close = _matching_close(text, start)
            if close is None:
                pos = start + 2 + inner_open
            else:
                nested.append(text[start:close])
                pos = close
            continue
        span = text[start : end + 2]
        reference = parse_reference(inner, span)
        if reference is None:
            unparsed.append(span)
        else:
            if start > literal_from:
                parts.append(text[literal_from:start])
            parts.append(reference)
            literal_from = end + 2
        pos = end + 2
    if literal_from < len(text):
        parts.append(text[literal_from:])
    references = [p for p in parts if isinstance(p, Reference)]
    whole = None
    if len(references) == 1 and all(isinstance(p, Reference) or not p.strip() for p in parts):
        whole = references[0]
    return Template(text, tuple(parts), whole, tuple(unparsed), tuple(nested))


# --------------------------------------------------------------------------- rendering

ParameterStoreLookup = Callable[[str, str | None], Any]
"""(name, version or label or None) -> the stored value; raises LookupError if absent."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Everything an expression can refer to during one execution; every field has a
    default, so ``Scope(parameters=..., outputs=...)`` is enough in tests.

    ``outputs`` maps each step that has run to its outputs (an empty map for a step
    without outputs; loop steps carry ``CurrentIteration`` / ``CurrentIteratorValue``).
    ``warnings`` collects one message per reference left as written.
    """

    parameters: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    execution_id: str = ""
    account_id: str = "000000000000"
    region: str = "us-east-1"
    partition: str = "aws"
    clock: Callable[[], datetime] = _utc_now
    parameter_store: ParameterStoreLookup | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class _Missing:
    """A reference without a value, and why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _system_value(ref: Reference, scope: Scope) -> Any:
    if ref.attribute is None and ref.namespace == "global":
        if ref.name == "ACCOUNT_ID":
            return scope.account_id
        if ref.name == "REGION":
            return scope.region
        if ref.name == "AWS_PARTITION":
            return scope.partition
        if ref.name == "DATE":
            return _utc(scope.clock()).strftime("%Y-%m-%d")
        if ref.name == "DATE_TIME":
            return _utc(scope.clock()).strftime("%Y-%m-%d_%H.%M.%S")
    if ref.attribute is None and ref.namespace == "automation" and ref.name == "EXECUTION_ID":
        return scope.execution_id
    return _Missing(f"unknown {ref.namespace} variable {ref.expression!r}")


def _resolve(ref: Reference, scope: Scope) -> Any:
    if ref.namespace is None:
        if ref.attribute is None:
            if ref.name in scope.parameters:
                return scope.parameters[ref.name]
            return _Missing(f"no parameter {ref.name!r}")
        dotted = ref.expression
        if dotted in scope.parameters:  # parameter names may contain dots
            return scope.parameters[dotted]
        outputs = scope.outputs.get(ref.name)
        if outputs is None:
            return _Missing(f"step {ref.name!r} has not run")
        if ref.attribute in outputs:
            return outputs[ref.attribute]
        return _Missing(f"step {ref.name!r} has no output {ref.attribute!r}")
    if ref.namespace == "variable":
        if ref.attribute is None and ref.name in scope.variables:
            return scope.variables[ref.name]
        return _Missing(f"no variable {ref.name!r}")
    if ref.namespace == "ssm":
        return _Missing("Parameter Store references are resolved only in parameter defaults")
    return _system_value(ref, scope)


def _resolve_in_default(ref: Reference, scope: Scope) -> Any:
    if ref.namespace == "ssm":
        if scope.parameter_store is None:
            raise ParameterError(f"no Parameter Store is configured to resolve {ref.text}")
        try:
            return scope.parameter_store(ref.name, ref.attribute)
        except LookupError as exc:
            raise ParameterError(
                f"Parameter Store parameter {ref.name!r} in {ref.text} was not found"
            ) from exc
    if ref.namespace in ("global", "automation"):
        return _system_value(ref, scope)
    return _Missing("a parameter default may only use ssm:, global: and automation: references")


Resolver = Callable[[Reference, Scope], Any]


def _render_template(template: Template, scope: Scope, resolve: Resolver) -> Any:
    if template.whole is not None:
        value = resolve(template.whole, scope)
        if isinstance(value, _Missing):
            scope.warn(f"{template.whole.text} left as written: {value.reason}")
            return template.text
        return value
    pieces: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        value = resolve(part, scope)
        if isinstance(value, _Missing):
            scope.warn(f"{part.text} left as written: {value.reason}")
            pieces.append(part.text)
        else:
            pieces.append(as_text(value))
    return "".join(pieces)


def _render(value: Any, scope: Scope, resolve: Resolver) -> Any:
    if isinstance(value, str):
        if "{{" not in value:
            return value
        return _render_template(parse_template(value), scope, resolve)
    if isinstance(value, Mapping):
        return {key: _render(item, scope, resolve) for key, item in value.items()}
    if isinstance(value, list | tuple):
        out: list[Any] = []
        for item in value:
            rendered = _render(item, scope, resolve)
            if (
                isinstance(rendered, list | tuple)
                and isinstance(item, str)
                and parse_template(item).whole is not None
            ):
                out.extend(rendered)  # a whole-value list inside a list is spliced
            else:
                out.append(rendered)
        return out
    return value


def render(value: Any, scope: Scope) -> Any:
    """``value`` (a step input, ``assumeRole``, a condition) with every expression
    replaced, recursively through maps and lists (values only, never keys)."""
    return _render(value, scope, _resolve)


def render_default(value: Any, scope: Scope) -> Any:
    """A parameter default with its ``ssm:``, ``global:`` and ``automation:`` references
    resolved; anything else stays as written. A missing Parameter Store parameter (or no
    Parameter Store at all) raises :class:`~runbook_engine.errors.ParameterError`."""
    return _render(value, scope, _resolve_in_default)


def check_runbook(runbook: Runbook, schemas: Mapping[str, ActionSchema]) -> list[Finding]:
    """Every reference problem in ``runbook`` (see :mod:`runbook_engine.expression_checks`)."""
    from runbook_engine.expression_checks import check_references  # it imports this module

    return check_references(runbook, schemas)
