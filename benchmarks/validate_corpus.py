"""Validation throughput over the conformance corpus, and what the validator says about it.

Validates every Automation and Command document under ``<repo>/../shared/corpus`` (the same
checks as ``runbook validate``: structure, action inputs, expressions, step graph) and
prints documents per second, total seconds, the verdict counts and whether the documents
listed in ``EXPECTED_INVALID.tsv`` are rejected with the error named there. A baseline pass
that only parses the text (``yaml.safe_load`` / ``json.loads``) gives the ratio of full
validation to bare parsing, which stays meaningful from one machine to another.

    python benchmarks/validate_corpus.py [--repeat 5] [--all-actions-known] [--corpus DIR]

``--all-actions-known`` gives every action of the SSM action list a permissive schema, so
that the expression and graph checks run over every step even where that action's module
is not installed yet.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from runbook_engine.inputs import ActionSchema
from runbook_engine.registry import default_registry
from runbook_engine.validation import ValidationReport, validate_text

ROOT = Path(__file__).resolve().parent.parent
# The SSM Automation action list (ssm-reference.md §4).
SSM_ACTIONS = (
    "aws:approve", "aws:assertAwsResourceProperty", "aws:branch", "aws:changeInstanceState",
    "aws:copyImage", "aws:createImage", "aws:createStack", "aws:createTags", "aws:deleteImage",
    "aws:deleteStack", "aws:executeAutomation", "aws:executeAwsApi", "aws:executeScript",
    "aws:executeStateMachine", "aws:invokeLambdaFunction", "aws:invokeWebhook", "aws:loop",
    "aws:pause", "aws:runCommand", "aws:runInstances", "aws:sleep",
    "aws:waitForAwsResourceProperty", "aws:updateVariable",
)  # fmt: skip

Document = tuple[str, str]  # path relative to the corpus, text


def default_corpus() -> Path:
    """``<repo>/../shared/corpus``, or the nearest ``shared/corpus`` further up."""
    for parent in ROOT.parents:
        candidate = parent / "shared" / "corpus"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "corpus"


def load_documents(corpus: Path) -> list[Document]:
    paths = sorted(
        p
        for kind in ("automation", "command")
        for p in (corpus / kind).rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".yml", ".json")
    )
    return [(str(p.relative_to(corpus)), p.read_text(encoding="utf-8")) for p in paths]


def timed_passes(work: Callable[[], object], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return seconds


def parse_only(documents: list[Document]) -> None:
    for path, text in documents:
        json.loads(text) if path.endswith(".json") else yaml.load(text, Loader=_LOADER)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def schemas_for(all_actions_known: bool) -> Mapping[str, ActionSchema]:
    installed = default_registry().schemas()
    if not all_actions_known:
        return installed
    permissive = ActionSchema(inputs={}, extra_inputs=True)
    return {**{name: permissive for name in SSM_ACTIONS}, **installed}


def expected_invalid(corpus: Path) -> dict[str, str]:
    with (corpus / "EXPECTED_INVALID.tsv").open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {row["path"]: row["expected_error"] for row in rows}


def error_kind(message: str) -> str:
    """Group messages: ``step X: unknown input 'Y' ...`` -> ``unknown input``."""
    if message.startswith("step ") and ": " in message:
        message = message.split(": ", 1)[1]
    return " ".join(message.replace("'", " ").split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=default_corpus())
    parser.add_argument("--repeat", type=int, default=5, help="timed passes (best is reported)")
    parser.add_argument("--all-actions-known", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    documents = load_documents(args.corpus)
    read_seconds = time.perf_counter() - start
    size = sum(len(text.encode()) for _, text in documents)
    schemas = schemas_for(args.all_actions_known)
    print(f"corpus: {args.corpus} ({len(documents)} documents, {size / 1e6:.1f} MB, "
          f"read in {read_seconds:.2f} s)")
    print(f"actions with a schema: {len(schemas)}")

    reports: list[ValidationReport] = []

    def validate_all() -> None:
        reports.clear()
        reports.extend(validate_text(text, path, schemas) for path, text in documents)

    validate_all()  # warm-up: imports, regex compilation, entry points
    validation = timed_passes(validate_all, args.repeat)
    parsing = timed_passes(lambda: parse_only(documents), args.repeat)
    best, best_parse = min(validation), min(parsing)
    median = statistics.median(validation)
    print(f"validate: {len(documents)} documents in {best:.3f} s (best of {args.repeat}; "
          f"median {median:.3f} s) = {len(documents) / best:.0f} documents/s")
    print(f"parse only (yaml/json): {best_parse:.3f} s = {len(documents) / best_parse:.0f} "
          f"documents/s; validate / parse = {best / best_parse:.1f}x")

    verdicts: Counter[tuple[str, str]] = Counter()
    errors: Counter[str] = Counter()
    for report in reports:
        verdicts[(report.kind or "unreadable", "valid" if report.valid else "invalid")] += 1
        errors.update(error_kind(d.message) for d in report.errors)
    for kind in sorted({k for k, _ in verdicts}):
        print(f"{kind}: {verdicts[(kind, 'valid')]} valid, {verdicts[(kind, 'invalid')]} invalid")
    print(f"warnings: {sum(len(r.warnings) for r in reports)}")
    for message, count in errors.most_common(5):
        print(f"  {count:5d} x {message}")

    by_path = {report.path: report for report in reports}
    expected = expected_invalid(args.corpus)
    matched = sum(
        1
        for path, message in expected.items()
        if path in by_path and any(d.message == message for d in by_path[path].errors)
    )
    print(f"EXPECTED_INVALID.tsv: {matched} of {len(expected)} rejected with the named error")


if __name__ == "__main__":
    main()
