"""The {{ }} language: what is a reference, and what rendering produces (ssm-reference §3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from runbook_engine.errors import ParameterError
from runbook_engine.expressions import (
    Reference,
    Scope,
    parse_template,
    render,
    render_default,
)

# --------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("text", "namespace", "name", "attribute"),
    [
        ("{{InstanceId}}", None, "InstanceId", None),
        ("{{ InstanceId }}", None, "InstanceId", None),
        ("{{\n  InstanceId\n}}", None, "InstanceId", None),
        ("{{ my-param }}", None, "my-param", None),
        ("{{ startInstances.InstanceIds }}", None, "startInstances", "InstanceIds"),
        ("{{ ForEach.CurrentIteratorValue }}", None, "ForEach", "CurrentIteratorValue"),
        ("{{ loop.CurrentIteration }}", None, "loop", "CurrentIteration"),
        ("{{global:ACCOUNT_ID}}", "global", "ACCOUNT_ID", None),
        ("{{ global:REGION }}", "global", "REGION", None),
        ("{{global:DATE}}", "global", "DATE", None),
        ("{{global:DATE_TIME}}", "global", "DATE_TIME", None),
        ("{{ global:AWS_PARTITION }}", "global", "AWS_PARTITION", None),
        ("{{automation:EXECUTION_ID}}", "automation", "EXECUTION_ID", None),
        ("{{ssm:latestAmi}}", "ssm", "latestAmi", None),
        (
            "{{ ssm:/aws/service/ami-amazon-linux-latest/amzn-ami-hvm-x86_64-gp2 }}",
            "ssm",
            "/aws/service/ami-amazon-linux-latest/amzn-ami-hvm-x86_64-gp2",
            None,
        ),
        ("{{ssm:/Solutions/SO0111/afsbp/1.0.0/S3.4/KmsKeyAlias}}", "ssm",
         "/Solutions/SO0111/afsbp/1.0.0/S3.4/KmsKeyAlias", None),
        ("{{ssm:/app/db-host:3}}", "ssm", "/app/db-host", "3"),
        ("{{ ssm:/app/db-host:Production }}", "ssm", "/app/db-host", "Production"),
        ("{{ variable:TargetImageState }}", "variable", "TargetImageState", None),
        ("{{ foo:bar }}", "foo", "bar", None),
    ],
)
def test_every_reference_form(
    text: str, namespace: str | None, name: str, attribute: str | None
) -> None:
    template = parse_template(text)
    assert template.whole == Reference(namespace, name, attribute, text)
    assert template.is_whole
    assert template.parts == (template.whole,)


def test_reference_expression_is_the_text_without_braces() -> None:
    assert parse_template("{{ Step.Out }}").references[0].expression == "Step.Out"
    assert parse_template("{{ssm:/a/b:2}}").references[0].expression == "ssm:/a/b:2"


@pytest.mark.parametrize(
    "text",
    [
        "{{ font-family: Arial, sans-serif; margin: 20px; }}",
        "{{ color: #0066cc; }}",
        "{{ODBC Driver 18 for SQL Server}}",
        "{{ two words }}",
        "{{ ssm:a:b:c }}",
        "{{}}",
        "{{ }}",
        "{{ a..b }}",
        "{{{name}}}",
    ],
)
def test_text_that_is_not_a_reference_stays_literal(text: str) -> None:
    template = parse_template(text)
    assert template.references == ()
    assert template.parts == (text,)
    assert not template.is_whole
    assert render(text, Scope(parameters={"name": "x", "a": "y"})) == text


def test_unclosed_braces_are_literal() -> None:
    assert parse_template("{{ x }").parts == ("{{ x }",)
    assert parse_template("x }} {{").parts == ("x }} {{",)


def test_nested_expressions_stay_literal() -> None:
    template = parse_template("{{ {{x}} }}")
    assert template.references == ()
    assert template.nested == ("{{ {{x}} }}",)
    assert render("a {{ {{x}} }} b", Scope(parameters={"x": "1"})) == "a {{ {{x}} }} b"


def test_an_unbalanced_opening_does_not_hide_a_later_reference() -> None:
    template = parse_template("{{ab {{x}}")
    assert template.parts == ("{{ab ", Reference(None, "x", None, "{{x}}"))


def test_interpolated_parts_in_order() -> None:
    template = parse_template(
        "arn:{{global:AWS_PARTITION}}:iam::{{ global:ACCOUNT_ID }}:role/{{Role}}"
    )
    assert [p if isinstance(p, str) else p.expression for p in template.parts] == [
        "arn:", "global:AWS_PARTITION", ":iam::", "global:ACCOUNT_ID", ":role/", "Role"
    ]
    assert not template.is_whole


def test_whole_value_allows_surrounding_whitespace() -> None:
    assert parse_template("  {{ x }}\n").is_whole
    assert not parse_template("x{{ x }}").is_whole
    assert not parse_template("{{ x }}{{ y }}").is_whole


def test_parsing_is_cached() -> None:
    text = "cache-{{ probe }}"
    assert parse_template(text) is parse_template(text)


# --------------------------------------------------------------------------- rendering

FIXED = datetime(2024, 3, 9, 7, 5, 2, tzinfo=UTC)


def _scope(**changes: Any) -> Scope:
    values: dict[str, Any] = {
        "parameters": {
            "InstanceId": "i-0abc",
            "Count": 3,
            "Enabled": True,
            "Ids": ["i-1", "i-2"],
            "Tags": {"Env": "prod", "Team": "ops"},
            "Maps": [{"a": 1}, {"b": "two"}],
            "dotted.name": "dotted-value",
        },
        "outputs": {
            "startInstances": {"InstanceIds": ["i-9"]},
            "launch": {"payload": {"ImageId": "ami-1"}},
            "loop": {"CurrentIteration": 2, "CurrentIteratorValue": "snap-2"},
            "noOutputs": {},
        },
        "variables": {"State": "available"},
        "execution_id": "0f1e2d3c-aaaa-bbbb-cccc-000000000001",
        "account_id": "123456789012",
        "region": "eu-west-3",
        "partition": "aws-cn",
        "clock": lambda: FIXED,
    }
    values.update(changes)
    return Scope(**values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ InstanceId }}", "i-0abc"),
        ("{{ Count }}", 3),
        ("{{ Enabled }}", True),
        ("{{ Ids }}", ["i-1", "i-2"]),
        ("{{ Tags }}", {"Env": "prod", "Team": "ops"}),
        ("{{ Maps }}", [{"a": 1}, {"b": "two"}]),
        ("{{ launch.payload }}", {"ImageId": "ami-1"}),
        ("{{ loop.CurrentIteration }}", 2),
        ("{{ loop.CurrentIteratorValue }}", "snap-2"),
        ("{{ variable:State }}", "available"),
        ("{{ dotted.name }}", "dotted-value"),
        ("{{global:ACCOUNT_ID}}", "123456789012"),
        ("{{global:REGION}}", "eu-west-3"),
        ("{{global:AWS_PARTITION}}", "aws-cn"),
        ("{{global:DATE}}", "2024-03-09"),
        ("{{global:DATE_TIME}}", "2024-03-09_07.05.02"),
        ("{{automation:EXECUTION_ID}}", "0f1e2d3c-aaaa-bbbb-cccc-000000000001"),
        (" {{ Count }}\n", 3),
    ],
)
def test_whole_value_keeps_the_native_type(text: str, expected: Any) -> None:
    assert render(text, _scope()) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("createdResource-{{automation:EXECUTION_ID}}",
         "createdResource-0f1e2d3c-aaaa-bbbb-cccc-000000000001"),
        ("AMI Created on{{global:DATE_TIME}}", "AMI Created on2024-03-09_07.05.02"),
        ('{"InstanceId": "{{InstanceId}}"}', '{"InstanceId": "i-0abc"}'),
        ("count={{ Count }}", "count=3"),
        ("enabled={{ Enabled }}", "enabled=true"),
        ("ids={{ Ids }}", 'ids=["i-1","i-2"]'),
        ("tags={{ Tags }}", 'tags={"Env":"prod","Team":"ops"}'),
        ("maps={{ Maps }}", 'maps=[{"a":1},{"b":"two"}]'),
        ("{{ InstanceId }}{{ Count }}", "i-0abc3"),
        ("arn:{{global:AWS_PARTITION}}:iam::{{global:ACCOUNT_ID}}:root",
         "arn:aws-cn:iam::123456789012:root"),
    ],
)
def test_interpolation_gives_text(text: str, expected: str) -> None:
    assert render(text, _scope()) == expected


def test_rendering_goes_through_maps_and_lists_but_not_keys() -> None:
    value = {
        "{{ InstanceId }}": "key stays",
        "Nested": {"Deep": ["x-{{ Count }}", {"Flag": "{{ Enabled }}"}]},
        "Plain": 5,
        "Nothing": None,
    }
    assert render(value, _scope()) == {
        "{{ InstanceId }}": "key stays",
        "Nested": {"Deep": ["x-3", {"Flag": True}]},
        "Plain": 5,
        "Nothing": None,
    }


def test_list_elements_that_are_lists_are_spliced_one_level() -> None:
    scope = _scope()
    assert render(["{{ startInstances.InstanceIds }}"], scope) == ["i-9"]
    assert render(["first", "{{ Ids }}", "last"], scope) == ["first", "i-1", "i-2", "last"]
    assert render(["{{ Maps }}"], scope) == [{"a": 1}, {"b": "two"}]
    # Only whole values splice; literal nested lists and interpolations stay as they are.
    assert render([["a", "b"], "ids={{ Ids }}"], scope) == [["a", "b"], 'ids=["i-1","i-2"]']
    assert render([["{{ Ids }}"]], scope) == [["i-1", "i-2"]]


def test_one_element_lists_are_not_unwrapped_here() -> None:
    assert render({"InstanceId": "{{ startInstances.InstanceIds }}"}, _scope()) == {
        "InstanceId": ["i-9"]
    }


def test_undefined_outputs_stay_literal_with_a_warning() -> None:
    scope = _scope()
    value = {
        "Variable": "{{ getSnapshots.noSnapshotFound }}",
        "Message": "found {{ startInstances.Missing }} here",
        "List": ["{{ noOutputs.Anything }}"],
    }
    assert render(value, scope) == value
    assert scope.warnings == [
        "{{ getSnapshots.noSnapshotFound }} left as written: step 'getSnapshots' has not run",
        "{{ startInstances.Missing }} left as written: "
        "step 'startInstances' has no output 'Missing'",
        "{{ noOutputs.Anything }} left as written: step 'noOutputs' has no output 'Anything'",
    ]


def test_unknown_names_at_run_time_stay_literal_with_a_warning() -> None:
    scope = _scope()
    assert render("{{TARGET_ID}}", scope) == "{{TARGET_ID}}"
    assert render("{{ variable:Nope }}", scope) == "{{ variable:Nope }}"
    assert render("{{ global:NOPE }}", scope) == "{{ global:NOPE }}"
    assert render("{{ ssm:/a/b }}", scope) == "{{ ssm:/a/b }}"
    assert scope.warnings == [
        "{{TARGET_ID}} left as written: no parameter 'TARGET_ID'",
        "{{ variable:Nope }} left as written: no variable 'Nope'",
        "{{ global:NOPE }} left as written: unknown global variable 'global:NOPE'",
        "{{ ssm:/a/b }} left as written: Parameter Store references are resolved only in "
        "parameter defaults",
    ]


def test_strings_without_braces_come_back_unchanged() -> None:
    text = "no expressions here"
    assert render(text, _scope()) is text


def test_date_is_utc_and_read_at_each_substitution() -> None:
    moments = iter([
        datetime(2024, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2025, 1, 1, 4, 31, 0),  # naive clock values are UTC
    ])
    scope = _scope(clock=lambda: next(moments))
    assert render("{{ global:DATE_TIME }}", scope) == "2025-01-01_04.30.00"
    assert render("{{ global:DATE }}", scope) == "2025-01-01"


def test_default_scope_values() -> None:
    scope = Scope()
    assert render("{{global:ACCOUNT_ID}}/{{global:REGION}}/{{global:AWS_PARTITION}}", scope) == (
        "000000000000/us-east-1/aws"
    )
    assert len(render("{{global:DATE}}", scope)) == len("2024-01-01")


# --------------------------------------------------------------------------- defaults


def test_defaults_resolve_parameter_store_and_system_values() -> None:
    store = {("/ami/latest", None): "ami-123", ("/ami/latest", "2"): "ami-old"}
    scope = _scope(parameter_store=lambda name, selector: store[(name, selector)])
    assert render_default("{{ ssm:/ami/latest }}", scope) == "ami-123"
    assert render_default("{{ssm:/ami/latest:2}}", scope) == "ami-old"
    assert render_default("AMI-{{global:DATE_TIME}}", scope) == "AMI-2024-03-09_07.05.02"
    assert render_default(["{{automation:EXECUTION_ID}}"], scope) == [
        "0f1e2d3c-aaaa-bbbb-cccc-000000000001"
    ]


def test_defaults_do_not_resolve_parameters_or_outputs() -> None:
    scope = _scope()
    assert render_default("{{ InstanceId }}", scope) == "{{ InstanceId }}"
    assert scope.warnings == [
        "{{ InstanceId }} left as written: a parameter default may only use ssm:, global: and "
        "automation: references"
    ]


def test_a_missing_parameter_store_parameter_fails_the_start() -> None:
    def lookup(name: str, selector: str | None) -> Any:
        raise KeyError(name)

    missing = r"Parameter Store parameter '/nope' in \{\{ssm:/nope\}\} was not found"
    with pytest.raises(ParameterError, match=missing):
        render_default("{{ssm:/nope}}", _scope(parameter_store=lookup))
    with pytest.raises(ParameterError, match="no Parameter Store is configured"):
        render_default("{{ssm:/nope}}", _scope())
