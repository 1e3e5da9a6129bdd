"""aws:approve: decisions come from the signals delivered to the waiting step."""

from __future__ import annotations

from typing import Any

import pytest

from actions.approve import ACTION, SCHEMA, check_signal, principal_matches
from runbook_engine.inputs import normalize_inputs
from runbook_engine.plugin import ActionError, ActionResult, SignalView, Suspend
from tests.action_context import NOW, FakeContext, signal

pytestmark = pytest.mark.anyio

ALICE_ARN = "arn:aws:iam::123456789012:user/alice"


async def run(inputs: dict[str, Any], *signals: SignalView) -> ActionResult | Suspend:
    assert SCHEMA.check(inputs, static=False) == []
    ctx = FakeContext(signals=signals, state={"approvals": 0} if signals else {})
    return await ACTION.run(normalize_inputs(SCHEMA, inputs), ctx)


async def test_waits_naming_the_approvers_until_someone_decides() -> None:
    outcome = await run({"Approvers": ["alice", "bob"]})
    assert isinstance(outcome, Suspend)
    assert outcome.status == "Waiting"
    assert outcome.signals == ("Approve", "Reject")
    assert outcome.wake_at is None
    assert outcome.message == "Waiting for approval from alice, bob (0 of 1 approvals)"


async def test_the_runbook_message_is_shown_while_waiting() -> None:
    outcome = await run({"Approvers": ["alice"], "Message": "Ship release 42?"})
    assert isinstance(outcome, Suspend) and outcome.message == "Ship release 42?"


async def test_one_approval_is_enough_by_default() -> None:
    outcome = await run({"Approvers": ["alice", "bob"]}, signal("Approve", "bob", comment="lgtm"))
    assert isinstance(outcome, ActionResult)
    assert outcome.outputs == {
        "ApprovalStatus": "Approved",
        "ApproverDecisions": [
            {
                "Approver": "bob",
                "ApprovalStatus": "Approve",
                "ApprovalDecisionTime": NOW.isoformat(),
                "Comment": "lgtm",
            }
        ],
    }


async def test_each_approver_counts_once() -> None:
    inputs = {"Approvers": ["alice", "bob"], "MinRequiredApprovals": 2}
    twice = await run(inputs, signal("Approve", "alice"), signal("Approve", "alice"))
    assert isinstance(twice, Suspend)
    assert twice.message.endswith("(1 of 2 approvals)")
    both = await run(inputs, signal("Approve", "alice"), signal("Approve", "bob"))
    assert isinstance(both, ActionResult)
    assert [d["Approver"] for d in both.outputs["ApproverDecisions"]] == ["alice", "bob"]


async def test_a_later_reject_of_someone_who_approved_is_ignored() -> None:
    inputs = {"Approvers": ["alice", "bob"], "MinRequiredApprovals": 2}
    outcome = await run(inputs, signal("Approve", "alice"), signal("Reject", "alice"))
    assert isinstance(outcome, Suspend)


async def test_any_reject_fails_the_step_with_rejected_status() -> None:
    inputs = {"Approvers": ["alice", "bob"], "MinRequiredApprovals": 2}
    with pytest.raises(ActionError) as caught:
        await run(inputs, signal("Approve", "alice"), signal("Reject", "bob", comment="not now"))
    error = caught.value
    assert error.message == "rejected by bob"
    assert error.outputs["ApprovalStatus"] == "Rejected"
    assert [(d["Approver"], d["ApprovalStatus"], d["Comment"])
            for d in error.outputs["ApproverDecisions"]] == [
        ("alice", "Approve", ""),
        ("bob", "Reject", "not now"),
    ]


async def test_signals_from_strangers_are_ignored() -> None:
    outcome = await run({"Approvers": ["alice"]}, signal("Approve", "mallory"))
    assert isinstance(outcome, Suspend)


async def test_an_arn_approves_for_a_plain_name_and_back() -> None:
    by_arn = await run({"Approvers": ["alice"]}, signal("Approve", ALICE_ARN))
    assert isinstance(by_arn, ActionResult)
    by_name = await run({"Approvers": [ALICE_ARN]}, signal("Approve", "alice"))
    assert isinstance(by_name, ActionResult)


async def test_the_same_person_listed_twice_counts_once() -> None:
    inputs = {"Approvers": ["alice", ALICE_ARN], "MinRequiredApprovals": 2}
    outcome = await run(inputs, signal("Approve", "alice"), signal("Approve", ALICE_ARN))
    assert isinstance(outcome, Suspend)


async def test_enhanced_approvals_count_role_members_separately() -> None:
    role = "arn:aws:iam::123456789012:role/Admin"
    inputs = {"EnhancedApprovals": {"Approvers": [
        {"approver": role, "type": "IamRole", "minRequiredApprovals": 2}]}}
    member = "arn:aws:sts::123456789012:assumed-role/Admin/{}".format
    one = await run(inputs, signal("Approve", member("ana")))
    assert isinstance(one, Suspend)
    two = await run(inputs, signal("Approve", member("ana")), signal("Approve", member("li")))
    assert isinstance(two, ActionResult)
    assert two.outputs["ApprovalStatus"] == "Approved"


async def test_enhanced_user_with_a_minimum_must_approve() -> None:
    inputs = {"MinRequiredApprovals": 1, "EnhancedApprovals": {"Approvers": [
        {"approver": "John Stiles", "type": "IamUser", "minRequiredApprovals": 1},
        {"approver": "Ana", "type": "IamUser", "minRequiredApprovals": 0}]}}
    assert isinstance(await run(inputs, signal("Approve", "Ana")), Suspend)
    done = await run(inputs, signal("Approve", "Ana"), signal("Approve", "John Stiles"))
    assert isinstance(done, ActionResult)


def test_check_signal_explains_refusals() -> None:
    inputs = {"Approvers": ["alice", "bob"]}
    assert check_signal(inputs, "Approve", "alice") is None
    assert check_signal(inputs, "Reject", ALICE_ARN) is None
    assert check_signal(inputs, "Approve", "mallory") == (
        "mallory is not an approver of this step (approvers: alice, bob)"
    )
    assert check_signal(inputs, "Resume", "alice") == (
        "an aws:approve step takes Approve or Reject signals, not Resume"
    )


@pytest.mark.parametrize(
    ("approver", "principal", "matches"),
    [
        ("alice", "alice", True),
        ("alice", "Alice", False),
        ("alice", "arn:aws:iam::1:user/alice", True),
        ("arn:aws:iam::1:user/team/alice", "alice", True),
        ("arn:aws:iam::1:user/alice", "arn:aws:iam::2:user/alice", False),
        ("arn:aws:iam::1:role/Ops", "arn:aws:sts::1:assumed-role/Ops/sam", True),
        ("arn:aws:iam::1:role/Ops", "arn:aws:sts::2:assumed-role/Ops/sam", False),
        ("Ops", "arn:aws:sts::1:assumed-role/Ops/sam", True),
        ("sam", "arn:aws:sts::1:assumed-role/Ops/sam", False),
    ],
)
def test_principal_matching(approver: str, principal: str, matches: bool) -> None:
    assert principal_matches(approver, principal) is matches


def test_static_checks() -> None:
    def messages(inputs: dict[str, Any]) -> list[str]:
        return [f.message for f in SCHEMA.check(inputs, static=True)]

    assert messages({"Approvers": ["a"], "MinRequiredApprovals": 2}) == [
        "MinRequiredApprovals (2) is more than the 1 Approvers"
    ]
    assert messages({"Approvers": ["a"], "MinRequiredApprovals": 0}) == [
        "input 'MinRequiredApprovals' must be at least 1"
    ]
    assert messages({"Approvers": [f"u{i}" for i in range(11)]}) == [
        "input 'Approvers' takes at most 10 items"
    ]
    assert messages({"Message": "x"}) == [
        "an aws:approve step needs Approvers (or EnhancedApprovals)"
    ]
    assert messages({"Approvers": ["a"], "Message": "m" * 4097}) == [
        "Message is over 4096 characters"
    ]
    assert messages({"Approvers": ["a"], "NotificationArn": "arn:aws:sns:us-east-1:1:Ops"}) == [
        "the SNS topic's name must start with 'Automation'"
    ]
    assert messages({"Approvers": "{{ approvers }}", "MinRequiredApprovals": 3,
                     "NotificationArn": "{{ topic }}"}) == []
    assert messages({"MinRequiredApprovals": 3, "EnhancedApprovals": {"Approvers": [
        {"approver": "John Stiles", "type": "IamUser", "minRequiredApprovals": 0},
        {"approver": "GroupOfThree", "type": "IamGroup", "minRequiredApprovals": 0}]}}) == []
    assert messages({"EnhancedApprovals": {"Approvers": [{"approver": "x", "type": "Team"}]}}) == [
        "type must be one of IamUser, IamGroup, IamRole"
    ]


def test_declared_limits() -> None:
    assert (SCHEMA.default_timeout, SCHEMA.max_timeout) == (604800, 2592000)
    assert SCHEMA.cancel_target_allowed is False
