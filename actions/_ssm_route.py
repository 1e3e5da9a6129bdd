"""Where an aws:runCommand step runs: on the inventory, or through AWS SSM Run Command.

Which side runs a step (:func:`ssm_route`) is decided once, before anything runs, and never
guessed silently:

* ``InstanceIds`` (or a single ``Targets`` entry with ``Key: InstanceIds``): an id the
  inventory lists runs locally (SSH, Docker, local), as before. An id it does not list
  goes to SSM when it has the form of an SSM managed-node id (``i-`` and 8 or 17
  characters, ``mi-`` and 17, the ``SendCommand`` pattern) and AWS is configured (a
  region, profile or endpoint: ``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, or
  the engine's settings). A step naming both kinds is refused before anything runs: one
  aws:runCommand step runs on one side; split it into two steps.
* ``Targets`` (``tag:<key>``, ``tag-key``, ``resource-groups:Name``,
  ``resource-groups:ResourceTypeFilters``): resolved against the inventory first; when it
  matches no instance there and AWS is configured, the same ``Targets`` are passed to
  ``SendCommand`` and SSM resolves them (the step's log says so). Target keys only the
  inventory knows (``ResourceGroup``, ``ParameterValues``, ``AWS::EC2::Instance``) never
  go to SSM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runbook_engine.errors import TargetError
from runbook_engine.plugin import ActionContext, ActionError, FailureStage, FailureType

STATE_KEY = "ssm"  # the step's saved state on the SSM side
SSM_NODE_ID = re.compile(r"^(i-(\w{8}|\w{17})|mi-\w{17})$")
SSM_TARGET_KEYS = ("tag-key", "resource-groups:Name", "resource-groups:ResourceTypeFilters")
WHAT = "aws:runCommand"


@dataclass(frozen=True)
class SsmRoute:
    """Where SendCommand sends the command, and why it goes to SSM at all."""

    instance_ids: tuple[str, ...] = ()
    targets: tuple[Mapping[str, Any], ...] = ()
    reason: str = ""

    def as_state(self) -> dict[str, Any]:
        return {
            "InstanceIds": list(self.instance_ids),
            "Targets": [dict(t) for t in self.targets],
            "reason": self.reason,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> SsmRoute:
        return cls(
            tuple(data.get("InstanceIds") or ()),
            tuple(data.get("Targets") or ()),
            str(data.get("reason") or ""),
        )


def _as_list(value: Any) -> list[Any]:
    if value in (None, "", []):
        return []
    return [value] if isinstance(value, str | Mapping) else list(value)


def _is_ssm_target_key(key: str) -> bool:
    return key.startswith("tag:") or key in SSM_TARGET_KEYS


def _inventory_name(ctx: ActionContext) -> str:
    inventory = getattr(ctx.targets, "inventory", None)
    return str(getattr(inventory, "path", "<inventory>"))


async def _known(ctx: ActionContext, instance_id: str) -> bool:
    try:
        await ctx.targets.resolve(instance_ids=[instance_id])
    except TargetError:
        return False
    return True


def _refuse(message: str) -> ActionError:
    return ActionError(
        message, failure_type=FailureType.VERIFICATION, stage=FailureStage.PRE_VERIFICATION
    )


async def ssm_route(inputs: Mapping[str, Any], ctx: ActionContext) -> SsmRoute | None:
    """The SSM route of the step, or None when it runs on the inventory (the rule in the
    module docstring). A resumed step keeps the side it started on."""
    if STATE_KEY in ctx.state:
        return SsmRoute.from_state(ctx.state[STATE_KEY].get("route") or {})
    if ctx.state:
        return None  # the local run checkpointed already
    targets = [t for t in _as_list(inputs.get("Targets")) if isinstance(t, Mapping)]
    ids = [str(i) for i in _as_list(inputs.get("InstanceIds"))]
    if not ids and len(targets) == 1 and targets[0].get("Key") == "InstanceIds":
        ids = [str(i) for i in _as_list(targets[0].get("Values"))]
    if ids:
        return await _route_ids(ids, targets, ctx)
    if targets and all(_is_ssm_target_key(str(t.get("Key") or "")) for t in targets):
        try:
            if await ctx.targets.resolve(None, targets):
                return None
        except TargetError:
            pass  # e.g. a resource group the inventory does not have: SSM may
        if ctx.aws.configured:
            return SsmRoute(
                targets=tuple(targets),
                reason=f"Targets {targets} match no instance in the inventory "
                f"({_inventory_name(ctx)})",
            )
    return None


async def _route_ids(
    ids: Sequence[str], targets: Sequence[Mapping[str, Any]], ctx: ActionContext
) -> SsmRoute | None:
    if "*" in ids:
        return None
    try:
        await ctx.targets.resolve(instance_ids=ids)
        return None  # every id is in the inventory (the common case: one lookup)
    except TargetError:
        pass
    unknown = [i for i in ids if not await _known(ctx, i)]
    if not unknown or any(not SSM_NODE_ID.match(i) for i in unknown):
        return None  # the local run reports the ids that are nowhere
    known = [i for i in ids if i not in unknown]
    if known:
        raise _refuse(
            f"{WHAT}: InstanceIds mix instances of the inventory ({', '.join(known)}) with "
            f"ids it does not list ({', '.join(unknown)}), which would go to AWS SSM "
            "(SendCommand); one step runs on one side: split them into two aws:runCommand "
            "steps"
        )
    if not ctx.aws.configured:
        raise _refuse(
            f"Instance ids not in the inventory ({_inventory_name(ctx)}): {', '.join(unknown)}; "
            "they have the form of SSM managed-node ids, but AWS is not configured (no "
            "region from AWS_REGION, AWS_DEFAULT_REGION, a profile or the settings), so "
            "they were not sent to SSM"
        )
    reason = f"{', '.join(unknown)} not in the inventory ({_inventory_name(ctx)})"
    if targets:
        return SsmRoute(targets=tuple(targets), reason=reason)
    return SsmRoute(instance_ids=tuple(ids), reason=reason)
