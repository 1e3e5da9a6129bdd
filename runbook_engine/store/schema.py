"""The state database's tables, and the versioning that lets later releases migrate them.

Tables are declared once, as SQLModel table classes; the store reads and writes them
with SQLAlchemy Core statements (``TABLES``), which costs a fraction of ORM objects on
the hot path. Column names equal the record field names (runbook_engine.store.codec).
Names carry a ``runbook_`` prefix so that the tables can live in an existing
PostgreSQL database beside others.

Versioning: ``runbook_schema`` holds one row with the schema version. ``migrate`` runs
at open: an empty database gets today's tables and ``SCHEMA_VERSION``; an older one
gets each step of ``MIGRATIONS`` in turn; a newer one is refused. It runs inside one
transaction that only one process at a time can hold (an advisory lock on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), so processes opening an empty database together
create it exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    TypeDecorator,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from runbook_engine.errors import StoreError

SCHEMA_VERSION = 7

# version N -> the statements that turn a version N-1 database into version N.
# (Filled in below the tables: each entry creates or alters what its version added.)
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}

# pg_advisory_xact_lock key: any fixed 64-bit number unlikely to collide with others'.
MIGRATION_LOCK_KEY = 0x72756E626F6F6B  # "runbook"


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp with time zone that goes in and comes out as a UTC-aware datetime.

    PostgreSQL stores ``timestamptz``. SQLite has no timestamp type: SQLAlchemy stores
    fixed-width ISO text, which compares in time order, so values are stored as naive
    UTC there and get their zone back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or dialect.name != "sqlite":
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        result: datetime = value.astimezone(UTC)
        return result


def _id_column() -> Any:
    # INTEGER on SQLite so that it is the rowid; BIGINT elsewhere.
    return Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


def _timestamp() -> Any:
    return Field(default=None, sa_type=UtcDateTime)


def _text(**kwargs: Any) -> Any:
    return Field(sa_type=Text, **kwargs)


class ExecutionRow(SQLModel, table=True):
    __tablename__ = "runbook_executions"
    __table_args__ = (
        Index("ix_runbook_executions_due", "status", "wake_at"),
        Index("ix_runbook_executions_wake_at", "wake_at"),
        Index("ix_runbook_executions_parent", "parent_execution_id"),
        {"sqlite_autoincrement": True},
    )

    # Creation order, for "newest first"; never leaves the store.
    id: int | None = Field(default=None, sa_column=_id_column())
    execution_id: str = _text(unique=True)
    document_name: str = _text()
    # The runbook's text lives in runbook_document_texts, once per distinct text: this
    # row is rewritten at every step transition, and a text inside it was rewritten too.
    document_digest: str = _text()
    status: str = _text()
    mode: str = _text()
    document_version: str = _text()
    document_format: str = _text()
    parameters: str = _text()
    supplied_parameters: str = _text()
    variables: str = _text()
    outputs: str = _text()
    start_time: datetime | None = _timestamp()
    end_time: datetime | None = _timestamp()
    failure_message: str | None = _text(default=None)
    parent_execution_id: str | None = _text(default=None)
    parent_step_execution_id: str | None = _text(default=None)
    current_step_name: str | None = _text(default=None)
    current_action: str | None = _text(default=None)
    executed_by: str = _text()
    stop_requested: str | None = _text(default=None)
    cancel_deadline: datetime | None = _timestamp()
    wake_at: datetime | None = _timestamp()
    target_parameter_name: str | None = _text(default=None)
    targets: str = _text()
    target_maps: str = _text()
    resolved_targets: str = _text()
    max_concurrency: str | None = _text(default=None)
    max_errors: str | None = _text(default=None)
    owner: str | None = _text(default=None)
    lease_expires: datetime | None = _timestamp()
    version: int = Field(sa_type=BigInteger)
    extra: str = _text()


class DocumentTextRow(SQLModel, table=True):
    """A runbook text as an execution started with it, keyed by its SHA-256 (hex).
    Never changed once written; shared by every execution of the same text (the
    children of a rate-controlled run, repeated runs of one runbook)."""

    __tablename__ = "runbook_document_texts"

    digest: str = Field(sa_type=Text, primary_key=True)
    content: str = _text()


def text_digest(content: str) -> str:
    """The key of a text in ``runbook_document_texts``."""
    return hashlib.sha256(content.encode()).hexdigest()


class StepRow(SQLModel, table=True):
    __tablename__ = "runbook_step_executions"
    __table_args__ = (Index("ix_runbook_step_executions_order", "execution_id", "sequence"),)

    step_execution_id: str = Field(sa_type=Text, primary_key=True)
    execution_id: str = Field(
        sa_column=Column(
            Text,
            ForeignKey("runbook_executions.execution_id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    sequence: int
    step_name: str = _text()
    action: str = _text()
    status: str = _text()
    attempt: int
    start_time: datetime | None = _timestamp()
    end_time: datetime | None = _timestamp()
    inputs: str = _text()
    outputs: str = _text()
    response: str = _text()
    logs: str = _text()
    failure_message: str | None = _text(default=None)
    failure_type: str | None = _text(default=None)
    failure_stage: str | None = _text(default=None)
    failure_details: str = _text()
    wake_at: datetime | None = _timestamp()
    waiting_for: str = _text()
    state: str = _text()
    message: str = _text()
    child_execution_id: str | None = _text(default=None)
    loop: str = _text()
    valid_next_steps: str = _text()
    overridden_parameters: str = _text()
    cancel_run: bool
    target: str | None = _text(default=None)


class SignalRow(SQLModel, table=True):
    __tablename__ = "runbook_signals"
    __table_args__ = (
        Index("ix_runbook_signals_execution", "execution_id", "consumed"),
        {"sqlite_autoincrement": True},
    )

    signal_id: int | None = Field(default=None, sa_column=_id_column())
    execution_id: str = Field(
        sa_column=Column(
            Text,
            ForeignKey("runbook_executions.execution_id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    type: str = _text()
    payload: str = _text()
    principal: str = _text()
    time: datetime = Field(sa_type=UtcDateTime)
    consumed: bool


class ClientTokenRow(SQLModel, table=True):
    """StartAutomationExecution's ClientToken: the primary key makes concurrent retries
    with one token create one execution."""

    __tablename__ = "runbook_client_tokens"

    token: str = Field(sa_type=Text, primary_key=True)  # lower case: tokens ignore case
    execution_id: str = Field(
        sa_column=Column(
            Text,
            ForeignKey("runbook_executions.execution_id", ondelete="CASCADE"),
            nullable=False,
        )
    )
    fingerprint: str = _text()  # of the request's other arguments


class ExecutionTagRow(SQLModel, table=True):
    """Tags given at StartAutomationExecution (the TagKey filter looks them up)."""

    __tablename__ = "runbook_execution_tags"
    __table_args__ = (Index("ix_runbook_execution_tags_key", "key", "execution_id"),)

    execution_id: str = Field(
        sa_column=Column(
            Text,
            ForeignKey("runbook_executions.execution_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    key: str = Field(sa_type=Text, primary_key=True)
    value: str = _text()


class ParameterRow(SQLModel, table=True):
    """One version of a Parameter Store parameter (schema version 3). SecureString
    values are stored encrypted (runbook_engine.secrets)."""

    __tablename__ = "runbook_parameters"

    name: str = Field(sa_type=Text, primary_key=True)
    version: int = Field(sa_type=BigInteger, primary_key=True)
    type: str = _text()
    value: str = _text()
    description: str = _text()
    data_type: str = _text()
    labels: str = _text()  # JSON list
    allowed_pattern: str = _text()
    last_modified: datetime = Field(sa_type=UtcDateTime)
    last_modified_user: str = _text()


class DocumentRow(SQLModel, table=True):
    """A stored SSM document (CreateDocument): what is common to its versions.
    ``latest_version`` is the compare-and-set counter of UpdateDocument."""

    __tablename__ = "runbook_documents"

    name: str = Field(sa_type=Text, primary_key=True)
    document_type: str = _text()
    owner: str = _text()
    created: datetime = Field(sa_type=UtcDateTime)
    default_version: int
    latest_version: int
    tags: str = _text()  # JSON map


class DocumentVersionRow(SQLModel, table=True):
    """One version of a stored document; a version name is unique per document."""

    __tablename__ = "runbook_document_versions"
    __table_args__ = (
        Index("ux_runbook_document_versions_name", "name", "version_name", unique=True),
    )

    name: str = Field(
        sa_column=Column(
            Text,
            ForeignKey("runbook_documents.name", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    version: int = Field(primary_key=True)
    content: str = _text()
    document_format: str = _text()
    content_hash: str = _text()
    created: datetime = Field(sa_type=UtcDateTime)
    version_name: str | None = _text(default=None)
    display_name: str | None = _text(default=None)
    target_type: str | None = _text(default=None)


class ScheduleRow(SQLModel, table=True):
    """A schedule (State Manager association): a document started on a cron or rate
    expression. ``next_run`` is the compare-and-set value that makes each firing happen
    once across daemons."""

    __tablename__ = "runbook_schedules"
    __table_args__ = (Index("ix_runbook_schedules_next_run", "next_run"),)

    association_id: str = Field(sa_type=Text, primary_key=True)
    association_name: str | None = _text(default=None)
    document_name: str = _text()
    document_version: str | None = _text(default=None)
    parameters: str = _text()  # JSON map of name -> list of strings
    targets: str = _text()  # JSON list, kept for when targets resolve
    automation_target_parameter_name: str | None = _text(default=None)
    schedule_expression: str = _text()
    apply_only_at_cron_interval: bool
    max_concurrency: str | None = _text(default=None)
    max_errors: str | None = _text(default=None)
    created_by: str = _text()
    created: datetime = Field(sa_type=UtcDateTime)
    next_run: datetime | None = _timestamp()
    last_run: datetime | None = _timestamp()
    last_execution_id: str | None = _text(default=None)
    last_error: str | None = _text(default=None)


class CommandRow(SQLModel, table=True):
    """A Run Command command (SendCommand, schema version 6): the request, the status
    and counts, a cancellation request, and the lease of the daemon running it."""

    __tablename__ = "runbook_commands"
    __table_args__ = (
        Index("ix_runbook_commands_status", "status", "lease_expires"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=_id_column())  # creation order
    command_id: str = _text(unique=True)
    document_name: str = _text()
    document_version: str = _text()
    document_content: str = _text()
    requested: datetime = Field(sa_type=UtcDateTime)
    requested_by: str = _text()
    status: str = _text()
    status_details: str = _text()
    comment: str = _text()
    parameters: str = _text()  # JSON map of name -> list of strings
    instance_ids: str = _text()  # JSON list
    targets: str = _text()  # JSON list
    max_concurrency: str = _text()
    max_errors: str = _text()
    timeout_seconds: int | None = Field(default=None)
    target_count: int
    completed_count: int
    error_count: int
    delivery_timed_out_count: int
    cancel_requested: str | None = _text(default=None)  # JSON list of instance ids or "*"
    owner: str | None = _text(default=None)
    lease_expires: datetime | None = _timestamp()


class CommandInvocationRow(SQLModel, table=True):
    """One instance's invocation of a command: status, exit code, full output, timings."""

    __tablename__ = "runbook_command_invocations"
    __table_args__ = (Index("ix_runbook_command_invocations_instance", "instance_id"),)

    command_id: str = Field(
        sa_column=Column(
            Text,
            ForeignKey("runbook_commands.command_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    instance_id: str = Field(sa_type=Text, primary_key=True)
    sequence: int
    instance_name: str = _text()
    status: str = _text()
    status_details: str = _text()
    response_code: int
    start_time: datetime | None = _timestamp()
    end_time: datetime | None = _timestamp()
    stdout: str = _text()
    stderr: str = _text()
    plugins: str = _text()  # JSON list of CommandPlugin shapes
    failed: bool


class SchemaRow(SQLModel, table=True):
    __tablename__ = "runbook_schema"

    id: int = Field(default=1, primary_key=True)
    version: int


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


EXECUTIONS = _table(ExecutionRow)
DOCUMENT_TEXTS = _table(DocumentTextRow)
STEPS = _table(StepRow)
SIGNALS = _table(SignalRow)
CLIENT_TOKENS = _table(ClientTokenRow)
EXECUTION_TAGS = _table(ExecutionTagRow)
DOCUMENTS = _table(DocumentRow)
DOCUMENT_VERSIONS = _table(DocumentVersionRow)
SCHEDULES = _table(ScheduleRow)
COMMANDS = _table(CommandRow)
COMMAND_INVOCATIONS = _table(CommandInvocationRow)
SCHEMA = _table(SchemaRow)
PARAMETERS = _table(ParameterRow)
TABLES = (
    DOCUMENT_TEXTS,
    EXECUTIONS,
    STEPS,
    SIGNALS,
    CLIENT_TOKENS,
    EXECUTION_TAGS,
    PARAMETERS,
    DOCUMENTS,
    DOCUMENT_VERSIONS,
    SCHEDULES,
    COMMANDS,
    COMMAND_INVOCATIONS,
    SCHEMA,
)


def _add_client_tokens_and_tags(conn: Connection) -> None:
    """Version 2: idempotent starts (ClientToken) and execution tags, for the daemon."""
    SQLModel.metadata.create_all(conn, tables=[CLIENT_TOKENS, EXECUTION_TAGS])


def _add_parameters(conn: Connection) -> None:
    """Version 3: the Parameter Store's table."""
    SQLModel.metadata.create_all(conn, tables=[PARAMETERS])


MIGRATIONS[2] = _add_client_tokens_and_tags
MIGRATIONS[3] = _add_parameters


def _add_documents(conn: Connection) -> None:
    """Version 4: stored documents and their versions (CreateDocument and friends)."""
    SQLModel.metadata.create_all(conn, tables=[DOCUMENTS, DOCUMENT_VERSIONS])


def _add_schedules(conn: Connection) -> None:
    """Version 5: schedules (CreateAssociation, ``runbook schedule``)."""
    SQLModel.metadata.create_all(conn, tables=[SCHEDULES])


MIGRATIONS[4] = _add_documents
MIGRATIONS[5] = _add_schedules


def _add_commands(conn: Connection) -> None:
    """Version 6: Run Command commands and their invocations (SendCommand)."""
    SQLModel.metadata.create_all(conn, tables=[COMMANDS, COMMAND_INVOCATIONS])


MIGRATIONS[6] = _add_commands


def _move_document_texts(conn: Connection) -> None:
    """Version 7: execution rows reference their runbook's text by digest
    (``runbook_document_texts``) instead of holding it. Checks what is there first, so
    that it also completes a database whose tables are newer than its version says."""
    SQLModel.metadata.create_all(conn, tables=[DOCUMENT_TEXTS])
    columns = {column["name"] for column in inspect(conn).get_columns(EXECUTIONS.name)}
    if "document_content" not in columns:
        return
    if "document_digest" not in columns:
        conn.execute(
            text(
                "ALTER TABLE runbook_executions"
                " ADD COLUMN document_digest TEXT NOT NULL DEFAULT ''"
            )
        )
    rows = conn.execute(text("SELECT id, document_content FROM runbook_executions")).all()
    present = set(conn.execute(select(DOCUMENT_TEXTS.c.digest)).scalars())
    texts: dict[str, str] = {}
    digests = []
    for row_id, content in rows:
        digest = text_digest(content)
        if digest not in present:
            texts[digest] = content
        digests.append({"b_row": row_id, "b_digest": digest})
    if texts:
        conn.execute(
            DOCUMENT_TEXTS.insert(),
            [{"digest": digest, "content": content} for digest, content in texts.items()],
        )
    if digests:
        conn.execute(
            text("UPDATE runbook_executions SET document_digest = :b_digest WHERE id = :b_row"),
            digests,
        )
    conn.execute(text("ALTER TABLE runbook_executions DROP COLUMN document_content"))


MIGRATIONS[7] = _move_document_texts


def stored_version(conn: Connection) -> int | None:
    """The schema version of the database, None when it has no runbook tables yet."""
    if not inspect(conn).has_table(SCHEMA.name):
        return None
    version = conn.execute(select(SCHEMA.c.version).where(SCHEMA.c.id == 1)).scalar_one_or_none()
    return None if version is None else int(version)


def migrate(conn: Connection) -> int:
    """Bring the database to ``SCHEMA_VERSION`` inside the caller's write transaction.

    The caller holds the transaction that serialises openers (``BEGIN IMMEDIATE`` on
    SQLite); on PostgreSQL this takes the advisory lock itself. Returns the version
    found before migrating (0 for an empty database).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    found = stored_version(conn)
    if found is None:
        SQLModel.metadata.create_all(conn, tables=list(TABLES))
        conn.execute(SCHEMA.insert().values(id=1, version=SCHEMA_VERSION))
        return 0
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the state database has schema version {found}; this runbook-engine"
            f" understands up to {SCHEMA_VERSION}: upgrade runbook-engine"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version](conn)
        conn.execute(SCHEMA.update().where(SCHEMA.c.id == 1).values(version=version))
    return found
