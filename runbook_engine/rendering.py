"""Expression scopes built from an execution's records, for rendering step inputs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runbook_engine import expressions
from runbook_engine.model import Parameter
from runbook_engine.records import ExecutionRecord, LoopContext
from runbook_engine.settings import Settings

log = logging.getLogger("runbook_engine")


@dataclass(frozen=True)
class RenderScope:
    scope: expressions.Scope

    @classmethod
    def build(
        cls,
        execution: ExecutionRecord,
        step_outputs: Mapping[str, Mapping[str, Any]],
        loop: LoopContext | None,
        settings: Settings,
    ) -> RenderScope:
        """``step_outputs``: each step's latest outputs (the driver keeps them current)."""
        outputs: Mapping[str, Mapping[str, Any]] = step_outputs
        if loop is not None:
            outputs = dict(step_outputs)
            context: dict[str, Any] = {"CurrentIteration": loop.iteration}
            if loop.iterator_value is not None:
                context["CurrentIteratorValue"] = loop.iterator_value
            outputs[loop.step_name] = context
        return cls(
            expressions.Scope(
                parameters=execution.parameters,
                outputs=outputs,
                variables=execution.variables,
                execution_id=execution.execution_id,
                account_id=settings.account_id,
                region=settings.region,
                partition=settings.partition,
            )
        )

    def render(self, value: Any) -> Any:
        rendered = expressions.render(value, self.scope)
        for warning in self.scope.warnings:
            log.warning("%s", warning)
        self.scope.warnings.clear()
        return rendered


def render_default(
    parameter: Parameter,
    settings: Settings,
    execution_id: str,
    now: datetime,
    parameter_store: expressions.ParameterStoreLookup | None = None,
) -> Any:
    """A parameter's default at start: ``{{ssm:}}`` (through ``parameter_store``),
    ``{{global:}}`` and the execution id."""
    scope = expressions.Scope(
        parameter_store=parameter_store,
        execution_id=execution_id,
        account_id=settings.account_id,
        region=settings.region,
        partition=settings.partition,
        clock=lambda: now,
    )
    return expressions.render_default(parameter.default, scope)
