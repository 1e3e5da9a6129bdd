"""What aws:createStack and aws:deleteStack share: waiting for a stack to settle."""

from __future__ import annotations

from typing import Any

import anyio

from runbook_engine.aws_surface import AwsCaller


async def describe_stack(aws: AwsCaller, stack: str) -> dict[str, Any]:
    answer = await aws.call("cloudformation", "DescribeStacks", {"StackName": stack})
    stacks = answer.get("Stacks") or [{}]
    found: dict[str, Any] = stacks[0]
    return found


async def wait_until_settled(aws: AwsCaller, stack_id: str) -> dict[str, Any]:
    """Poll the stack (by id: a deleted stack is found by id, not by name) until its
    status is no longer ``*_IN_PROGRESS``; the last description."""
    while True:
        stack = await describe_stack(aws, stack_id)
        if not str(stack.get("StackStatus", "")).endswith("_IN_PROGRESS"):
            return stack
        await anyio.sleep(aws.poll_delay())


def stack_outputs(stack: dict[str, Any]) -> dict[str, Any]:
    return {
        "StackId": str(stack.get("StackId", "")),
        "StackStatus": str(stack.get("StackStatus", "")),
        "StackStatusReason": str(stack.get("StackStatusReason", "")),
    }
