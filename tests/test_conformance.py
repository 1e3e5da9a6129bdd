"""Every real document in the shared corpus gets the verdict the corpus expects."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_engine.validation import validate_file
from tests.conftest import CORPUS


def _documents() -> list[Path]:
    return sorted(
        p
        for kind in ("automation", "command")
        for p in (CORPUS / kind).rglob("*")
        if p.suffix in (".yaml", ".yml", ".json")
    )


def _expected_invalid() -> dict[str, str]:
    with (CORPUS / "EXPECTED_INVALID.tsv").open() as handle:
        return {
            row["path"]: row["expected_error"] for row in csv.DictReader(handle, delimiter="\t")
        }


DOCUMENTS = _documents()
EXPECTED_INVALID = _expected_invalid()


def test_the_corpus_is_all_there(corpus: Path) -> None:
    assert len([d for d in DOCUMENTS if "automation" in d.parts]) == 306
    assert len([d for d in DOCUMENTS if "command" in d.parts]) == 94


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(CORPUS)))
def test_document_verdict(path: Path) -> None:
    report = validate_file(path)
    relative = str(path.relative_to(CORPUS))
    if relative in EXPECTED_INVALID:
        assert not report.valid
        messages = [d.message for d in report.errors]
        assert any(EXPECTED_INVALID[relative] in m for m in messages), messages
        assert all(d.line >= 1 and d.column >= 1 for d in report.errors)
    else:
        assert report.valid, [d.format() for d in report.errors]


def test_validate_command_over_the_whole_corpus() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "validate",
            "--output",
            "json",
            str(CORPUS / "automation"),
            str(CORPUS / "command"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    verdicts = json.loads(result.stdout)
    assert len(verdicts) == 400
    invalid = sorted(str(Path(v["path"]).relative_to(CORPUS)) for v in verdicts if not v["valid"])
    assert invalid == sorted(EXPECTED_INVALID)
