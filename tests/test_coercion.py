"""Start parameters: the API's lists of strings coerced and validated as §1.3.1 says."""

from __future__ import annotations

import pytest

from runbook_engine.coercion import resolve_parameters, wire_form
from runbook_engine.errors import ParameterError
from tests.support.documents import runbook

BOOK = runbook(
    """
schemaVersion: '0.3'
parameters:
  Name: {type: String, allowedPattern: '[a-z]+', maxChars: 8}
  Count: {type: Integer, default: 1}
  Force: {type: Boolean, default: false}
  Ids: {type: StringList, default: [], maxItems: 3, allowedValues: [a, b, c]}
  Tags: {type: StringMap, default: {}}
  Devices: {type: MapList, default: []}
  Instance: {type: 'AWS::EC2::Instance::Id', default: i-0123456789abcdef0}
  Mode: {type: String, default: fast, allowedValues: [fast, slow]}
  Optional: {type: String, default: ''}
mainSteps:
  - {name: a, action: aws:sleep, inputs: {Duration: PT0S}}
"""
)


def test_wire_lists_become_typed_values_and_defaults_fill_in() -> None:
    values = resolve_parameters(
        BOOK,
        {
            "Name": ["abc"],
            "Count": ["-7"],
            "Force": ["TRUE"],
            "Ids": ["a", "c"],
            "Tags": ['{"k": "v"}'],
            "Devices": ['[{"DeviceName": "/dev/sda1"}]'],
        },
    )
    assert values["Name"] == "abc"
    assert values["Count"] == -7
    assert values["Force"] is True
    assert values["Ids"] == ["a", "c"]
    assert values["Tags"] == {"k": "v"}
    assert values["Devices"] == [{"DeviceName": "/dev/sda1"}]
    assert values["Mode"] == "fast" and values["Optional"] == ""


def test_native_values_from_library_callers_are_accepted() -> None:
    values = resolve_parameters(BOOK, {"Name": "abc", "Count": 3, "Force": False, "Ids": ["b"]})
    assert (values["Count"], values["Force"], values["Ids"]) == (3, False, ["b"])


@pytest.mark.parametrize(
    ("supplied", "message"),
    [
        ({}, "Parameter 'Name' is required and has no default"),
        ({"Name": ["abc"], "Nope": ["x"]}, "Parameter 'Nope' is not declared"),
        ({"Name": ["ABC"]}, "does not match the pattern [a-z]+"),
        ({"Name": ["abcdefghij"]}, "takes at most 8 characters"),
        ({"Name": ["abc"], "Count": ["3.5"]}, "expects an Integer"),
        ({"Name": ["abc"], "Count": ["1", "2"]}, "expects one Integer value, got 2"),
        ({"Name": ["abc"], "Force": ["yes"]}, "expects true or false"),
        ({"Name": ["abc"], "Ids": ["a", "z"]}, "'z' is not one of the allowed values"),
        ({"Name": ["abc"], "Ids": ["a", "b", "c", "a"]}, "takes at most 3 items, got 4"),
        ({"Name": ["abc"], "Tags": ["not json"]}, "expects a JSON object"),
        ({"Name": ["abc"], "Instance": ["web-1"]}, "does not match the pattern"),
        ({"Name": ["abc"], "Mode": ["medium"]}, "'medium' is not one of the allowed values"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(supplied: dict, message: str) -> None:
    with pytest.raises(ParameterError) as error:
        resolve_parameters(BOOK, supplied)
    assert message in str(error.value)
    assert error.value.code == "InvalidAutomationExecutionParametersException"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ParameterError) as error:
        resolve_parameters(BOOK, {"Nope": ["x"], "Count": ["x"]})
    text = str(error.value)
    assert "Nope" in text and "Count" in text and "Name" in text


def test_wire_form_is_lists_of_strings() -> None:
    assert wire_form("a") == ["a"]
    assert wire_form(7) == ["7"]
    assert wire_form(True) == ["true"]
    assert wire_form(["a", 1]) == ["a", "1"]
    assert wire_form({"k": 1}) == ['{"k":1}']
