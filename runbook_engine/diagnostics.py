"""Located problems found in a document: errors and warnings with file:line:col."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

PathElement = str | int
DocumentPath = tuple[PathElement, ...]
Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based position in a text."""

    line: int
    column: int


def format_path(path: DocumentPath) -> str:
    """``("mainSteps", 2, "inputs")`` -> ``mainSteps[2].inputs``."""
    text = ""
    for element in path:
        if isinstance(element, int):
            text += f"[{element}]"
        else:
            text += f".{element}" if text else str(element)
    return text


@dataclass(frozen=True, slots=True)
class Diagnostic:
    file: str
    line: int
    column: int
    path: DocumentPath
    message: str
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "path": format_path(self.path),
            "message": self.message,
            "severity": self.severity,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem found by a check that does not know the text: located later by path."""

    path: DocumentPath
    message: str
    severity: Severity = "error"
    at_key: bool = False
