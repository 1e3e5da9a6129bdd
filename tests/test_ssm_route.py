"""Which side runs an aws:runCommand step (actions._ssm_command.ssm_route): the inventory,
or AWS SSM. Deciding sends nothing, so these tests need no AWS endpoint; the caller only
says whether AWS is configured."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from actions._ssm_command import send_request
from actions._ssm_route import STATE_KEY, SsmRoute, ssm_route
from runbook_engine.fleet import Fleet
from runbook_engine.inventory import parse_inventory
from runbook_engine.plugin import ActionError
from tests.action_context import FakeContext

INVENTORY = {
    "instances": [
        {"id": "web-1", "local": {}, "tags": {"Role": "web"}},
        {"id": "i-0aaaaaaaaaaaaaaaa", "local": {}, "tags": {"Role": "db"}},
    ],
    "groups": {"webs": ["web-1"]},
}
NODE = "i-0123456789abcdef0"
MANAGED = "mi-0123456789abcdef0"


def route(inputs: dict[str, Any], configured: bool = True, **state: Any) -> SsmRoute | None:
    ctx = FakeContext(
        targets=Fleet(parse_inventory(INVENTORY)),
        aws=SimpleNamespace(configured=configured),
        state=state,
    )
    return anyio.run(ssm_route, inputs, ctx)


def test_inventory_ids_run_locally_even_in_ssm_form() -> None:
    assert route({"InstanceIds": ["web-1", "i-0aaaaaaaaaaaaaaaa"]}) is None
    assert route({"InstanceIds": ["*"]}) is None


def test_ssm_shaped_ids_the_inventory_lacks_go_to_ssm() -> None:
    found = route({"InstanceIds": [NODE, MANAGED]})
    assert found is not None
    assert found.instance_ids == (NODE, MANAGED) and found.targets == ()
    assert f"{NODE}, {MANAGED} not in the inventory" in found.reason


def test_ids_of_no_ssm_form_stay_local_where_they_are_reported_unknown() -> None:
    assert route({"InstanceIds": ["ghost"]}) is None
    assert route({"InstanceIds": [NODE, "i-short"]}) is None


def test_mixing_the_two_sides_is_refused() -> None:
    with pytest.raises(ActionError, match=r"mix instances of the inventory \(web-1\)") as error:
        route({"InstanceIds": ["web-1", NODE]})
    assert error.value.stage == "PreVerification"


def test_without_aws_configured_ssm_shaped_ids_are_not_sent() -> None:
    with pytest.raises(ActionError, match="AWS is not configured"):
        route({"InstanceIds": [NODE]}, configured=False)


def test_an_instance_ids_target_follows_the_id_rule_and_is_sent_as_written() -> None:
    targets = [{"Key": "InstanceIds", "Values": [NODE]}]
    found = route({"Targets": targets})
    assert found is not None and list(found.targets) == targets and not found.instance_ids
    assert route({"Targets": [{"Key": "InstanceIds", "Values": ["web-1"]}]}) is None


def test_tag_targets_go_to_ssm_only_when_the_inventory_matches_none() -> None:
    assert route({"Targets": [{"Key": "tag:Role", "Values": ["web"]}]}) is None
    unmatched = [{"Key": "tag:Role", "Values": ["cache"]}]
    found = route({"Targets": unmatched})
    assert found is not None and list(found.targets) == unmatched
    assert "match no instance in the inventory" in found.reason
    assert route({"Targets": unmatched}, configured=False) is None  # local: No Instances In Tag
    groups = [{"Key": "resource-groups:Name", "Values": ["aws-only-group"]}]
    assert route({"Targets": groups}) is not None


def test_inventory_only_target_keys_never_go_to_ssm() -> None:
    for key, values in (("ResourceGroup", ["nope"]), ("AWS::EC2::Instance", ["*"]),
                        ("ParameterValues", ["x"])):  # fmt: skip
        assert route({"Targets": [{"Key": key, "Values": values}]}) is None
    mixed = [{"Key": "tag:Role", "Values": ["cache"]}, {"Key": "ResourceGroup", "Values": ["x"]}]
    assert route({"Targets": mixed}) is None


def test_a_resumed_step_stays_on_the_side_it_started_on() -> None:
    saved = SsmRoute(instance_ids=(NODE,), reason="earlier").as_state()
    assert route({"InstanceIds": ["web-1"]}, **{STATE_KEY: {"route": saved}}) == SsmRoute(
        (NODE,), (), "earlier"
    )
    assert route({"InstanceIds": [NODE]}, instances=[NODE], checkpointed=True) is None


def test_the_request_carries_every_send_command_field_and_string_lists() -> None:
    inputs = {
        "DocumentName": "AWS-RunShellScript",
        "InstanceIds": [NODE],
        "Targets": None,
        "TimeoutSeconds": "600",
        "MaxConcurrency": "10%",
        "Parameters": {"commands": "uptime", "executionTimeout": 60, "flag": True},
    }
    request = send_request(inputs, SsmRoute(instance_ids=(NODE,)))
    assert request == {
        "DocumentName": "AWS-RunShellScript",
        "InstanceIds": [NODE],
        "TimeoutSeconds": 600,
        "MaxConcurrency": "10%",
        "Parameters": {"commands": ["uptime"], "executionTimeout": ["60"], "flag": ["true"]},
    }
    targets = ({"Key": "tag:Role", "Values": ["cache"]},)
    assert send_request(inputs, SsmRoute(targets=targets))["Targets"] == list(targets)
    assert "InstanceIds" not in send_request(inputs, SsmRoute(targets=targets))
