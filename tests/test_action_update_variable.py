"""aws:updateVariable: names the change; the engine checks the type and stores it."""

from __future__ import annotations

from typing import Any

import pytest

from actions.update_variable import ACTION, SCHEMA, check_variable_value, variable_name
from runbook_engine.plugin import ActionError, ActionResult
from tests.action_context import FakeContext

pytestmark = pytest.mark.anyio


async def test_the_response_names_the_variable_and_its_new_value() -> None:
    value = [{"Name": "a"}, {"Name": "b"}]
    result = await ACTION.run({"Name": "variable:Images", "Value": value}, FakeContext())
    assert isinstance(result, ActionResult)
    assert result.outputs == {}
    assert result.response == {"variable": "Images", "value": value}


async def test_a_rendered_name_out_of_form_fails() -> None:
    with pytest.raises(ActionError, match="Name must be variable:NAME, not 'Images'"):
        await ACTION.run({"Name": "Images", "Value": 1}, FakeContext())


def test_name_form() -> None:
    assert variable_name("variable:TargetImageState") == "TargetImageState"
    assert variable_name(" variable: retries ") == "retries"
    assert variable_name("TargetImageState") is None
    assert variable_name("variable:") is None
    assert variable_name("variable:a b") is None


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        ("String", "available"),
        ("String", "x" * 512),
        ("Integer", 3),
        ("Boolean", False),
        ("StringList", []),
        ("StringList", ["a"] * 50),
        ("StringMap", {"Key": "v", "Nested": {"a": 1}}),
        ("MapList", [{"k": "v"}] * 200),
    ],
)
def test_accepted_values(value_type: str, value: Any) -> None:
    assert check_variable_value(value_type, value) is None


NO_CONVERSION = "the variable is declared {}, but the value is {} (no conversion is made)"


@pytest.mark.parametrize(
    ("value_type", "value", "message"),
    [
        ("String", "", "a String variable holds 1 to 512 characters, not 0"),
        ("String", "x" * 513, "a String variable holds 1 to 512 characters, not 513"),
        ("String", 5, NO_CONVERSION.format("String", "Integer")),
        ("Integer", "5", NO_CONVERSION.format("Integer", "String")),
        ("Integer", True, NO_CONVERSION.format("Integer", "Boolean")),
        ("Boolean", "true", NO_CONVERSION.format("Boolean", "String")),
        ("StringList", "a", NO_CONVERSION.format("StringList", "String")),
        ("StringList", ["a"] * 51, "a StringList variable holds at most 50 items, not 51"),
        ("StringList", ["a", 2], "a StringList variable holds text only, not 2 (Integer)"),
        ("StringMap", {"k" * 51: 1}, f"map keys must be 1 to 50 characters, not {'k' * 51!r}"),
        ("MapList", [{"k": 1}] * 201, "a MapList variable holds at most 200 maps, not 201"),
        ("MapList", {"k": 1}, NO_CONVERSION.format("MapList", "StringMap")),
        ("Float", 1.5, "unknown variable type 'Float'"),
    ],
)
def test_refused_values(value_type: str, value: Any, message: str) -> None:
    assert check_variable_value(value_type, value) == message


def test_static_checks() -> None:
    def messages(inputs: dict[str, Any]) -> list[str]:
        return [f.message for f in SCHEMA.check(inputs, static=True)]

    assert messages({"Name": "variable:State", "Value": "{{ step.State }}"}) == []
    assert messages({"Name": "State", "Value": 1}) == ["Name must be variable:NAME, not 'State'"]
    assert messages({"Name": "variable:State"}) == ["missing required input 'Value'"]
    assert SCHEMA.on_cancel_allowed is False
