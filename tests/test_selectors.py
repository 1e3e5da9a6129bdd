"""Output selectors (ssm-reference §3.6) against an EC2 DescribeInstances response."""

from __future__ import annotations

from typing import Any

import pytest

from runbook_engine.model import ValueType
from runbook_engine.selectors import (
    OutputTypeError,
    SelectorError,
    check_selector,
    convert,
    select,
    to_api_strings,
)


def _instance(instance_id: str, state: str, code: int, volume: str, image: str) -> dict[str, Any]:
    return {
        "InstanceId": instance_id,
        "ImageId": image,
        "State": {"Code": code, "Name": state},
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"DeleteOnTermination": True, "Status": "attached", "VolumeId": volume},
            }
        ],
    }


RUNNING = _instance("i-0aaa", "running", 16, "vol-0aaa", "ami-0aaa")
STOPPED = _instance("i-0bbb", "stopped", 80, "vol-0bbb", "ami-0bbb")
PENDING = _instance("i-0ccc", "pending", 0, "vol-0ccc", "ami-0ccc")
DESCRIBE_INSTANCES = {
    "Reservations": [
        {"ReservationId": "r-1", "Instances": [RUNNING, STOPPED]},
        {"ReservationId": "r-2", "Instances": [PENDING]},
    ]
}


# The examples of the AWS docs, in the order the reference lists them.
@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("$.Reservations[0].Instances[0].ImageId", "ami-0aaa"),
        ("$.Reservations[0].Instances[0].BlockDeviceMappings[0].Ebs.DeleteOnTermination", True),
        ("$.Reservations[0].Instances[0].State.Code", 16),
        ("$.Reservations..BlockDeviceMappings..VolumeId", ["vol-0aaa", "vol-0bbb", "vol-0ccc"]),
        (
            "$.Reservations[0].Instances[0].BlockDeviceMappings[0]",
            RUNNING["BlockDeviceMappings"][0],
        ),
        (
            "$.Reservations..Instances..State",
            [RUNNING["State"], STOPPED["State"], PENDING["State"]],
        ),
        ("$.Reservations..Instances[?(@.State.Name == 'running')]", [RUNNING]),
        (
            "$.Reservations..Instances[?(@.State.Name != 'running')].ImageId",
            ["ami-0bbb", "ami-0ccc"],
        ),
    ],
)
def test_documented_examples(selector: str, expected: Any) -> None:
    assert select(DESCRIBE_INSTANCES, selector) == (True, expected)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("$", DESCRIBE_INSTANCES),
        ("$.Reservations[-1].ReservationId", "r-2"),
        ("$['Reservations'][1]['ReservationId']", "r-2"),
        ("$..InstanceId", ["i-0aaa", "i-0bbb", "i-0ccc"]),
        ("$.Reservations[*].ReservationId", ["r-1", "r-2"]),
        ("$.Reservations..Instances[0].InstanceId", ["i-0aaa", "i-0ccc"]),
        ("$.Reservations..Instances[?(@.State.Code > 10)].InstanceId", ["i-0aaa", "i-0bbb"]),
        ("$.Reservations..Instances[?(@.State.Code <= 16)].InstanceId", ["i-0aaa", "i-0ccc"]),
        ("$.Reservations..Instances[?(@.State.Code >= 80)].InstanceId", ["i-0bbb"]),
        ("$.Reservations..Instances[?(@.State.Code < 1)].InstanceId", ["i-0ccc"]),
        ("$.Reservations..Instances[?(@.State.Code == 80)].InstanceId", ["i-0bbb"]),
        (
            "$..BlockDeviceMappings[?(@.Ebs.DeleteOnTermination == true)].Ebs.VolumeId",
            ["vol-0aaa", "vol-0bbb", "vol-0ccc"],
        ),
        ("$.Reservations..Instances[?(@.ImageId > 'ami-0b')].InstanceId", ["i-0bbb", "i-0ccc"]),
        # Jayway reads a selector without '$' as '$.' + selector (PropertySelector: Status).
        ("Reservations[0].ReservationId", "r-1"),
    ],
)
def test_more_selectors(selector: str, expected: Any) -> None:
    assert select(DESCRIBE_INSTANCES, selector) == (True, expected)


@pytest.mark.parametrize(
    "selector",
    [
        "$.Reservations[0].Missing",
        "$.Reservations[5]",
        "$.Reservations[0].ReservationId.Deeper",
        "$..NoSuchMember",
        "$.Reservations..Instances[?(@.State.Name == 'terminated')]",
        "$.Reservations..Instances[?(@.State.Code == '16')]",  # text never equals a number
        "$.Reservations..Instances[?(@.Missing.Path != 'x')]",
    ],
)
def test_a_selection_of_nothing_is_not_found(selector: str) -> None:
    assert select(DESCRIBE_INSTANCES, selector) == (False, None)


def test_script_payload_selection() -> None:
    response = {"Payload": {"latestSnapshotId": "snap-1", "matches": ["a", "b"]}}
    assert select(response, "$.Payload.latestSnapshotId") == (True, "snap-1")
    assert select(response, "$.Payload.matches[0]") == (True, "a")
    assert select(response, "$.Payload.noSnapshotFound") == (False, None)


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ("", "must not be empty"),
        ("$.Reservations[", "unclosed '['"),
        ("$.Reservations[0", "unclosed '['"),
        ("$.", "'.' must be followed by a member name"),
        ("$..", "'..' must be followed by a member name"),
        ("$.a[?(@.b == 'x' && @.c == 'y')]", "&& and || are not supported"),
        ("$.a[?(@.b ~ 'x')]", "a filter must look like [?(@.path OP literal)]"),
        ("$.a[1:2]", "unsupported bracket expression '[1:2]'"),
        ("$ foo", "unexpected ' '"),
    ],
)
def test_invalid_syntax_is_reported(selector: str, problem: str) -> None:
    with pytest.raises(SelectorError) as info:
        select(DESCRIBE_INSTANCES, selector)
    assert str(info.value).startswith(f"invalid selector {selector!r}: ")
    assert problem in str(info.value)
    assert check_selector(selector) == str(info.value)


def test_check_selector_accepts_valid_selectors() -> None:
    assert check_selector("$.Reservations..Instances[?(@.State.Name == 'running')].ImageId") is None
    assert check_selector("$.Reservations..Instances.length") is None


def test_selector_error_is_a_value_error() -> None:
    assert issubclass(SelectorError, ValueError)
    assert issubclass(OutputTypeError, ValueError)


@pytest.mark.parametrize(
    ("value", "value_type", "expected"),
    [
        ("x", ValueType.STRING, "x"),
        ("x", ValueType.STRING_LIST, ["x"]),
        ("42", ValueType.INTEGER, 42),
        (" -3 ", ValueType.INTEGER, -3),
        ("true", ValueType.BOOLEAN, True),
        ("False", ValueType.BOOLEAN, False),
        (16, ValueType.STRING, "16"),
        (16, ValueType.STRING_LIST, ["16"]),
        (16, ValueType.INTEGER, 16),
        (16.0, ValueType.INTEGER, 16),
        (True, ValueType.STRING, "true"),
        (False, ValueType.STRING_LIST, ["false"]),
        (True, ValueType.BOOLEAN, True),
        (["only"], ValueType.STRING, "only"),
        ([7], ValueType.INTEGER, 7),
        (["7"], ValueType.INTEGER, 7),
        ([True], ValueType.BOOLEAN, True),
        ([True], ValueType.STRING, "true"),
        (["a", 2, False], ValueType.STRING_LIST, ["a", "2", "false"]),
        ({"k": 1}, ValueType.STRING_MAP, {"k": 1}),
        ([{"k": 1}, {"k": 2}], ValueType.MAP_LIST, [{"k": 1}, {"k": 2}]),
        ([], ValueType.MAP_LIST, []),
        ([], ValueType.STRING_LIST, []),
    ],
)
def test_conversions(value: Any, value_type: ValueType, expected: Any) -> None:
    assert convert(value, value_type) == expected


@pytest.mark.parametrize(
    ("value", "value_type", "message"),
    [
        ({"Code": 16}, ValueType.STRING, 'the selected value {"Code":16} is a map, not String'),
        (["a", "b"], ValueType.STRING, 'value ["a","b"] is a list of 2 items, not String'),
        ("sixteen", ValueType.INTEGER, "the selected value sixteen is a String, not Integer"),
        (True, ValueType.INTEGER, "the selected value true is a Boolean, not Integer"),
        ("yes", ValueType.BOOLEAN, "the selected value yes is a String, not Boolean"),
        (1, ValueType.BOOLEAN, "the selected value 1 is a number, not Boolean"),
        ("x", ValueType.STRING_MAP, "the selected value x is a String, not StringMap"),
        ([{"a": 1}], ValueType.STRING_LIST, "is a list of 1 items, not StringList"),
        (["a"], ValueType.MAP_LIST, "is a list of 1 items, not MapList"),
        ({"a": 1}, ValueType.MAP_LIST, "is a map, not MapList"),
    ],
)
def test_other_mismatches_fail_clearly(value: Any, value_type: ValueType, message: str) -> None:
    with pytest.raises(OutputTypeError) as info:
        convert(value, value_type)
    assert message in str(info.value)


def test_selected_then_converted_like_the_docs() -> None:
    running = "$.Reservations..Instances[?(@.State.Name == 'running')].ImageId"
    found, value = select(DESCRIBE_INSTANCES, running)
    assert found
    assert convert(value, ValueType.STRING) == "ami-0aaa"  # "StringList | String"
    assert convert(value, ValueType.STRING_LIST) == ["ami-0aaa"]


@pytest.mark.parametrize(
    ("value", "value_type", "expected"),
    [
        ("i-1", ValueType.STRING, ["i-1"]),
        (16, ValueType.INTEGER, ["16"]),
        (True, ValueType.BOOLEAN, ["true"]),
        (["stopped", "running"], ValueType.STRING_LIST, ["stopped", "running"]),
        ({"a": 1, "b": [1, 2]}, ValueType.STRING_MAP, ['{"a":1,"b":[1,2]}']),
        ([{"a": 1}, {"b": "é"}], ValueType.MAP_LIST, ['{"a":1}', '{"b":"é"}']),
        ("text", None, ["text"]),
        (False, None, ["false"]),
        ([1, "x"], None, ["1", "x"]),
        ({"k": "v"}, None, ['{"k":"v"}']),
        ([{"k": "v"}], None, ['{"k":"v"}']),
    ],
)
def test_api_strings(value: Any, value_type: ValueType | None, expected: list[str]) -> None:
    assert to_api_strings(value, value_type) == expected
