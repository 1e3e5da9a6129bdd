"""YAML sources: the data PyYAML's safe loader gives, with the line and column of every
key and value, whichever way a node is built (plain nodes in one pass, other tags,
merges and aliases through PyYAML)."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from runbook_engine.diagnostics import Mark
from runbook_engine.source import SourceSyntaxError, load_source

DOCUMENTS = {
    "plain": "a: x\nb:\n  - c\n  - {d: e}\n",
    "alias": "a: &x {b: 1, c: [1, 2]}\nd: *x\n",
    "merge": "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n",
    "scalars": "a: 2024-01-01\nb: 1.5\nc: !!binary aGVsbG8=\nd: ~\ne: [yes, no, 0x1F]\n",
    "keys": "1: a\ntrue: b\nnull: c\n",
    "set": "s: !!set {x, y}\n",
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_data_is_what_the_safe_loader_gives(name: str) -> None:
    text = DOCUMENTS[name]
    assert load_source(text, f"{name}.yaml").data == yaml.safe_load(text)


def test_keys_and_values_have_their_line_and_column() -> None:
    source = load_source("a: x\nb:\n  - c\n  - {d: e}\n", "doc.yaml")
    assert source.marks.keys[("b",)] == Mark(2, 1)
    assert source.marks.values[("b", 0)] == Mark(3, 5)
    assert source.marks.keys[("b", 1, "d")] == Mark(4, 6)
    assert source.marks.values[("b", 1, "d")] == Mark(4, 9)


def test_merged_keys_are_located_where_they_were_written() -> None:
    source = load_source(DOCUMENTS["merge"], "merge.yaml")
    assert source.data["derived"] == {"x": 1, "y": 2}
    assert source.marks.keys[("derived", "x")] == Mark(1, 11)
    assert source.marks.keys[("derived", "y")] == Mark(4, 3)


def test_tagged_values_and_scalar_keys() -> None:
    source = load_source(DOCUMENTS["scalars"] + "1: one\n", "tags.yaml")
    assert source.data["a"] == date(2024, 1, 1)
    assert source.data["c"] == b"hello"
    assert source.data[1] == "one"
    assert source.marks.keys[("1",)] == Mark(6, 1)  # paths name keys as written
    assert source.marks.values[("e", 2)] == Mark(5, 14)


def test_duplicate_keys_are_reported_and_the_last_one_wins() -> None:
    source = load_source("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "dups.yaml")
    assert source.data == {"a": 3, "b": {"c": 2}}
    assert source.duplicate_keys == ((("b", "c"), Mark(4, 3)), (("a",), Mark(5, 1)))


def test_an_unknown_tag_is_a_syntax_error_with_its_place() -> None:
    with pytest.raises(SourceSyntaxError) as caught:
        load_source("a: 1\nb: !Ref x\n", "cfn.yaml")
    assert caught.value.diagnostic.line == 2
    assert "!Ref" in caught.value.diagnostic.message
