"""aws:changeInstanceState: start, stop or terminate EC2 instances, or (``CheckStateOnly``)
wait until they are in ``DesiredState`` without changing them.

The action page lists no outputs, but AWS's own step records show ``InstanceStates``;
it is exposed (ssm-reference §10 #10).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actions._compute import wait_for_instances
from runbook_engine.compute import compute_for, instance_backend
from runbook_engine.inputs import ActionSchema, field_
from runbook_engine.model import ValueType
from runbook_engine.plugin import ActionContext, ActionResult, SimpleAction

SCHEMA = ActionSchema(
    inputs={
        "InstanceIds": field_("StringList", required=True),
        "CheckStateOnly": field_("Boolean", description="true: only wait for DesiredState"),
        "DesiredState": field_("String", required=True,
                               allowed=("running", "stopped", "terminated")),
        "Force": field_("Boolean", description="force the stop"),
        "AdditionalInfo": field_("String", description="reserved"),
    },
    outputs={"InstanceStates": ValueType.STRING_LIST},
    default_timeout=3600,
)

# Converges to a desired state: asking again for a state already reached changes nothing.


async def run(inputs: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    instance_ids = [str(i) for i in inputs["InstanceIds"]]
    desired = str(inputs["DesiredState"])
    compute = compute_for(ctx, await instance_backend(ctx, instance_ids))
    if not inputs.get("CheckStateOnly"):
        await compute.change_state(instance_ids, desired, bool(inputs.get("Force")))
    states = await wait_for_instances(compute, instance_ids, desired)
    return ActionResult(outputs={"InstanceStates": states})


ACTION = SimpleAction("aws:changeInstanceState", SCHEMA, run, idempotent=True)
