"""aws:approve: wait until enough designated principals approve, or one rejects.

The step parks durably (status ``Waiting``) and is run again with every ``Approve`` /
``Reject`` signal delivered to it so far (``ctx.signals``); the decision is recomputed
from those signals each time, so nothing but the signals needs to be saved.

Who may decide: the ``Approvers`` list (user names, user ARNs, role ARNs, assumed-role
ARNs), and the Change Manager form ``EnhancedApprovals: {Approvers: [{approver, type,
minRequiredApprovals}]}``. A principal matches an approver when the strings are equal,
when one is a plain name and the other an ARN ending in that name
(``arn:aws:iam::123:user/alice`` ~ ``alice``), or when an assumed-role principal
(``arn:aws:sts::123:assumed-role/Ops/alice``) comes from an approver role
(``arn:aws:iam::123:role/Ops`` or ``Ops``). IAM group membership is not looked up: an
``IamGroup`` entry matches only the group's own name or ARN.

Counting: the first decision of each approver counts, later ones are ignored. An entry
of ``Approvers`` (or an ``IamUser`` entry) counts once however many principals match
it; an ``IamRole``/``IamGroup`` entry counts each distinct principal, up to its own
``minRequiredApprovals``. Any counted ``Reject`` fails the step with ``ApprovalStatus:
Rejected``; the step succeeds once approvals reach ``MinRequiredApprovals`` (default 1)
and every enhanced entry has its own minimum.

Contract with the engine: before delivering a signal, call :func:`check_signal`; a
message back means refuse it with ``InvalidAutomationSignalException``. The SNS
notification (``NotificationArn``) is not sent by this action.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_, is_dynamic
from runbook_engine.model import ValueType
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    FailureStage,
    SignalView,
    SimpleAction,
    Suspend,
)

SIGNALS = ("Approve", "Reject")
MAX_MESSAGE = 4096
MAX_APPROVERS = 10
ENHANCED_TYPES = ("IamUser", "IamGroup", "IamRole")


@dataclass(frozen=True)
class Approver:
    """One entry that may decide; ``per_principal`` entries count every member."""

    name: str
    kind: str = "Any"  # Any (plain Approvers), IamUser, IamRole, IamGroup
    minimum: int = 0

    @property
    def per_principal(self) -> bool:
        return self.kind in ("IamRole", "IamGroup")


def approvers_of(inputs: Mapping[str, Any]) -> list[Approver]:
    found: list[Approver] = []
    plain = inputs.get("Approvers") or []
    for name in [plain] if isinstance(plain, str) else plain:
        found.append(Approver(str(name)))
    enhanced = inputs.get("EnhancedApprovals")
    if isinstance(enhanced, Mapping):
        for entry in enhanced.get("Approvers") or []:
            if isinstance(entry, Mapping) and entry.get("approver"):
                found.append(
                    Approver(
                        str(entry["approver"]),
                        str(entry.get("type") or "IamUser"),
                        _count(entry.get("minRequiredApprovals")),
                    )
                )
    return found


def _count(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def _last_name(text: str) -> str:
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def principal_matches(approver: str, principal: str) -> bool:
    """Is ``principal`` (who signalled) the ``approver`` named in the runbook?"""
    if approver == principal:
        return True
    if ":assumed-role/" in principal:
        role = principal.split(":assumed-role/", 1)[1].split("/", 1)[0]
        if approver == role:
            return True
        if ":role/" in approver and approver.rsplit("/", 1)[-1] == role:
            return _account(approver) == _account(principal)
        return False
    approver_is_arn, principal_is_arn = approver.startswith("arn:"), principal.startswith("arn:")
    if approver_is_arn != principal_is_arn:  # a plain name against an ARN's last part
        return _last_name(approver) == _last_name(principal)
    return False


def check_signal(inputs: Mapping[str, Any], signal_type: str, principal: str) -> str | None:
    """Why the engine must refuse this signal for a waiting aws:approve step, or None."""
    if signal_type not in SIGNALS:
        return f"an aws:approve step takes Approve or Reject signals, not {signal_type}"
    approvers = approvers_of(inputs)
    if not any(principal_matches(a.name, principal) for a in approvers):
        names = ", ".join(a.name for a in approvers) or "none"
        return f"{principal} is not an approver of this step (approvers: {names})"
    return None


def _check(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    findings: list[Finding] = []
    message = inputs.get("Message")
    if isinstance(message, str) and len(message) > MAX_MESSAGE:
        findings.append(Finding(("Message",), f"Message is over {MAX_MESSAGE} characters"))
    if "Approvers" not in inputs and "EnhancedApprovals" not in inputs:
        findings.append(Finding((), "an aws:approve step needs Approvers (or EnhancedApprovals)"))
    approvers = inputs.get("Approvers")
    minimum = inputs.get("MinRequiredApprovals", 1)
    if isinstance(approvers, list) and not contains_expression(approvers):
        if not approvers and "EnhancedApprovals" not in inputs:
            findings.append(Finding(("Approvers",), "Approvers is empty"))
        elif approvers and not is_dynamic(minimum) and int(minimum) > len(approvers):
            findings.append(
                Finding(
                    ("MinRequiredApprovals",),
                    f"MinRequiredApprovals ({minimum}) is more than the {len(approvers)} "
                    "Approvers",
                )
            )
    findings.extend(_check_enhanced(inputs.get("EnhancedApprovals")))
    topic = inputs.get("NotificationArn")
    if (
        isinstance(topic, str)
        and topic.startswith("arn:")
        and not contains_expression(topic)
        and not topic.rsplit(":", 1)[-1].startswith("Automation")
    ):
        findings.append(
            Finding(("NotificationArn",), "the SNS topic's name must start with 'Automation'")
        )
    return findings


def _check_enhanced(enhanced: Any) -> list[Finding]:
    if not isinstance(enhanced, Mapping) or is_dynamic(enhanced.get("Approvers")):
        return []
    entries = enhanced.get("Approvers")
    path = ("EnhancedApprovals", "Approvers")
    if not isinstance(entries, list) or not entries:
        return [Finding(path, "EnhancedApprovals needs a non-empty Approvers list")]
    findings = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "approver" not in entry:
            findings.append(Finding((*path, index), "each approver needs an 'approver' name"))
        elif entry.get("type", "IamUser") not in ENHANCED_TYPES and not contains_expression(
            entry.get("type")
        ):
            findings.append(
                Finding((*path, index, "type"), f"type must be one of {', '.join(ENHANCED_TYPES)}")
            )
    return findings


SCHEMA = ActionSchema(
    inputs={
        "NotificationArn": field_("String"),
        "Message": field_("String"),
        "MinRequiredApprovals": field_("Integer", minimum=1),
        "Approvers": field_("StringList", max_items=MAX_APPROVERS),
        "EnhancedApprovals": field_("StringMap"),
    },
    validators=(_check,),
    outputs={"ApprovalStatus": ValueType.STRING, "ApproverDecisions": ValueType.MAP_LIST},
    default_timeout=604800,
    max_timeout=2592000,
    cancel_target_allowed=False,
)


def _decision(signal: SignalView) -> dict[str, Any]:
    return {
        "Approver": signal.principal,
        "ApprovalStatus": signal.type,
        "ApprovalDecisionTime": signal.time.isoformat(),
        "Comment": "\n".join(signal.payload.get("Comment") or []),
    }


def count_decisions(
    approvers: Sequence[Approver], signals: Sequence[SignalView]
) -> tuple[list[dict[str, Any]], dict[int, int], bool]:
    """(counted decisions, approvals per approver entry, rejected?)"""
    decided: set[tuple[int, str]] = set()
    decisions: list[dict[str, Any]] = []
    approvals: dict[int, int] = {}
    rejected = False
    for signal in signals:
        if signal.type not in SIGNALS:
            continue
        index = next(
            (i for i, a in enumerate(approvers) if principal_matches(a.name, signal.principal)),
            None,
        )
        if index is None:
            continue
        key = (index, signal.principal if approvers[index].per_principal else "")
        if key in decided:
            continue
        decided.add(key)
        decisions.append(_decision(signal))
        if signal.type == "Reject":
            rejected = True
        else:
            approvals[index] = approvals.get(index, 0) + 1
    return decisions, approvals, rejected


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    approvers = approvers_of(inputs)
    required = int(inputs.get("MinRequiredApprovals", 1))
    if not approvers:
        raise ActionError("the step names no approvers", stage=FailureStage.INPUT_VALIDATION)
    if "Approvers" in inputs and required > len(approvers) and "EnhancedApprovals" not in inputs:
        raise ActionError(
            f"MinRequiredApprovals ({required}) is more than the {len(approvers)} Approvers",
            stage=FailureStage.INPUT_VALIDATION,
        )
    if not ctx.state and inputs.get("NotificationArn"):
        ctx.log.info("approval requested; no notification sent to %s", inputs["NotificationArn"])
    decisions, approvals, rejected = count_decisions(approvers, ctx.signals)
    if rejected:
        who = ", ".join(d["Approver"] for d in decisions if d["ApprovalStatus"] == "Reject")
        raise ActionError(
            f"rejected by {who}",
            outputs={"ApprovalStatus": "Rejected", "ApproverDecisions": decisions},
        )
    total = sum(approvals.values())
    short = [a.name for i, a in enumerate(approvers) if approvals.get(i, 0) < a.minimum]
    if total >= required and not short:
        return ActionResult(outputs={"ApprovalStatus": "Approved", "ApproverDecisions": decisions})
    names = ", ".join(a.name for a in approvers)
    progress = f"{total} of {required} approvals"
    return Suspend(
        status="Waiting",
        signals=SIGNALS,
        message=str(inputs.get("Message") or f"Waiting for approval from {names} ({progress})"),
        state={"approvals": total, "required": required, "decisions": decisions},
    )


ACTION = SimpleAction(
    "aws:approve",
    SCHEMA,
    run,
    idempotent=True,
    description="Wait until the designated principals approve, or one rejects.",
    signal_check=lambda request: check_signal(
        request.inputs, request.signal_type, request.principal
    ),
)
