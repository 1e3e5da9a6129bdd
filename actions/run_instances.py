"""aws:runInstances: launch EC2 instances and wait until they are ready.

``MinInstanceCount``/``MaxInstanceCount`` are documented as String while AWS's examples
write integers; both are taken, and must be whole numbers of at least 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions.aws_common import NO_AWS_BACKEND
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import SimpleAction

COUNTS = ("MinInstanceCount", "MaxInstanceCount")


def _check_counts(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    for name in COUNTS:
        value = inputs.get(name)
        if value is None or contains_expression(value):
            continue
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            findings.append(Finding((name,), f"{name} must be a whole number of at least 1, "
                                             f"not {value!r}"))
        else:
            counts[name] = int(text)
    if len(counts) == 2 and counts["MinInstanceCount"] > counts["MaxInstanceCount"]:
        findings.append(Finding(("MinInstanceCount",),
                                "MinInstanceCount must not be over MaxInstanceCount"))
    return findings


SCHEMA = ActionSchema(
    inputs={
        "ImageId": field_("String", required=True),
        "InstanceType": field_("String", description="default m1.small"),
        "MinInstanceCount": field_("String", "Integer"),
        "MaxInstanceCount": field_("String", "Integer"),
        "AdditionalInfo": field_("String"),
        "BlockDeviceMappings": field_("MapList"),
        "ClientToken": field_("String"),
        "DisableApiTermination": field_("Boolean"),
        "EbsOptimized": field_("Boolean"),
        "IamInstanceProfileArn": field_("String"),
        "IamInstanceProfileName": field_("String"),
        "InstanceInitiatedShutdownBehavior": field_("String", allowed=("stop", "terminate")),
        "KernelId": field_("String"),
        "KeyName": field_("String"),
        "MetadataOptions": field_("StringMap"),
        "Monitoring": field_("Boolean"),
        "NetworkInterfaces": field_("MapList"),
        "Placement": field_("StringMap"),
        "PrivateIpAddress": field_("String"),
        "RamdiskId": field_("String"),
        "SecurityGroupIds": field_("StringList"),
        "SecurityGroups": field_("StringList"),
        "SubnetId": field_("String"),
        "TagSpecifications": field_("MapList"),
        "UserData": field_("String", description="base64"),
    },
    validators=(_check_counts,),
    outputs={"InstanceIds": ValueType.STRING_LIST, "InstanceStates": ValueType.STRING_LIST},
    cancel_target_allowed=False,
)

ACTION = SimpleAction("aws:runInstances", SCHEMA, None, runnable_reason=NO_AWS_BACKEND)
