"""Parameter Store rows in the state database (table ``runbook_parameters``, schema
version 2): the SQL side of runbook_engine.parameters.LocalParameterStore.

Every write replaces all versions of one parameter in one transaction, after checking
that its latest version is still the one the writer read (compare-and-set): two writers
racing on one name cannot both win. On SQLite the write transaction is ``BEGIN
IMMEDIATE`` (runbook_engine.store.engines), which serialises writers; on PostgreSQL a
concurrent insert of the same version breaks the primary key, reported the way SSM
reports a race (``TooManyUpdates``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from runbook_engine.errors import StoreError
from runbook_engine.parameters import ParameterStoreError, StoredParameter
from runbook_engine.store.engines import WRITE, create_store_engine
from runbook_engine.store.schema import PARAMETERS, migrate

T = TypeVar("T")
_P = PARAMETERS.c


def _to_row(parameter: StoredParameter) -> dict[str, Any]:
    return {
        "name": parameter.name,
        "version": parameter.version,
        "type": parameter.type,
        "value": parameter.value,
        "description": parameter.description,
        "data_type": parameter.data_type,
        "labels": json.dumps(list(parameter.labels)),
        "allowed_pattern": parameter.allowed_pattern,
        "last_modified": parameter.last_modified,
        "last_modified_user": parameter.last_modified_user,
    }


def _from_row(row: Any) -> StoredParameter:
    return StoredParameter(
        name=row["name"],
        version=int(row["version"]),
        type=row["type"],
        value=row["value"],
        description=row["description"],
        data_type=row["data_type"],
        labels=tuple(json.loads(row["labels"])),
        allowed_pattern=row["allowed_pattern"],
        last_modified=row["last_modified"],
        last_modified_user=row["last_modified_user"],
    )


class SqlParameterRows:
    """ParameterRows on the state database; calls run on worker threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._limiter = anyio.CapacityLimiter(4)

    @classmethod
    def open(cls, url: str) -> SqlParameterRows:
        """Connect to the state database at ``url``, creating or migrating its schema."""
        engine = create_store_engine(url)
        rows = cls(engine)
        rows._guard(rows._migrate)
        return rows

    def _migrate(self) -> None:
        with self._engine.connect() as conn:
            conn.info[WRITE] = True
            with conn.begin():
                migrate(conn)

    def _guard(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return function(*args)
        except ParameterStoreError:
            raise
        except IntegrityError as exc:
            raise ParameterStoreError(
                "TooManyUpdates", "the parameter was changed by another writer meanwhile"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"state database error: {getattr(exc, 'orig', exc)}") from exc

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(self._guard, function, *args, limiter=self._limiter)

    async def versions(self, name: str) -> list[StoredParameter]:
        return await self._call(self._versions, name)

    def _versions(self, name: str) -> list[StoredParameter]:
        query = select(PARAMETERS).where(_P.name == name).order_by(_P.version)
        with self._engine.connect() as conn:
            conn.info[WRITE] = False
            with conn.begin():
                return [_from_row(row) for row in conn.execute(query).mappings()]

    async def replace(self, name: str, latest: int, versions: list[StoredParameter]) -> None:
        await self._call(self._replace, name, latest, versions)

    def _replace(self, name: str, latest: int, versions: list[StoredParameter]) -> None:
        with self._engine.connect() as conn:
            conn.info[WRITE] = True
            with conn.begin():
                current = conn.execute(
                    select(func.max(_P.version)).where(_P.name == name)
                ).scalar_one_or_none()
                if int(current or 0) != latest:
                    raise ParameterStoreError(
                        "TooManyUpdates", f"parameter {name} was changed by another writer"
                    )
                conn.execute(delete(PARAMETERS).where(_P.name == name))
                if versions:
                    conn.execute(PARAMETERS.insert(), [_to_row(v) for v in versions])

    async def latest(self) -> list[StoredParameter]:
        return await self._call(self._latest)

    def _latest(self) -> list[StoredParameter]:
        newest = select(_P.name, func.max(_P.version).label("version")).group_by(_P.name).subquery()
        query = (
            select(PARAMETERS)
            .join(newest, (_P.name == newest.c.name) & (_P.version == newest.c.version))
            .order_by(_P.name)
        )
        with self._engine.connect() as conn:
            conn.info[WRITE] = False
            with conn.begin():
                return [_from_row(row) for row in conn.execute(query).mappings()]

    def close(self) -> None:
        self._engine.dispose()
