"""What ``runbook run`` shows while it works: a live step table on a terminal, one line per
step transition otherwise (stderr, so that ``--output json`` keeps stdout clean).

rich is imported only when text progress is shown: ``--output json`` (scripts, the
benchmarks) does not pay its import (about 40 ms of a ``runbook run``'s start-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from runbook_engine.model import Runbook
from runbook_engine.records import StepRecord
from runbook_engine.status import Status

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from runbook_engine.engine import ExecutionView

STYLE = {
    Status.SUCCESS: "green",
    Status.FAILED: "red",
    Status.TIMED_OUT: "red",
    Status.CANCELLED: "yellow",
    Status.WAITING: "cyan",
    Status.IN_PROGRESS: "blue",
}


def _duration(record: StepRecord) -> str:
    if record.start_time and record.end_time:
        return f"{(record.end_time - record.start_time).total_seconds():.2f}s"
    return ""


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._console: Console | None = None
        self.live: Live | None = None
        self.records: dict[str, StepRecord] = {}
        self.last_status: dict[str, Status] = {}
        self.attempts: dict[str, int] = {}

    @property
    def console(self) -> Console:
        """The stderr console, made on first use (text output only)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    def started(
        self, execution_id: str, runbook: Runbook, records: Sequence[StepRecord] = ()
    ) -> None:
        if not self.enabled:
            return
        for record in records:
            self.records[record.step_execution_id] = record
            self.last_status[record.step_execution_id] = record.status
            self.attempts[record.step_execution_id] = record.attempt
        self.console.print(f"Execution {execution_id} of {runbook.name}")
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=8)
            self.live.start()

    def step_changed(self, record: StepRecord) -> None:
        if not self.enabled:
            return
        previous = self.last_status.get(record.step_execution_id)
        retried = record.attempt > self.attempts.get(record.step_execution_id, 1)
        self.records[record.step_execution_id] = record
        self.last_status[record.step_execution_id] = record.status
        self.attempts[record.step_execution_id] = record.attempt
        if self.live is not None:
            self.live.update(self._table())
        elif retried and not record.status.terminal:
            # A new attempt: say why the last one failed (an interrupted one included).
            line = f"{record.step_name} ({record.action}) attempt {record.attempt}"
            if record.failure_message:
                line += f" after: {record.failure_message}"
            click.echo(line, err=True)
        elif previous != record.status:
            line = f"{record.step_name} ({record.action}) {record.status.value} {_duration(record)}"
            if record.status == Status.WAITING and record.message:
                line += f" - {record.message}"
            if record.failure_message and record.status.terminal:
                line += f" - {record.failure_message}"
            click.echo(line.rstrip(), err=True)

    def _table(self) -> Table:
        from rich.table import Table

        table = Table(show_header=True, header_style="bold")
        for column in ("step", "action", "status", "time", "detail"):
            table.add_column(column)
        for record in self.records.values():
            detail = record.failure_message or record.message or ""
            table.add_row(
                record.step_name,
                record.action,
                f"[{STYLE.get(record.status, 'white')}]{record.status.value}[/]",
                _duration(record),
                detail[:80],
            )
        return table

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    @staticmethod
    def summary(view: ExecutionView) -> None:
        """The text form of an execution: status, failure, outputs, where it waits."""
        execution = view.execution
        click.echo(f"Execution {execution.execution_id}: {execution.status.value}")
        if execution.failure_message:
            click.echo(f"  failure: {execution.failure_message}")
        for name, value in execution.outputs.items():
            click.echo(f"  output {name} = {value}")
        for record in view.steps:
            if not record.status.terminal and record.status == Status.WAITING:
                wants = "/".join(record.waiting_for) or "a signal"
                click.echo(f"  waiting at {record.step_name} for {wants}: {record.message}")
