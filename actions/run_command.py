"""aws:runCommand: run a Command document on managed nodes (Run Command).

The action takes every field of the SSM ``SendCommand`` request; the field list below is
botocore's ``SendCommand`` input shape (a test keeps the two in step). At most one of
``InstanceIds`` and ``Targets`` is given; with neither, the command has no nodes to run
on, which SendCommand itself reports.

Here the nodes are the inventory's instances (``ctx.targets``) and the document is found
by name in the ``--documents`` directories or the bundled ``runbooks/``
(``AWS-RunShellScript``...). The run itself (rate control, per-instance invocations,
resume) is :mod:`actions._fleet_command`. S3/CloudWatch output, notifications, alarms
and service roles have nothing to act on here and are ignored.

Nodes the inventory does not list go to AWS Systems Manager (``SendCommand``) when AWS is
configured; :mod:`actions._ssm_route` holds that rule, :mod:`actions._ssm_command` that run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from actions._command_document import invalid, prepare
from actions._fleet_command import run_on_instances
from actions._invocation import DEFAULT_PLUGIN_TIMEOUT
from actions._ssm_command import run_through_ssm
from actions._ssm_route import ssm_route
from runbook_engine.diagnostics import Finding
from runbook_engine.errors import DocumentError
from runbook_engine.inputs import ActionSchema, contains_expression, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import (
    ActionContext,
    ActionError,
    ActionResult,
    FailureStage,
    SimpleAction,
    Suspend,
)

# Patterns of the SendCommand request shape (botocore service-2.json for ssm).
RATE_PATTERNS = {
    "MaxConcurrency": re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$"),
    "MaxErrors": re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$"),
}


def _check_rates(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    """Wrong rates fail the step; in the document they are only a warning, because
    runbooks shipped inside templates carry placeholders such as ``${MaxErrors}``."""
    findings: list[Finding] = []
    for name, pattern in RATE_PATTERNS.items():
        value = inputs.get(name)
        if value is None or contains_expression(value):
            continue
        if not pattern.match(str(value).strip()):
            findings.append(Finding((name,), f"{name} must be a count such as 10 or a "
                                             f"percentage such as 10%, not {value!r}",
                                    severity="warning" if static else "error"))
    return findings


SCHEMA = ActionSchema(
    inputs={
        "InstanceIds": field_("StringList", max_items=50),
        "Targets": field_("MapList", max_items=5, description="[{Key, Values}]"),
        "DocumentName": field_("String", required=True),
        "DocumentVersion": field_("String"),
        "DocumentHash": field_("String"),
        "DocumentHashType": field_("String", allowed=("Sha256", "Sha1")),
        "TimeoutSeconds": field_("Integer", minimum=30, maximum=2592000,
                                 description="delivery timeout"),
        "Comment": field_("String"),
        "Parameters": field_("StringMap", description="the Command document's parameters"),
        "OutputS3Region": field_("String"),
        "OutputS3BucketName": field_("String"),
        "OutputS3KeyPrefix": field_("String"),
        "MaxConcurrency": field_("String"),
        "MaxErrors": field_("String"),
        "ServiceRoleArn": field_("String"),
        "NotificationConfig": field_("StringMap"),
        "CloudWatchOutputConfig": field_("StringMap"),
        "AlarmConfiguration": field_("StringMap"),
    },
    at_most_one_of=(("InstanceIds", "Targets"),),
    validators=(_check_rates,),
    outputs={
        "CommandId": ValueType.STRING,
        "Status": ValueType.STRING,
        "ResponseCode": ValueType.INTEGER,
        "Output": ValueType.STRING,
    },
)


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult | Suspend:
    if not inputs.get("InstanceIds") and not inputs.get("Targets"):
        raise invalid("aws:runCommand needs InstanceIds or Targets")
    route = await ssm_route(inputs, ctx)  # nodes the inventory lacks: AWS SSM
    if route is not None:
        return await run_through_ssm(inputs, ctx, route)
    name = str(inputs["DocumentName"])
    try:
        document = ctx.documents.command_document(name)
    except DocumentError as exc:
        raise ActionError(
            f"InvalidDocument: {exc.message}", stage=FailureStage.PRE_VERIFICATION
        ) from exc
    version = inputs.get("DocumentVersion")
    if version not in (None, "", "$DEFAULT", "$LATEST", "1"):
        raise invalid(f"InvalidDocumentVersion: {name} has only version 1 here, not {version}")
    parameters = inputs.get("Parameters") or {}
    if not isinstance(parameters, Mapping):
        raise invalid("Parameters must be a map of Command document parameter names to values")
    plugins = prepare(document, parameters)
    return await run_on_instances(
        inputs, ctx, plugins, default_timeout=DEFAULT_PLUGIN_TIMEOUT, what="aws:runCommand"
    )


ACTION = SimpleAction(
    "aws:runCommand",
    SCHEMA,
    run,
    idempotent=False,
    description="Run a Command document on inventory instances (Run Command).",
)
