"""One contract for every Parameter Store: in memory, in SQLite, in PostgreSQL, and AWS
SSM (the emulator over HTTP, through the AWS caller)."""

from __future__ import annotations

import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runbook_engine.aws import Boto3Caller
from runbook_engine.parameters import (
    LocalParameterStore,
    MemoryParameterRows,
    ParameterStore,
    ParameterStoreError,
)
from runbook_engine.parameters_aws import AwsParameterStore
from runbook_engine.secrets import SecretBox
from runbook_engine.store.parameters import SqlParameterRows
from tests.aws_support import FAST_AWS

pytestmark = pytest.mark.anyio

KINDS = ["memory", "sqlite", "postgresql", "aws"]


def _make(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    secrets = SecretBox(tmp_path / "key")
    made: Any
    if kind == "memory":
        made = LocalParameterStore(MemoryParameterRows(), secrets, "tester")
    elif kind == "sqlite":
        made = LocalParameterStore(
            SqlParameterRows.open(f"sqlite:///{tmp_path / 'state.db'}"), secrets, "tester"
        )
    elif kind == "postgresql":
        url = request.getfixturevalue("fresh_postgres_url")
        made = LocalParameterStore(SqlParameterRows.open(url), secrets, "tester")
    else:
        request.getfixturevalue("aws_env")
        made = AwsParameterStore(Boto3Caller(FAST_AWS))
    return made


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ParameterStore]:
    made = _make(request.param, request, tmp_path)
    yield made
    made.close()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def local_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ParameterStore]:
    """The local stores, for AWS rules the emulator does not keep."""
    made = _make(request.param, request, tmp_path)
    yield made
    made.close()


@pytest.fixture
def prefix() -> str:
    """A hierarchy of this test's own (the emulator is shared by the session)."""
    return f"/t{uuid.uuid4().hex[:8]}"


async def test_put_then_get_each_type(store: ParameterStore, prefix: str) -> None:
    assert await store.put(f"{prefix}/plain", "hello", type="String") == 1
    assert await store.put(f"{prefix}/list", "a,b,c", type="StringList") == 1
    assert await store.put(f"{prefix}/secret", "s3cr3t", type="SecureString") == 1
    plain = await store.get(f"{prefix}/plain")
    assert (plain.name, plain.type, plain.value, plain.version) == (
        f"{prefix}/plain",
        "String",
        "hello",
        1,
    )
    assert (await store.get(f"{prefix}/list")).value == "a,b,c"
    hidden = await store.get(f"{prefix}/secret")
    assert hidden.type == "SecureString" and hidden.value != "s3cr3t"  # not decrypted
    assert (await store.get(f"{prefix}/secret", with_decryption=True)).value == "s3cr3t"


async def test_versions_and_labels(store: ParameterStore, prefix: str) -> None:
    name = f"{prefix}/app/version"
    await store.put(name, "one", type="String")
    with pytest.raises(ParameterStoreError) as exists:
        await store.put(name, "two")
    assert exists.value.code == "ParameterAlreadyExists"
    assert await store.put(name, "two", overwrite=True) == 2
    assert await store.put(name, "three", overwrite=True) == 3
    assert (await store.get(name)).value == "three"
    assert (await store.get(f"{name}:1")).value == "one"
    version, invalid = await store.label(name, ["stable", "9bad"], version=2)
    assert (version, invalid) == (2, ["9bad"])
    stable = await store.get(f"{name}:stable")
    assert (stable.value, stable.version, stable.selector) == ("two", 2, ":stable")
    await store.label(name, ["stable"])  # a label moves to the latest version
    assert (await store.get(f"{name}:stable")).value == "three"
    # No fallback to the latest version. (For an unknown label the emulator says
    # ParameterNotFound where AWS and the local store say ParameterVersionNotFound.)
    expected = {"ParameterVersionNotFound"}
    if isinstance(store, AwsParameterStore):
        expected.add("ParameterNotFound")
    for missing in (f"{name}:7", f"{name}:nolabel"):
        with pytest.raises(ParameterStoreError) as raised:
            await store.get(missing)
        assert raised.value.code in expected
    history = await store.history(name)
    assert [h.value for h in history] == ["one", "two", "three"]
    assert "stable" in history[2].labels


async def test_paths(store: ParameterStore, prefix: str) -> None:
    for name in ("a", "b/c", "b/d/e"):
        await store.put(f"{prefix}/{name}", name, type="String")
    shallow = [p.name for p in await store.list_parameters(f"{prefix}/b")]
    assert shallow == [f"{prefix}/b/c"]
    deep = [p.name for p in await store.list_parameters(f"{prefix}/b", recursive=True)]
    assert deep == [f"{prefix}/b/c", f"{prefix}/b/d/e"]
    everything = [p.name for p in await store.list_parameters()]
    assert {f"{prefix}/a", f"{prefix}/b/c", f"{prefix}/b/d/e"} <= set(everything)


async def test_delete_and_missing(store: ParameterStore, prefix: str) -> None:
    await store.put(f"{prefix}/gone", "x", type="String")
    await store.delete(f"{prefix}/gone")
    for action in (store.get(f"{prefix}/gone"), store.delete(f"{prefix}/gone")):
        with pytest.raises(ParameterStoreError) as raised:
            await action
        assert raised.value.code == "ParameterNotFound"


async def test_type_cannot_change(local_store: ParameterStore, prefix: str) -> None:
    await local_store.put(f"{prefix}/typed", "x", type="String")
    with pytest.raises(ParameterStoreError) as raised:
        await local_store.put(f"{prefix}/typed", "y", type="SecureString", overwrite=True)
    assert raised.value.code == "HierarchyTypeMismatchException"


@pytest.mark.parametrize("name", ["/aws/mine", "ssm-thing"])
async def test_reserved_and_malformed_names_are_refused(store: ParameterStore, name: str) -> None:
    with pytest.raises(ParameterStoreError) as raised:
        await store.put(name, "x", type="String")
    # AWS answers AccessDeniedException for the reserved /aws/ namespace.
    assert raised.value.code in ("ValidationException", "AccessDeniedException")


@pytest.mark.parametrize("name", ["has space", "a/b", "semi;colon", ""])
async def test_malformed_names_are_refused(local_store: ParameterStore, name: str) -> None:
    with pytest.raises(ParameterStoreError) as raised:
        await local_store.put(name, "x", type="String")
    assert raised.value.code == "ValidationException"


# -- the local store's own rules ---------------------------------------------------------


def local(tmp_path: Path) -> LocalParameterStore:
    return LocalParameterStore(
        SqlParameterRows.open(f"sqlite:///{tmp_path / 'state.db'}"), SecretBox(tmp_path / "key")
    )


async def test_root_names_with_and_without_slash_are_one_parameter(tmp_path: Path) -> None:
    store = local(tmp_path)
    await store.put("/Root1", "x", type="String")
    assert (await store.get("Root1")).value == "x"
    with pytest.raises(ParameterStoreError, match="already exists"):
        await store.put("Root1", "y", type="String")
    store.close()


async def test_allowed_pattern_and_hierarchy_depth(tmp_path: Path) -> None:
    store = local(tmp_path)
    with pytest.raises(ParameterStoreError) as mismatch:
        await store.put("/p/num", "abc", type="String", allowed_pattern=r"\d+")
    assert mismatch.value.code == "ParameterPatternMismatchException"
    deep = "/" + "/".join(f"l{n}" for n in range(16))
    with pytest.raises(ParameterStoreError) as too_deep:
        await store.put(deep, "x", type="String")
    assert too_deep.value.code == "HierarchyLevelLimitExceededException"
    store.close()


async def test_secure_strings_are_never_stored_in_plain_text(tmp_path: Path) -> None:
    store = local(tmp_path)
    secret = "correct-horse-battery-staple-" + uuid.uuid4().hex
    await store.put("/db/password", secret, type="SecureString")
    await store.put("/db/password", secret + "-2", type="SecureString", overwrite=True)
    store.close()
    database = (tmp_path / "state.db").read_bytes()
    for suffix in ("-wal", "-shm"):
        extra = tmp_path / f"state.db{suffix}"
        if extra.exists():
            database += extra.read_bytes()
    assert secret.encode() not in database
    assert b"/db/password" in database  # the name is not secret (as in AWS)
    key = tmp_path / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = local(tmp_path)
    assert (await again.get("/db/password:1", with_decryption=True)).value == secret
    other = LocalParameterStore(again.rows, SecretBox(tmp_path / "other-key"))
    with pytest.raises(Exception, match="cannot be decrypted"):
        await other.get("/db/password", with_decryption=True)
    again.close()


async def test_the_hundred_and_first_version_drops_the_oldest(tmp_path: Path) -> None:
    store = LocalParameterStore(MemoryParameterRows(), SecretBox(tmp_path / "key"))
    await store.put("/many", "v1", type="String")
    for n in range(2, 102):
        await store.put("/many", f"v{n}", overwrite=True)
    history = await store.history("/many")
    assert (len(history), history[0].version, history[-1].version) == (100, 2, 101)
    await store.label("/many", ["keep"], version=2)
    with pytest.raises(ParameterStoreError) as raised:
        await store.put("/many", "v102", overwrite=True)
    assert raised.value.code == "ParameterMaxVersionLimitExceeded"


async def test_string_lists_are_kept_without_spaces_after_commas(tmp_path: Path) -> None:
    store = LocalParameterStore(MemoryParameterRows(), SecretBox(tmp_path / "key"))
    await store.put("/list", "a, b ,c", type="StringList")
    assert (await store.get("/list")).value == "a,b,c"
