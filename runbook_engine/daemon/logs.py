"""Structured logs: one JSON object a line on stderr, with execution and step ids.

Call sites pass the fields as ``extra={"fields": {...}}``; records of other libraries
(uvicorn, the engine) come out as JSON too, with their logger name and message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from runbook_engine.records import StepRecord

log = logging.getLogger("runbook_engine.daemon")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO) -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def event(message: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, message, extra={"fields": {"event": message, **fields}})


def step_changed(record: StepRecord) -> None:
    event(
        "step",
        execution_id=record.execution_id,
        step_execution_id=record.step_execution_id,
        step_name=record.step_name,
        action=record.action,
        status=record.status.value,
        attempt=record.attempt,
    )
